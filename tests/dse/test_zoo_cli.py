"""`dse zoo list` and `dse zoo show` as a user runs them."""

import json
import subprocess
import sys

import numpy as np
import pytest

from dse.cli import main
from multipliers import builtin_designs


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_json_has_the_documented_keys(capsys):
    code, out, _ = run(capsys, "zoo", "list", "--json")
    assert code == 0
    records = json.loads(out)
    assert len(records) == len(builtin_designs())
    keys = {"name", "family", "params", "signed", "bits", "mean_error", "error_std", "mae", "mred", "wce",
            "error_rate", "area", "energy", "cost_method"}
    assert all(keys <= set(r) for r in records)
    exact = next(r for r in records if r["name"] == "exact_u")
    assert exact["mae"] == 0 and exact["area"] == 1.0 and exact["bits"] == 8
    trunc = next(r for r in records if r["family"] == "trunc" and not r["params"]["corrected"])
    assert trunc["mean_error"] < 0 and 0 < trunc["error_rate"] <= 1


def test_list_filters_and_imports(capsys, shared_data):
    code, out, _ = run(capsys, "zoo", "list", "--json", "--signed", "--family", "evoapprox",
                       "--import", str(shared_data / "evoapprox-mul8s"))
    records = json.loads(out)
    assert code == 0 and len(records) == 13
    assert all(r["signed"] and r["cost_method"] == "published" for r in records)
    code, out, _ = run(capsys, "zoo", "list", "--unsigned")
    assert code == 0 and "exact_u" in out and "exact_s" not in out


def test_show_writes_plot_and_lut(capsys, tmp_path):
    plot, lut = tmp_path / "err.png", tmp_path / "lut.npy"
    name = next(m.name for m in builtin_designs() if not m.is_exact)
    code, out, _ = run(capsys, "zoo", "show", name, "--plot", str(plot), "--lut", str(lut), "--json")
    assert code == 0
    assert json.loads(out)["name"] == name
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    design = next(m for m in builtin_designs() if m.name == name)
    assert np.array_equal(np.load(lut), design.lut)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["zoo", "show", "exact_uu"], "did you mean exact_u"),
        (["zoo", "list", "--family", "nope"], "unknown family 'nope'"),
        (["zoo", "list", "--import", "/no/such/folder"], "no such file or folder"),
        (["zoo", "show", "exact_u", "--lut", "/no/such/folder/x.npy"], "does not exist"),
    ],
)
def test_mistakes_are_one_clear_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_zoo_list_does_not_import_torch():
    script = "import sys; from dse.cli import main; main(['zoo', 'list']); sys.exit('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr

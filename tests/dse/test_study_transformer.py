"""Studies of a transformer (every GEMM, attention's products included) and of a user's own network."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from dse.cli import main
from dse.errors import UserError
from dse.study.config import load_study

REPO = Path(__file__).resolve().parents[2]
DIGITS_VIT = REPO / "studies" / "digits_vit.toml"
SMALL = [
    "--set", "search.budget=100", "--set", "search.population=20", "--set", "confirmation.candidates=3",
    "--set", "surrogate.calibration_points=2", "--set", "confirmation.jobs=1", "--set", "data.calibration_images=64",
    "--set", 'multipliers.names=["exact_s", "trunc_s_t6", "mitchell_s_w7", "drum_s_k4", "optrunc_s_k2_kw3"]',
]


@pytest.fixture(scope="module")
def vit_study(tmp_path_factory):
    """The digits-vit study with small budgets and five designs: (folder, stdout)."""
    import contextlib

    folder = tmp_path_factory.mktemp("runs") / "digits_vit"
    capture = io.StringIO()
    with contextlib.redirect_stdout(capture):
        code = main(["run", str(DIGITS_VIT), "--out", str(folder), "--quiet", *SMALL])
    assert code == 0
    return folder, capture.getvalue()


def test_the_products_of_attention_are_layers_of_the_study(vit_study, capsys, tmp_path):
    folder, out = vit_study
    assert "MAC energy saved" in out
    layers = json.loads((folder / "layers.json").read_text())
    kinds = [layer["kind"] for layer in layers]
    assert kinds.count("matmul") == 6 and kinds.count("linear") == 13 and kinds.count("conv") == 1
    qk = next(layer for layer in layers if layer["name"] == "blocks.0.self_attention.qk")
    assert (qk["heads"], qk["m"], qk["k"], qk["n"]) == (4, 4 * 17, 8, 17) and qk["approximated"]
    assert main(["front", str(folder), "--json", "--no-plots"]) == 0
    points = json.loads(capsys.readouterr().out)
    assert points and all("blocks.2.self_attention.av" in p["assignment"] for p in points)
    assert main(["export", str(folder), "--pick", "0", "--out", str(tmp_path / "export")]) == 0
    capsys.readouterr()
    rows = json.loads((tmp_path / "export" / "assignment.json").read_text())["layers"]
    products = [r for r in rows if r["kind"] == "matmul"]
    assert len(products) == 6 and all(r["weight_map"] is None for r in products)
    assert all(len(r["compensation_bias"]) == 4 for r in products if r["approximated"])  # one per head


def test_a_network_file_resolves_against_the_study_file(tmp_path):
    (tmp_path / "nets").mkdir()
    (tmp_path / "nets" / "mine.py").write_text("def build():\n    raise RuntimeError('boom')\n")
    study = tmp_path / "s.toml"
    study.write_text('[network]\nname = "nets/mine.py:build"\ninput_size = [3, 32, 32]\nmean = [0.5, 0.5, 0.5]\n'
                     '[data]\ntest = "usernets.data:test_set"\n')
    config = load_study(study)
    assert config.network.name == f"{(tmp_path / 'nets' / 'mine.py').resolve()}:build"
    assert config.network.input_size == (3, 32, 32) and config.network.options()["mean"] == (0.5, 0.5, 0.5)
    assert config.data.test == "usernets.data:test_set"
    study.write_text('[network]\nname = "nets/absent.py:build"\n')
    with pytest.raises(UserError, match="network.name: file .*absent.py does not exist"):
        load_study(study)
    study.write_text('[network]\nname = "nets/mine.py:build"\ninput_size = [3, "a"]\n')
    with pytest.raises(UserError, match="network.input_size must be a list of integers"):
        load_study(study)


def test_a_failing_factory_stops_the_run_before_anything_is_written(tmp_path, capsys):
    (tmp_path / "mine.py").write_text("def build():\n    raise RuntimeError('boom')\nbuild.input_size = (1, 8, 8)\n")
    study = tmp_path / "s.toml"
    study.write_text('[network]\nname = "mine.py:build"\n')
    out = tmp_path / "runs" / "s"
    assert main(["run", str(study), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "the factory raised RuntimeError: boom" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()

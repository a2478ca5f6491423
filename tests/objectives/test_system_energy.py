"""Whole-accelerator energy through ZigZag: workload layers, real mappings of small layers, bad accelerators."""

from __future__ import annotations

import pytest

from objectives.errors import ObjectiveInputError
from objectives.system_energy import check_accelerator, layer_energy, resolve_accelerator, workload_layer, zigzag_version
from tests.conftest import skip_or_fail

CONV = {"name": "conv", "kind": "conv", "in_channels": 4, "out_channels": 8, "kernel_size": [3, 3], "stride": [2, 2],
        "groups": 1, "input_hw": [8, 8], "output_hw": [4, 4], "m": 16, "k": 36, "n": 8}
LINEAR = {"name": "fc", "kind": "linear", "m": 1, "k": 64, "n": 10}


@pytest.fixture(scope="module")
def zigzag():
    try:
        zigzag_version()
    except ObjectiveInputError as error:
        skip_or_fail(str(error))


def test_a_convolution_keeps_its_kernel_stride_padding_and_groups():
    layer = workload_layer(CONV, 3)
    sizes = dict(zip(layer["loop_dims"], layer["loop_sizes"]))
    assert layer["id"] == 3 and layer["operator_type"] == "Conv"
    assert sizes == {"B": 1, "K": 8, "C": 4, "OY": 4, "OX": 4, "FY": 3, "FX": 3}
    assert layer["dimension_relations"] == ["ix=2*ox+1*fx", "iy=2*oy+1*fy"]
    assert layer["padding"] == [[0, 1], [0, 1]] and layer["pr_loop_sizes"] == [9, 9]  # (4-1)*2+3 = 9 = 8 + 1
    assert layer["operand_precision"]["I"] == layer["operand_precision"]["W"] == 8
    grouped = workload_layer({**CONV, "groups": 4, "in_channels": 8})
    sizes = dict(zip(grouped["loop_dims"], grouped["loop_sizes"]))
    assert sizes["G"] == 4 and sizes["K"] == 2 and sizes["C"] == 2 and "[g]" in grouped["equation"]


def test_a_linear_layer_and_a_product_of_activations_are_gemms():
    layer = workload_layer(LINEAR)
    assert layer["operator_type"] == "Gemm" and dict(zip(layer["loop_dims"], layer["loop_sizes"])) == {
        "D": 1, "C": 64, "K": 10}
    heads = workload_layer({"name": "qk", "kind": "matmul", "m": 4 * 16, "k": 8, "n": 16, "heads": 4})
    assert dict(zip(heads["loop_dims"], heads["loop_sizes"])) == {"H": 4, "D": 16, "C": 8, "K": 16}


@pytest.mark.parametrize("record", [CONV, LINEAR], ids=["conv", "linear"])
def test_zigzag_maps_a_small_layer_onto_a_template(zigzag, record):
    accelerator = resolve_accelerator("edge_tpu_like")
    energy = layer_energy(accelerator, record)
    macs = record["m"] * record["k"] * record["n"]
    assert energy.macs == macs and energy.mac_pj == pytest.approx(0.04 * macs)  # the template's unit MAC energy
    assert set(energy.memory_pj) <= {"rf_1B", "rf_2B", "sram_32KB", "sram_2MB", "dram"} and "dram" in energy.memory_pj
    assert energy.total_pj > energy.mac_pj > 0
    assert sum(sum(levels.values()) for levels in energy.operand_memory_pj.values()) == pytest.approx(
        sum(energy.memory_pj.values()))


def test_templates_come_with_their_mapping(zigzag):
    edge = resolve_accelerator("edge_tpu_like")
    assert edge.template and edge.mapping.name == "edge_tpu_like.yaml"
    assert resolve_accelerator("eyeriss_like").mapping.name == "default.yaml"  # ZigZag ships no eyeriss mapping
    assert resolve_accelerator(str(edge.hardware)).name == "edge_tpu_like" and not resolve_accelerator(
        str(edge.hardware)).template
    assert edge.digest() != resolve_accelerator("tesla_npu_like").digest()


def test_bad_accelerators_are_one_line_naming_the_file(zigzag, tmp_path):
    with pytest.raises(ObjectiveInputError, match="edge_tpu_lik: not a ZigZag accelerator template; templates: .*"
                                                  "edge_tpu_like"):
        resolve_accelerator("edge_tpu_lik")
    with pytest.raises(ObjectiveInputError, match="no such ZigZag accelerator file"):
        resolve_accelerator(str(tmp_path / "missing.yaml"))
    broken = tmp_path / "broken.yaml"
    text = resolve_accelerator("edge_tpu_like").hardware.read_text()
    broken.write_text(text.replace("operational_array:", "operational_arrray:"))
    with pytest.raises(ObjectiveInputError, match=f"{broken}: ZigZag rejects this accelerator") as caught:
        check_accelerator(resolve_accelerator(str(broken)))
    assert "\n" not in str(caught.value)
    garbage = tmp_path / "garbage.yaml"
    garbage.write_text("memories: [unclosed\n")
    with pytest.raises(ObjectiveInputError, match=f"{garbage}: not a YAML file ZigZag can read"):
        check_accelerator(resolve_accelerator(str(garbage)))
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("- name: default\n  spatial_mapping: 3\n")
    with pytest.raises(ObjectiveInputError, match=f"{mapping}: ZigZag rejects this mapping"):
        check_accelerator(resolve_accelerator("edge_tpu_like", str(mapping)))

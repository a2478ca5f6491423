"""Assignments: validation with clear errors, files, and layers left out staying exact."""

from __future__ import annotations

import json

import pytest
import torch

from objectives.assignment import load_assignment, resolve_assignment
from objectives.errors import AssignmentError

LAYERS = ["conv1", "conv2", "conv3", "fc"]


def test_unknown_layer_names_the_closest_ones():
    with pytest.raises(AssignmentError, match=r"unknown layer 'conv9'.*did you mean"):
        resolve_assignment({"conv9": "exact_s"}, LAYERS, "int8")


def test_unknown_multiplier_is_clear():
    with pytest.raises(AssignmentError, match=r"unknown multiplier 'mitchel_s_w7'.*mitchell_s_w7"):
        resolve_assignment({"conv1": "mitchel_s_w7"}, LAYERS, "int8")


def test_signedness_must_fit_the_scheme():
    with pytest.raises(AssignmentError, match="unsigned; the int8 scheme needs signed"):
        resolve_assignment({"conv1": "drum_u_k4"}, LAYERS, "int8")
    with pytest.raises(AssignmentError, match="signed; the uint8 scheme needs unsigned"):
        resolve_assignment({"conv1": "drum_s_k4"}, LAYERS, "uint8")


def test_assignment_files(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"assignment": {"conv1": "drum_s_k4"}, "energy": 0.5}))
    assert load_assignment(path) == {"conv1": "drum_s_k4"}
    path.write_text(json.dumps({"conv1": 3}))
    with pytest.raises(AssignmentError, match="JSON object mapping layer names"):
        load_assignment(path)
    path.write_text("{not json")
    with pytest.raises(AssignmentError, match="cannot read"):
        load_assignment(path)
    with pytest.raises(AssignmentError, match="does not exist"):
        load_assignment(tmp_path / "missing.json")


@pytest.mark.parametrize("digits_net", ["int8"], indirect=True)
def test_layers_left_out_stay_exact(digits_net, digits):
    _, data = digits
    x = data.evaluation.tensors[0][:16]
    digits_net.set_assignment({"conv2": "trunc_s_t8"})
    assert digits_net.layer("conv2").arithmetic.label == "trunc_s_t8"
    assert all(digits_net.layer(n).arithmetic.label == "exact" for n in ("conv1", "conv3", "fc"))
    approx = digits_net(x)
    digits_net.reset()
    assert not torch.equal(approx, digits_net(x))
    with pytest.raises(AssignmentError, match="kernel path 'lowrank'"):
        digits_net.set_assignment({"conv2": "mitchell_s_w7"}, method="lowrank")

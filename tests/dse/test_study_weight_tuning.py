"""A digits study with weights tuned to their designs: the export's weight maps reproduce the measured accuracy."""

import json

import numpy as np
import pytest
import torch

from dse.cli import main

from .test_study_run import DIGITS, SMALL, run


@pytest.fixture(scope="module")
def tuned_study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs") / "digits_tuned"
    argv = ["run", str(DIGITS), "--out", str(folder), "--quiet", *SMALL, "--set", "compensation.tune_weights=true"]
    assert main(argv) == 0
    return folder


def test_export_weight_maps_reproduce_the_measured_accuracy(tuned_study, capsys, tmp_path):
    from objectives.data import load_data
    from objectives.evaluate import evaluate
    from objectives.kernels import get_kernel
    from objectives.networks import get_network
    from objectives.qlayers import Arithmetic
    from objectives.quantize import quantize

    front = json.loads((tuned_study / "front.json").read_text())
    index = max(range(len(front)), key=lambda i: front[i]["energy_saving"])
    out = tmp_path / "export"
    code, _, _ = run(capsys, "export", tuned_study, "--pick", index, "--out", out)
    assert code == 0
    document = json.loads((out / "assignment.json").read_text())
    assert "weight_map" in (out / "README.md").read_text()
    tuned_layers = [r for r in document["layers"] if r["weight_map"] is not None]
    assert tuned_layers, "the most saving point tunes no layer"
    # rebuild the network from the exported files alone: each layer's LUT with its weight map, its constants
    network = get_network("digits-cnn")
    data = load_data(network, calibration_size=256)
    net = quantize(network.model, data.calibration, network.input_shape, "int8")
    values = np.arange(-128, 128)
    for row in document["layers"]:
        if row["multiplier"] == "exact_s":
            assert row["weight_map"] is None
            continue
        lut = np.load(out / "luts" / f"{row['multiplier']}.npy")
        weight_map = np.asarray(row["weight_map"])
        assert weight_map.shape == (256,) and set(weight_map) <= set(values)
        layer = net.layer(row["layer"])
        layer.arithmetic = Arithmetic(get_kernel(lut[:, weight_map + 128], True, "reference"), layer.weight_codes)
        if row["compensation"] != "none":
            layer.set_correction(torch.tensor(row["compensation_scale"], dtype=torch.float64),
                                 torch.tensor(row["compensation_bias"], dtype=torch.float64))
    top1 = evaluate(net, data, progress=False).top1
    assert top1 == pytest.approx(front[index]["top1"], abs=1e-9)
    assert document["point"]["top1"] == pytest.approx(top1, abs=1e-9)


def test_tuning_is_part_of_the_study_identity(tuned_study, capsys):
    code, _, err = run(capsys, "run", DIGITS, "--out", tuned_study, "--quiet", *SMALL)
    assert code == 2 and "compensation.tune_weights" in err

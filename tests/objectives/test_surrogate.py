"""The network surrogate on the built-in digits network: layer predictions, scoring, save/reload, commands."""

import json

import numpy as np
import pytest

from dse.cli import main
from multipliers import Zoo
from objectives.distortion import NetworkSurrogate, ScoreTable
from objectives.distortion.operands import collect_operands
from objectives.distortion.validation import compare_distortion, summarise

DESIGNS = ("exact_s", "trunc_s_t8", "trunc_s_t6_corrected", "mitchell_s_w7", "drum_s_k4", "perf_s_s0_m2")


@pytest.fixture(scope="module")
def digits():
    import torch

    from objectives.data import load_data
    from objectives.networks import get_network
    from objectives.quantize import quantize

    torch.manual_seed(0)
    network = get_network("digits-cnn")
    data = load_data(network, calibration_size=128)
    qnet = quantize(network.model, data.calibration, network.input_shape, "int8", name=network.name)
    zoo = Zoo.default()
    return qnet, data, [zoo[name] for name in DESIGNS]


def test_weight_aware_prediction_matches_measured_layer_distortion(digits):
    import torch

    qnet, data, designs = digits
    operands = collect_operands(qnet, progress=False)
    evaluation = data.limited(64)
    images = torch.stack([evaluation[i][0] for i in range(len(evaluation))])
    summary = summarise(compare_distortion(qnet, operands, images, designs, progress=False))
    assert summary["weight-aware"]["median_abs_rel_error"] < 0.05
    assert summary["weight-aware"]["spearman"] > 0.98
    # the paper's plain form knows neither operands nor weights: much further off
    assert summary["uniform"]["median_abs_rel_error"] > 3 * summary["weight-aware"]["median_abs_rel_error"]


def test_score_table_is_a_gather_and_sum():
    rng = np.random.default_rng(0)
    table = ScoreTable(("a", "b", "c"), ("x", "y"), rng.random((3, 2)))
    population = rng.integers(0, 2, size=(50, 3))
    expected = [sum(table.contributions[l, row[l]] for l in range(3)) for row in population]
    assert np.allclose(table.score(population), expected)
    with pytest.raises(ValueError, match="layers"):
        table.score(population[:, :2])


def test_surrogate_ranks_real_drops_and_survives_save_and_reload(digits, tmp_path):
    from objectives.distortion.cache import fit_drop_map

    qnet, data, designs = digits
    surrogate = NetworkSurrogate.build(qnet, designs, "none", progress=False)
    assert surrogate.layer_names == list(qnet.layers)
    exact = surrogate.exact_index()
    assert designs[exact].name == "exact_s"
    assert surrogate.score(np.full((1, len(qnet.layers)), exact))[0] == 0
    # every layer's contribution grows from the mild to the severe truncation
    position = {name: i for i, name in enumerate(surrogate.multiplier_names)}
    contributions = surrogate.table.contributions
    assert np.all(contributions[:, position["trunc_s_t8"]] > contributions[:, position["trunc_s_t6_corrected"]])

    evaluation = data.limited(300)
    fit_drop_map(surrogate, qnet, evaluation, 8, designs, progress=False)
    surrogate.save(tmp_path / "s")
    reloaded = NetworkSurrogate.load(tmp_path / "s")
    assert reloaded.calibration_points == surrogate.calibration_points
    assert len(reloaded.calibration_points["assignments"]) == 8
    population = np.random.default_rng(1).integers(0, len(designs), size=(64, len(qnet.layers)))
    assert np.array_equal(reloaded.score(population), surrogate.score(population))
    assert np.array_equal(reloaded.predict_drop(population), surrogate.predict_drop(population))
    for a, b in zip(reloaded.predict_interval(population), surrogate.predict_interval(population)):
        assert np.array_equal(a, b)
    low, high = surrogate.predict_interval(population)
    predicted = surrogate.predict_drop(population)
    assert np.all(low <= predicted + 1e-12) and np.all(predicted <= high + 1e-12)
    assert reloaded.distortion.keys() == surrogate.distortion.keys()
    row = reloaded.indices({qnet_layer: "trunc_s_t8" for qnet_layer in list(qnet.layers)[:2]})
    assert row.tolist()[:2] == [position["trunc_s_t8"]] * 2 and row[2] == exact
    with pytest.raises(KeyError, match="unknown layer"):
        reloaded.indices({"nope": "trunc_s_t8"})


def test_distortion_and_predict_commands(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DSE_CACHE", str(tmp_path / "cache"))
    code = main(["distortion", "--network", "digits-cnn", "--multiplier", "trunc_s_t8", "--multiplier", "mitchell_s_w7",
                 "--limit", "32", "--calibration", "64", "--json"])
    records = json.loads(capsys.readouterr().out)
    assert code == 0 and len(records) == 2 * 4 * 3
    assert set(records[0]) >= {"layer", "multiplier", "level", "predicted", "measured"}
    assert {r["level"] for r in records} == {"uniform", "histogram", "weight-aware"}

    assign = tmp_path / "a.json"
    assign.write_text(json.dumps({"conv1": "trunc_s_t8"}))
    argv = ["predict", "--network", "digits-cnn", "--assign", str(assign), "--calibration", "64",
            "--map-points", "4", "--limit", "100", "--json"]
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(argv) == 0  # the second run loads the cached surrogate and drop map
    assert json.loads(capsys.readouterr().out) == first
    for cached in (tmp_path / "cache").rglob("surrogate.npz"):  # a copy cut short: built again, same prediction
        cached.write_bytes(cached.read_bytes()[:200])
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert first["predicted_drop"] >= 0
    assert first["predicted_drop_low"] <= first["predicted_drop"] <= first["predicted_drop_high"]

    assign.write_text(json.dumps({"conv1": "trunc_u_t8"}))
    assert main(argv) == 2
    assert "not among the surrogate's designs" in capsys.readouterr().err


def test_inject_command_shows_that_bias_hurts_more(tmp_path, capsys):
    out = tmp_path / "inject"
    code = main(["inject", "--network", "digits-cnn", "--grid", "0,0.1", "--limit", "300", "--calibration", "64",
                 "--out", str(out), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (out / "inject.json").is_file() and (out / "accuracy_map.png").read_bytes()[:4] == b"\x89PNG"
    (row,) = result["equal_power"]
    assert row["bias_top1"] < row["variance_top1"] - 5


def test_injection_axes_measure_only_all_bias_and_all_variance_points():
    from objectives.distortion.injection_study import grid_points

    assert grid_points([0.0, 0.1]) == [(0.0, 0.0), (0.0, 0.1), (0.1, 0.0), (0.1, 0.1)]
    assert grid_points([0.1, 0.0, 0.01], axes=True) == [(0.0, 0.0), (0.01, 0.0), (0.1, 0.0), (0.0, 0.01), (0.0, 0.1)]
    assert grid_points([0.01], axes=True) == [(0.01, 0.0), (0.0, 0.01)]

"""Compensation searched per layer: the surrogate's best (layer, design, compensation), jobs, storage, inference, export."""

import json

import numpy as np
import optuna
import pytest
import torch

from dse.study.confirm import BASELINE, CANDIDATE, ConfirmStore, Job, assignment_hash
from dse.study.encoding import COMPENSATION_CHOICES, Encoding
from dse.study.front import compute_front
from dse.study.phases import make_job
from dse.study.problem import AssignmentProblem
from dse.study.render import front_csv, front_table
from dse.study.searched import SearchedSurrogate
from dse.study.storage import open_study
from objectives.distortion.network_score import ScoreTable
from objectives.distortion.surrogate import NetworkSurrogate
from objectives.hardware_cost import EnergyModel

from .study_fakes import LAYERS, candidates

NAMES = [layer.name for layer in LAYERS]


def fake_parts(n_designs: int, order=None) -> dict[str, NetworkSurrogate]:
    """Three surrogates over LAYERS (optionally in another layer order) with known contributions."""
    rng = np.random.default_rng(0)
    order = order or NAMES
    parts = {}
    for c in COMPENSATION_CHOICES:
        table = rng.random((len(order), n_designs)) + 0.1
        table[:, 0] = 0.0  # the exact design
        parts[c] = NetworkSurrogate(ScoreTable(tuple(order), tuple(f"d{j}" for j in range(n_designs)), table), c, {},
                                    np.ones(len(order)))
    return parts


def test_each_layer_and_design_takes_the_compensation_predicted_best():
    parts = fake_parts(5)
    s = SearchedSurrogate.combine(parts)
    options = np.stack([parts[c].table.contributions for c in COMPENSATION_CHOICES])
    assert s.options.shape == (3, len(NAMES), 5)
    np.testing.assert_array_equal(s.table.contributions, options.min(axis=0))
    assert np.all(s.choice[:, 0] == 0)  # exact: no compensation
    X = np.array([[1, 2, 3, 4], [0, 0, 0, 0]])
    expected = options[:, np.arange(4), X[0]].min(axis=0).sum()
    assert s.score(X)[0] == pytest.approx(expected) and s.score(X)[1] == 0.0
    # any other compensation of one layer scores worse or the same
    C = s.compensations(X)[0]
    for layer in range(4):
        for c in range(3):
            assert options[c, layer, X[0, layer]] >= options[C[layer], layer, X[0, layer]]


def test_a_searched_surrogate_saves_and_loads_its_options(tmp_path):
    s = SearchedSurrogate.combine(fake_parts(4))
    s.save(tmp_path)
    again = SearchedSurrogate.load(tmp_path)
    np.testing.assert_array_equal(again.options, s.options)
    np.testing.assert_array_equal(again.choice, s.choice)
    assert again.compensation == "searched" and again.layer_names == s.layer_names


def searched_problem(order=None):
    ms = candidates(count=5)
    names = [m.name for m in ms]
    parts = fake_parts(5, order)
    for p in parts.values():  # the study's design names
        p.table = ScoreTable(p.table.layer_names, tuple(names), p.table.contributions)
    surrogate = SearchedSurrogate.combine(parts)
    encoding = Encoding.build(NAMES, names)
    return AssignmentProblem(encoding, EnergyModel(LAYERS, ms), surrogate, max_drop=2.0), surrogate, names


def test_jobs_carry_each_layers_compensation_in_the_problems_layer_order():
    order = ["fc", "conv3", "conv1", "conv2"]  # the surrogate's own order
    problem, surrogate, names = searched_problem(order)
    x = np.array([1, 2, 3, 4])
    comp = problem.job_compensation(x, "searched")
    for layer, j in zip(NAMES, x):
        assert comp[layer] == COMPENSATION_CHOICES[surrogate.choice[order.index(layer), j]]
    job = make_job(problem, x, "searched", CANDIDATE, 0.5)
    assert job.compensation == comp and job.key == assignment_hash(job.assignment, comp)
    # the search's evaluation reports the same compensations; all exact: none anywhere
    ev = problem.evaluate(problem.encoding.encode(np.stack([x, np.zeros(4, int)])))
    assert [COMPENSATION_CHOICES[c] for c in ev.C[0]] == [comp[n] for n in NAMES]
    assert np.all(ev.C[1] == 0)


def test_per_layer_compensation_is_stored_read_back_and_shown():
    names = [m.name for m in candidates(count=5)]
    study = open_study(optuna.storages.InMemoryStorage(), "t", "confirm", ["energy", "drop"])
    store = ConfirmStore(study, NAMES, names)
    result = {"top1": 90.0, "top5": 99.0, "images": 10, "seconds": 1.0}
    store.record(Job({n: names[0] for n in NAMES}, "none", BASELINE, 0.0, 100.0, 0.0), result, 90.0)
    comp = {"conv1": "none", "conv2": "affine", "conv3": "bias", "fc": "affine"}
    job = Job({n: names[2] for n in NAMES}, comp, CANDIDATE, 0.3, 60.0, 25.0, 7, 1)
    store.record(job, {**result, "top1": 89.5}, 90.0)
    measured = store.measurements()[job.key]
    assert measured.compensation == comp and measured.key == assignment_hash(job.assignment, comp)
    front = compute_front("t", store, np.zeros((0, 2)), 2.0, (0.5,))
    assert front.points[0].compensation == comp
    assert "searched: 2 affine, 1 bias" in front_table(front)
    assert "conv2=affine;conv3=bias" in front_csv(front)


@pytest.fixture(scope="module")
def digits_target():
    from dse.study.config import load_study
    from dse.study.target import build_target
    from tests.dse.test_study_run import DIGITS

    return build_target(load_study(DIGITS, ["compensation.mode=\"searched\""]))


def test_per_layer_compensation_folds_each_layers_own_correction(digits_target):
    from dse.study.target import apply_assignment

    qnet = digits_target.qnet
    by_name = {m.name: m for m in digits_target.multipliers}
    mapping = {"conv2": by_name["drum_s_k4"], "conv3": by_name["drum_s_k4"], "fc": by_name["drum_s_k4"]}
    uniform = {}
    for mode in ("bias", "affine"):
        qnet.set_assignment(mapping, compensation=mode)
        uniform[mode] = {k: (qnet.layer(k).gain.clone(), qnet.layer(k).offset.clone()) for k in mapping}
    apply_assignment(qnet, mapping, {"conv2": "affine", "conv3": "bias", "fc": "none"})
    for layer, mode in (("conv2", "affine"), ("conv3", "bias")):
        torch.testing.assert_close(qnet.layer(layer).gain, uniform[mode][layer][0])
        torch.testing.assert_close(qnet.layer(layer).offset, uniform[mode][layer][1])
    assert torch.all(qnet.layer("fc").gain == 1) and torch.all(qnet.layer("fc").offset == 0)
    assert not torch.all(uniform["affine"]["conv2"][0] == 1)  # affine really rescales
    qnet.reset()


def test_a_study_with_compensation_searched_confirms_and_exports_it(tmp_path, capsys):
    from dse.cli import main
    from tests.dse.test_study_run import DIGITS, SMALL

    folder = tmp_path / "digits"
    argv = ["run", str(DIGITS), "--out", str(folder), "--quiet", *SMALL, "--set", "compensation.mode=\"searched\"",
            "--set", "search.budget=100"]
    assert main(argv) == 0
    assert list((folder / "surrogate").glob("*/compensations.npz"))
    front = json.loads((folder / "front.json").read_text())
    assert front and all(isinstance(p["compensation"], dict) for p in front if p["energy_saving"] > 0)
    point = next(i for i, p in enumerate(front) if p["energy_saving"] > 0)
    assert main(["export", str(folder), "--pick", str(point), "--out", str(tmp_path / "export")]) == 0
    document = json.loads((tmp_path / "export" / "assignment.json").read_text())
    assert document["compensation"].startswith("searched")
    for row in document["layers"]:
        assert row["compensation"] == front[point]["compensation"][row["layer"]]
        if row["compensation"] == "none":
            assert all(g == 1 for g in row["compensation_scale"]) and not any(row["compensation_bias"])
        elif row["compensation"] == "bias":
            assert all(g == 1 for g in row["compensation_scale"]) and any(row["compensation_bias"])
        else:
            assert not all(g == 1 for g in row["compensation_scale"])
    capsys.readouterr()

"""Fronts as data (non-domination, levels, renderings), the gene encoding, and the choices between phases."""

import csv
import io
import json

import numpy as np
import optuna
import pytest

from dse.errors import UserError
from dse.study.confirm import BASELINE, CALIBRATION, CANDIDATE, ConfirmStore, Job
from dse.study.encoding import Encoding
from dse.study.export import pick_point
from dse.study.front import compute_front, non_dominated
from dse.study.phases import round_jobs, surrogate_front, targets
from dse.study.render import front_csv, front_json, front_table, levels_table
from dse.study.storage import open_study

from .study_fakes import LAYERS, candidates, searched_problem

NAMES = [l.name for l in LAYERS]


def brute_force(F):
    n = len(F)
    return np.array([not any(np.all(F[j] <= F[i]) and np.any(F[j] < F[i]) for j in range(n)) for i in range(n)])


@pytest.mark.parametrize("objectives", [2, 3])
def test_non_dominated_matches_brute_force(objectives):
    rng = np.random.default_rng(objectives)
    F = np.round(rng.random((200, objectives)), 2)
    F = np.concatenate([F, F[:7]])  # duplicates stay together
    np.testing.assert_array_equal(non_dominated(F), brute_force(F))


@pytest.mark.parametrize("groups, slots, searched", [((), 0, False), ((("conv2", "conv3"),), 0, False),
                                                    ((), 2, False), ((("conv1", "fc"),), 2, True)])
def test_encoding_round_trips(groups, slots, searched):
    encoding = Encoding.build(NAMES, [f"m{i}" for i in range(6)], groups, slots, searched)
    rng = np.random.default_rng(0)
    G = rng.integers(0, encoding.sizes, size=(50, encoding.n_genes))
    X, C = encoding.decode(G)
    assert X.shape == (50, len(NAMES)) and X.max() < 6
    for group in groups:  # grouped layers share their design
        idx = [NAMES.index(n) for n in group]
        assert np.all(X[:, idx] == X[:, idx[:1]])
    if slots:
        assert max(len(set(row)) for row in X) <= slots
    X2, C2 = encoding.decode(encoding.encode(X, C))
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(C, C2)
    for g in G[:5]:
        np.testing.assert_array_equal(encoding.genotype(encoding.params(g)), g)


@pytest.fixture()
def store():
    names = [m.name for m in candidates()]
    study = open_study(optuna.storages.InMemoryStorage(), "t", "confirm", ["energy", "drop"])
    store = ConfirmStore(study, NAMES, names)
    exact = {n: names[0] for n in NAMES}
    store.record(Job(exact, "none", BASELINE, 0.0, 100.0, 0.0), {"top1": 90.0, "top5": 99.0, "images": 100, "seconds": 1.0}, 90.0)
    # energy %, measured top-1; (40% saving, drop 0.4), (60%, 1.5), (50%, 2.5: beyond), (30%, 0.6: dominated)
    for i, (energy, top1, role) in enumerate([(60.0, 89.6, CALIBRATION), (40.0, 88.5, CANDIDATE),
                                              (50.0, 87.5, CANDIDATE), (70.0, 89.4, CANDIDATE)]):
        assignment = {n: names[1 + i] for n in NAMES}
        store.record(Job(assignment, "none", role, 0.1 * i, energy, 0.6 * (100 - energy), i, 1),
                     {"top1": top1, "top5": 99.0, "images": 100, "seconds": 1.0}, 90.0)
    return store


def test_front_levels_and_renderings(store):
    front = compute_front("t", store, np.array([[10.0, 0.1]]), 2.0, (0.5, 1.0))
    assert front.baseline_top1 == 90.0 and len(front.measured) == 4
    assert [round(p.energy_saving) for p in front.points] == [60, 40]
    assert [round(p.drop, 1) for p in front.points] == [1.5, 0.4]
    levels = dict(front.levels)
    assert round(levels[0.5].energy_saving) == 40 and round(levels[1.0].energy_saving) == 40
    points = json.loads(front_json(front))
    assert [p["index"] for p in points] == [0, 1] and points[0]["assignment"]["conv1"]
    rows = list(csv.DictReader(io.StringIO(front_csv(front))))
    assert len(rows) == 2 and "conv1=" in rows[0]["assignment"]
    assert "<= 0.5" in levels_table(front) and "Horowitz" in levels_table(front)
    assert "candidate" in front_table(front)
    assert pick_point(front, None, 1.0)[0] == 1
    with pytest.raises(UserError, match="no confirmed point within 0.1"):
        pick_point(front, None, 0.1)
    with pytest.raises(UserError, match="not a front index"):
        pick_point(front, 5, None)


def test_confirmation_rounds_bisect_towards_each_target():
    problem, history = searched_problem()
    front = surrogate_front(problem, history)
    scores = problem.score(front[0])
    assert np.all(np.diff(front[1][np.argsort(scores)]) <= 1e-9)  # more score, less energy along the front
    assert targets(2.0, (0.5, 1.0, 3.0)) == [0.5, 1.0, 2.0]
    problem.fit_drop_map = lambda X, d, *rest: None
    jobs = round_jobs(problem, front, [], 90.0, [0.5, 1.0], 10, "none", 1)
    assert 1 <= len(jobs) <= 2 and all(j.role == CANDIDATE and j.round == 1 for j in jobs)
    assert len(round_jobs(problem, front, [], 90.0, [0.5, 1.0], 1, "none", 1)) == 1


def test_the_predicted_interval_goes_from_the_job_to_every_rendering():
    names = [m.name for m in candidates(count=3)]
    store = ConfirmStore(open_study(optuna.storages.InMemoryStorage(), "t", "confirm", ["energy", "drop"]), NAMES, names)
    result = {"top1": 90.0, "top5": 99.0, "images": 100, "seconds": 1.0}
    store.record(Job({n: names[0] for n in NAMES}, "none", BASELINE, 0.0, 100.0, 0.0), result, 90.0)
    store.record(Job({n: names[1] for n in NAMES}, "none", CALIBRATION, None, 70.0, 20.0), {**result, "top1": 89.8}, 90.0)
    job = Job({n: names[2] for n in NAMES}, "none", CANDIDATE, 0.6, 60.0, 25.0, 3, 1, predicted_interval=(0.1, 1.4))
    store.record(job, {**result, "top1": 89.5}, 90.0)
    assert store.measurements()[job.key].predicted_interval == (0.1, 1.4)
    front = compute_front("t", store, np.zeros((0, 2)), 2.0, [1.0])
    by_role = {p.role: p for p in front.points}
    candidate, calibration = by_role[CANDIDATE], by_role[CALIBRATION]
    assert (candidate.predicted_drop_low, candidate.predicted_drop_high) == (0.1, 1.4)
    assert calibration.predicted_drop_low is None and calibration.predicted_text() == "-"
    assert "0.60 [0.10, 1.40]" in front_table(front)
    record = next(p for p in json.loads(front_json(front)) if p["role"] == CANDIDATE)
    assert (record["predicted_drop_low"], record["predicted_drop_high"]) == (0.1, 1.4)
    rows = {r["role"]: r for r in csv.DictReader(io.StringIO(front_csv(front)))}
    assert (rows[CANDIDATE]["predicted_drop_low"], rows[CANDIDATE]["predicted_drop_high"]) == ("0.1", "1.4")
    assert rows[CALIBRATION]["predicted_drop_low"] == ""

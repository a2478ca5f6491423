"""Every search engine: budget respected, every trial stored, deterministic, resumable from the storage alone."""

import numpy as np
import optuna
import pytest

from dse.study.encoding import Encoding
from dse.study.engines import make_engine
from dse.study.history import SearchRecorder
from dse.study.problem import AssignmentProblem
from dse.study.schema import SearchSection
from dse.study.seeding import greedy_path, initial_genotypes
from dse.study.storage import open_study
from objectives.hardware_cost import EnergyModel

from .study_fakes import LAYERS, FakeSurrogate, candidates

ENGINES = [
    SearchSection(engine="optuna", sampler="NSGAIISampler", population=12, budget=60, options={}),
    SearchSection(engine="optuna", sampler="TPESampler", population=12, budget=30, options={"n_startup_trials": 10}),
    SearchSection(engine="pymoo", algorithm="NSGA2", population=12, budget=60, options={}),
]
IDS = ["optuna-nsga2", "optuna-tpe", "pymoo-nsga2"]


@pytest.fixture(scope="module")
def problem():
    ms = candidates()
    encoding = Encoding.build([l.name for l in LAYERS], [m.name for m in ms])
    return AssignmentProblem(encoding, EnergyModel(LAYERS, ms), FakeSurrogate(LAYERS, ms), max_drop=1.0)


def _run(problem, section, budget, storage=None, seeds=None):
    storage = storage or optuna.storages.InMemoryStorage()
    study = open_study(storage, "t", "search", problem.objective_names)
    recorder = SearchRecorder(study, problem.encoding)
    if seeds is None:
        seeds = initial_genotypes(problem, section.population, greedy_path(problem))
    make_engine(section, problem, recorder).run(budget, seeds)
    return recorder.history(), storage


@pytest.mark.parametrize("section", ENGINES, ids=IDS)
def test_budget_is_met_and_every_trial_is_stored(problem, section):
    history, _ = _run(problem, section, section.budget)
    assert len(history) == section.budget
    # values are what the problem says for the stored genes
    again = problem.evaluate(history.genotypes)
    np.testing.assert_allclose(again.F, history.F)
    np.testing.assert_allclose(again.G, history.G)


@pytest.mark.parametrize("section", ENGINES, ids=IDS)
def test_same_seed_same_trials_and_resume_matches(problem, section):
    whole, _ = _run(problem, section, section.budget)
    again, _ = _run(problem, section, section.budget)
    np.testing.assert_array_equal(whole.genotypes, again.genotypes)
    for stop in (7, section.budget // 2 + 1, section.budget - 5):  # inside and across generations
        _, storage = _run(problem, section, stop)
        resumed, _ = _run(problem, section, section.budget, storage=storage)
        np.testing.assert_array_equal(whole.genotypes, resumed.genotypes)


@pytest.mark.parametrize("section", ENGINES[::2], ids=IDS[::2])
def test_search_improves_on_its_seeds(problem, section):
    seeds = initial_genotypes(problem, section.population, greedy_path(problem))
    history, _ = _run(problem, section, 120, seeds=seeds)
    feasible = history.G[:, 0] <= 0
    assert history.F[feasible, 0].min() <= problem.evaluate(seeds).F[problem.evaluate(seeds).G[:, 0] <= 0, 0].min()

"""What confirmation measures: near-twins of measured points settle brackets and close gaps."""

import numpy as np
import pytest

from dse.study import phases
from dse.study.confirm import CANDIDATE, Measurement
from dse.study.phases import fill_jobs, make_job, round_jobs, surrogate_front
from dse.study.problem import log_scores

from .study_fakes import searched_problem

BASELINE = 90.0


@pytest.fixture
def study():
    problem, history = searched_problem()
    front = surrogate_front(problem, history)
    order = np.argsort(problem.score(front[0]))
    return problem, tuple(a[order] for a in front)  # front in score order


def measured(problem, rows, drops, round_=0):
    """Measurements of assignment rows with the given drops."""
    out = []
    for x, drop in zip(rows, drops):
        job = make_job(problem, np.asarray(x), "none", CANDIDATE, None, None, round_)
        out.append(Measurement(job.assignment, job.compensation, job.role, BASELINE - drop, 0.0, 540, 0.0, job.energy,
                               job.mac_saving, None, None, round_, job.key, len(out)))
    return out


def rows(problem, jobs):
    names = problem.encoding.multiplier_names
    return np.array([[names.index(j.assignment[l]) for l in problem.encoding.layer_names] for j in jobs])


def near(problem, jobs, X):
    """For each job, whether it lies within the resolution of any row of X."""
    energy, score = 100.0 * problem.relative_energy(rows(problem, jobs)), log_scores(problem.score(rows(problem, jobs)))
    e, s = 100.0 * problem.relative_energy(X), log_scores(problem.score(X))
    return [bool(np.any((np.abs(e - ej) <= phases.RESOLUTION_ENERGY) & (np.abs(s - sj) <= phases.RESOLUTION_SCORE)))
            for ej, sj in zip(energy, score)]


def test_a_bracket_with_only_near_twins_inside_is_settled(study, monkeypatch):
    problem, (X, energy, numbers) = study
    assert len(X) >= 6
    done = measured(problem, X[[1, -2]], [0.0, 1.0])  # within and beyond the target 0.5
    jobs = round_jobs(problem, (X, energy, numbers), done, BASELINE, [0.5], 5, "none", 1)
    assert len(jobs) == 1 and not any(near(problem, jobs, X[[1, -2]]))
    # within the resolution of the measured ends, every point inside is a near-twin: settled
    monkeypatch.setattr(phases, "RESOLUTION_ENERGY", 100.0)
    monkeypatch.setattr(phases, "RESOLUTION_SCORE", 100.0)
    assert round_jobs(problem, (X, energy, numbers), done, BASELINE, [0.5], 5, "none", 1) == []
    assert fill_jobs(problem, (X, energy, numbers), done, BASELINE, 5, "none", 1) == []


def test_brackets_of_one_round_pick_no_near_twins(study, monkeypatch):
    problem, front = study
    X = front[0]
    done = measured(problem, X[[0, -1]], [0.0, 1.9])
    apart = round_jobs(problem, front, done, BASELINE, [0.5, 1.0, 1.5], 5, "none", 1)
    assert len(apart) == 1  # one bracket for all three targets
    done = measured(problem, X[[0, len(X) // 2, -1]], [0.0, 0.6, 1.9])
    jobs = round_jobs(problem, front, done, BASELINE, [0.5, 1.0], 5, "none", 1)
    assert len(jobs) == 2
    monkeypatch.setattr(phases, "RESOLUTION_ENERGY", 100.0)
    monkeypatch.setattr(phases, "RESOLUTION_SCORE", 100.0)
    # every pair of points is a near-twin now: the measured ones cover the front
    assert round_jobs(problem, front, done, BASELINE, [0.5, 1.0], 5, "none", 1) == []


def test_fill_jobs_skip_near_twins_of_measured_points(study):
    problem, front = study
    X = front[0]
    done = measured(problem, X[::3], np.linspace(0.0, 1.5, len(X[::3])))
    jobs = fill_jobs(problem, front, done, BASELINE, 5, "none", 1)
    assert jobs == fill_jobs(problem, front, done, BASELINE, 5, "none", 1)  # deterministic
    assert 1 <= len(jobs) <= phases.FILL_POINTS and all(j.role == CANDIDATE and j.round == 1 for j in jobs)
    assert not any(near(problem, jobs, X[::3]))
    # measuring what a round picked never brings the same points back
    done += measured(problem, rows(problem, jobs), [j.predicted_drop for j in jobs], 1)
    again = fill_jobs(problem, front, done, BASELINE, 5, "none", 2)
    assert not {j.key for j in again} & {j.key for j in jobs}


def gap_of(problem, job, done):
    """The pair of measured points (by score) that a job's assignment lies between."""
    s = problem.score(rows(problem, [job]))[0]
    scores = np.sort(problem.score(rows(problem, done)))
    return int(np.searchsorted(scores, s))


def test_fill_jobs_leave_flat_gaps_and_gaps_a_bracket_splits(study):
    problem, front = study
    X = front[0]
    ends = X[[0, len(X) // 3, 2 * len(X) // 3, -1]]
    # between two points at no drop a new point cannot add hypervolume (it is dominated by the upper one)
    flat = measured(problem, ends, [0.0, 0.0, 0.0, 1.5])
    jobs = fill_jobs(problem, front, flat, BASELINE, 5, "none", 1)
    assert jobs and {gap_of(problem, j, flat) for j in jobs} == {3}
    # the largest gap gets a point; once a bracket pick of the round lies inside it, the fill goes elsewhere
    done = measured(problem, ends, [0.0, 0.4, 0.5, 1.5])
    first = fill_jobs(problem, front, done, BASELINE, 1, "none", 1)
    assert [gap_of(problem, j, done) for j in first] == [3]
    other = fill_jobs(problem, front, done, BASELINE, 1, "none", 1, picked=first)
    assert len(other) == 1 and gap_of(problem, other[0], done) != 3

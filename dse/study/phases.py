"""The choices between phases: what calibrates the surrogate, where the search looks, what gets confirmed.

Every choice is a deterministic function of the surrogate, the stored search and the measurements
of earlier rounds (each measurement records its round), so a resumed study makes the same choices.

Confirmation runs in rounds, a bisection per target drop (the report levels within the allowed
drop, and the allowed drop; when those are settled, evenly spaced levels fill in the rest of the
front). The surrogate's score orders the front (more score, more saving, more
drop), so for each target the measurements so far bracket it: the largest score measured within
the target and the smallest measured beyond it. Each round measures, per target, the unmeasured
front point in the middle of its bracket (in log score), so the bracket halves every round; with
no measured point beyond a target yet, the point the refitted map predicts nearest above it.
The drop map is refitted on every earlier measurement before each round (for predictions only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from .confirm import CALIBRATION, CANDIDATE, Job, Measurement
from .front import non_dominated
from .problem import AssignmentProblem, scores_of
from .seeding import spread_in_score

if TYPE_CHECKING:
    from .history import SearchHistory

#: The search looks at scores up to where the calibrated map predicts this many times the allowed drop.
CAP_FACTOR = 4.0


def make_job(problem: AssignmentProblem, x: np.ndarray, compensation: str, role: str,
             predicted: float | None, search_trial: int | None = None, round_: int = 0) -> Job:
    """A job for assignment row ``x`` (our layer and design order)."""
    names = problem.encoding.multiplier_names
    assignment = {layer: names[int(j)] for layer, j in zip(problem.encoding.layer_names, x)}
    rows = problem.energy_rows(x[None])
    energy = float(100.0 * problem.energy.relative_energy(rows)[0])
    mac = float(problem.energy.mac_saving(rows)[0])
    return Job(assignment, compensation, role, None if predicted is None else float(predicted), energy, mac,
               search_trial, round_)


def rows_of(problem: AssignmentProblem, measurements: Sequence[Measurement]) -> np.ndarray:
    """Measured assignments as rows of design indices (our order)."""
    index = {name: i for i, name in enumerate(problem.encoding.multiplier_names)}
    return np.array([[index[m.assignment[layer]] for layer in problem.encoding.layer_names] for m in measurements],
                    dtype=np.int64).reshape(-1, len(problem.encoding.layer_names))


def calibration_points(problem: AssignmentProblem, path: np.ndarray, count: int) -> np.ndarray:
    """Greedy-path points spread in log score up to the path's end (no drop map exists yet)."""
    return spread_in_score(problem, path, max(2, count))


def fit_map(problem: AssignmentProblem, measurements: Mapping[str, Measurement], baseline_top1: float,
            before_round: int) -> int:
    """Fit the drop map on calibration and candidate measurements of rounds before ``before_round``."""
    used = [m for m in measurements.values() if m.role in (CALIBRATION, CANDIDATE) and m.round < before_round]
    problem.fit_drop_map(rows_of(problem, used), np.array([baseline_top1 - m.top1 for m in used]))
    return len(used)


def score_cap(problem: AssignmentProblem, path: np.ndarray) -> float:
    """The smallest path score the calibrated map predicts at :data:`CAP_FACTOR` x the allowed drop."""
    if len(path) == 0:
        return float("inf")
    drops = problem.predict_drop(path)
    beyond = drops >= CAP_FACTOR * max(problem.max_drop, 0.1)
    return float(problem.score(path[beyond]).min()) if beyond.any() else float("inf")


def targets(max_drop: float, report_drops: Sequence[float], fill: int = 8) -> tuple[list[float], list[float]]:
    """Target drops: first the report levels within the allowed drop and the allowed drop itself; once
    those brackets are closed, ``fill`` evenly spaced levels up to the allowed drop (the rest of the front)."""
    primary = sorted({float(d) for d in [*report_drops, max_drop] if 0 < d <= max_drop})
    spaced = [round(float(t), 6) for t in np.linspace(0.0, max_drop, fill + 1)[1:]]
    return primary, [t for t in spaced if t not in primary]


def surrogate_front(problem: AssignmentProblem, history: "SearchHistory") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The search's front in (energy, score): assignments, energy %, search trial numbers (near-twins merged)."""
    feasible = np.flatnonzero(history.G[:, 0] <= 0)
    if len(feasible) == 0:
        return np.zeros((0, len(problem.encoding.layer_names)), np.int64), np.zeros(0), np.zeros(0, np.int64)
    keep = feasible[non_dominated(history.F[feasible, :2])]
    X, _ = problem.encoding.decode(history.genotypes[keep])
    # one point per (energy, score) cell: near-twins differ only in a layer too small to matter
    cells = np.stack([np.round(history.F[keep, 0], 2), np.round(history.F[keep, 1], 3)], axis=1)
    _, first = np.unique(cells, axis=0, return_index=True)
    first = np.sort(first)
    return X[first], history.F[keep[first], 0], history.numbers[keep[first]]


def round_jobs(problem: AssignmentProblem, front: tuple[np.ndarray, np.ndarray, np.ndarray],
               measured: Sequence[Measurement], baseline_top1: float, levels: Sequence[float], limit: int,
               compensation: str, round_: int) -> list[Job]:
    """One round of the per-target bisection: at most one new front point per target."""
    X, _, numbers = front
    if len(X) == 0 or limit <= 0:
        return []
    keys = {m.key for m in measured}
    scores = problem.score(X)
    predicted = problem.predict_drop(X)
    tried = [m for m in measured if m.role in (CALIBRATION, CANDIDATE)]
    tried_scores = problem.score(rows_of(problem, tried)) if tried else np.zeros(0)
    tried_drops = np.array([baseline_top1 - m.top1 for m in tried])
    jobs: list[Job] = []
    for level in levels:
        good = tried_scores[tried_drops <= level]
        bad = tried_scores[tried_drops > level]
        lo = float(good.max()) if len(good) else 0.0
        hi = float(bad.min()) if len(bad) else np.inf
        inside = np.flatnonzero((scores > lo) & (scores < hi))
        inside = np.array([i for i in inside if _key(problem, X[i], compensation) not in keys], dtype=np.int64)
        if len(inside) == 0:
            continue
        if np.isfinite(hi) and lo > 0:
            middle = 0.5 * (np.log(lo) + np.log(hi))
            pick = inside[np.argmin(np.abs(np.log(np.maximum(scores[inside], 1e-300)) - middle))]
        elif np.isfinite(hi):  # nothing measured within the target but exact: the smallest-score half
            pick = inside[len(inside) // 2 if len(inside) > 1 else 0]
        else:  # nothing measured beyond the target: the map's best guess just above it
            above = inside[predicted[inside] > level]
            pick = above[np.argmin(predicted[above])] if len(above) else inside[np.argmax(scores[inside])]
        job = make_job(problem, X[pick], compensation, CANDIDATE, predicted[pick], int(numbers[pick]), round_)
        if all(job.key != j.key for j in jobs):
            jobs.append(job)
    return jobs[:limit]


def _key(problem: AssignmentProblem, x: np.ndarray, compensation: str) -> str:
    from .confirm import assignment_hash

    names = problem.encoding.multiplier_names
    return assignment_hash({layer: names[int(j)] for layer, j in zip(problem.encoding.layer_names, x)}, compensation)


def surrogate_points(problem: AssignmentProblem, history: "SearchHistory") -> np.ndarray:
    """The search's front as (energy saved %, predicted drop) under the current map, for plots."""
    X, energy, _ = surrogate_front(problem, history)
    if len(X) == 0:
        return np.zeros((0, 2))
    return np.stack([100.0 - energy, problem.predict_drop(X)], axis=1)


__all__ = ["CAP_FACTOR", "calibration_points", "fit_map", "make_job", "round_jobs", "rows_of", "score_cap",
           "scores_of", "surrogate_front", "surrogate_points", "targets"]

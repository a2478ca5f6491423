"""Structured starting points: one design everywhere, and the surrogate's greedy energy-for-accuracy path.

The greedy path starts from all-exact and repeatedly makes the single change (one unit of layers
to a cheaper design) that saves the most multiplier energy per point of predicted drop, scoring
every possible change at once. Its points span the front from exact to aggressive, so the search
starts near the front instead of from random assignments, and the calibration of the surrogate's
score-to-drop map measures points where the front will be.
"""

from __future__ import annotations

import numpy as np

from .encoding import COMPENSATION_CHOICES
from .problem import AssignmentProblem


def uniform_assignments(problem: AssignmentProblem) -> np.ndarray:
    """One assignment per candidate design, that design in every layer, (n_designs, L)."""
    L = len(problem.encoding.layer_names)
    return np.repeat(np.arange(len(problem.encoding.multiplier_names))[:, None], L, axis=1)


def greedy_path(problem: AssignmentProblem, max_steps: int | None = None) -> np.ndarray:
    """Assignments (steps, L) along the greedy path, from the first change to the cheapest assignment.

    Changes are ranked by energy saved per unit of the surrogate's raw score (additive over layers
    and monotone in the predicted drop, so no fitted drop map is needed); a change that saves
    energy without raising the score is taken first.
    """
    encoding = problem.encoding
    unit_of_layer = np.array(
        [next(u for u, unit in enumerate(encoding.units) if name in unit) for name in encoding.layer_names]
    )
    U, M = len(encoding.units), len(encoding.multiplier_names)
    choice = np.zeros(U, dtype=np.int64)
    current_e = float(problem.relative_energy(choice[unit_of_layer][None])[0])
    current_s = float(problem.score(choice[unit_of_layer][None])[0])
    path = []
    moves_u, moves_m = (a.ravel() for a in np.meshgrid(np.arange(U), np.arange(M), indexing="ij"))
    rows = np.arange(len(moves_u))
    for _ in range(max_steps or U * M):
        candidates = np.repeat(choice[None], len(moves_u), axis=0)
        candidates[rows, moves_u] = moves_m
        X = candidates[:, unit_of_layer]
        e = problem.relative_energy(X)
        saving = current_e - e
        allowed = saving > 1e-12
        if encoding.slots:
            used = np.zeros((len(candidates), M), dtype=bool)
            np.put_along_axis(used, candidates, True, axis=1)
            allowed &= used.sum(axis=1) <= encoding.slots
        if not allowed.any():
            break
        s = problem.score(X)
        cost = np.maximum(s - current_s, 0.0)
        free = allowed & (cost <= 1e-15 * max(current_s, 1e-300))
        if free.any():
            best = int(np.flatnonzero(free)[np.argmax(saving[free])])
        else:
            best = int(np.argmax(np.where(allowed, saving / np.maximum(cost, 1e-300), -np.inf)))
        choice = candidates[best]
        current_e, current_s = float(e[best]), float(s[best])
        path.append(choice[unit_of_layer])
    return np.array(path, dtype=np.int64).reshape(-1, len(encoding.layer_names))


def _default_compensation(problem: AssignmentProblem, n: int) -> np.ndarray | None:
    """Affine compensation everywhere when compensation is searched (free, usually best), else none."""
    if not problem.encoding.searched_compensation:
        return None
    return np.full((n, len(problem.encoding.layer_names)), COMPENSATION_CHOICES.index("affine"), dtype=np.int64)


def spread(values: np.ndarray, count: int) -> np.ndarray:
    """Indices of ``count`` entries evenly spaced through ``values`` (all when there are fewer)."""
    if len(values) <= count:
        return np.arange(len(values))
    return np.unique(np.linspace(0, len(values) - 1, count).round().astype(np.int64))


def initial_genotypes(problem: AssignmentProblem, population: int, path: np.ndarray) -> np.ndarray:
    """At most ``population`` seed genotypes: uniform assignments and points of the greedy path."""
    uniform = uniform_assignments(problem)
    uniform = uniform[spread(uniform, max(1, population // 3))]
    chosen = path[spread(path, population - len(uniform))] if len(path) else path
    X = np.concatenate([uniform, chosen]) if len(chosen) else uniform
    X = np.unique(X, axis=0)[:population]
    return problem.encoding.encode(X, _default_compensation(problem, len(X)))


def spread_in_score(problem: AssignmentProblem, path: np.ndarray, count: int) -> np.ndarray:
    """``count`` path points at evenly spaced fractions of its log-score range, the last at its end.

    Used before any drop map exists; the path's end (the cheapest, most damaging assignment)
    anchors the map at large scores, so the map never flattens where the search still looks.
    """
    if count <= 0 or len(path) == 0:
        return path[:0]
    scores = problem.score(path)
    positive = np.flatnonzero(scores > 0)
    if len(positive) == 0:
        return path[:0]
    logs = np.log(scores[positive])
    targets = logs.min() + (logs.max() - logs.min()) * np.linspace(0.0, 1.0, count + 1)[1:]
    picked = sorted({int(positive[np.argmin(np.abs(logs - t))]) for t in targets})
    return path[picked]

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


def greedy_path(problem: AssignmentProblem, drop_limit: float, max_steps: int | None = None) -> np.ndarray:
    """Assignments (steps, L) along the greedy path, until the predicted drop passes ``drop_limit``."""
    encoding = problem.encoding
    layers = encoding.layer_names
    unit_of_layer = np.array([next(u for u, unit in enumerate(encoding.units) if name in unit) for name in layers])
    U, M = len(encoding.units), len(encoding.multiplier_names)
    choice = np.zeros(U, dtype=np.int64)
    energy = problem.energy
    C = _default_compensation(problem, 1)
    current_e = float(energy.relative_energy(choice[unit_of_layer][None])[0])
    current_d = float(problem.predict_drop(choice[unit_of_layer][None], C)[0])
    path = []
    moves_u, moves_m = np.meshgrid(np.arange(U), np.arange(M), indexing="ij")
    moves_u, moves_m = moves_u.ravel(), moves_m.ravel()
    for _ in range(max_steps or U * M):
        candidates = np.repeat(choice[None], len(moves_u), axis=0)
        candidates[np.arange(len(moves_u)), moves_u] = moves_m
        if encoding.slots:
            used = np.zeros((len(candidates), M), dtype=bool)
            np.put_along_axis(used, candidates, True, axis=1)
            allowed = used.sum(axis=1) <= encoding.slots
        else:
            allowed = np.ones(len(candidates), dtype=bool)
        X = candidates[:, unit_of_layer]
        e = energy.relative_energy(X)
        saving = current_e - e
        allowed &= saving > 1e-12
        if not allowed.any():
            break
        d = problem.predict_drop(X, _default_compensation(problem, len(X)))
        cost = np.maximum(d - current_d, 0.0)
        free = allowed & (cost <= 1e-12)
        if free.any():
            best = int(np.flatnonzero(free)[np.argmax(saving[free])])
        else:
            ratio = np.where(allowed, saving / np.maximum(cost, 1e-12), -np.inf)
            best = int(np.argmax(ratio))
        choice = candidates[best]
        current_e, current_d = float(e[best]), float(d[best])
        path.append(choice[unit_of_layer])
        if current_d > drop_limit:
            break
    return np.array(path, dtype=np.int64).reshape(-1, len(layers))


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


def calibration_assignments(problem: AssignmentProblem, path: np.ndarray, count: int, max_drop: float) -> np.ndarray:
    """``count`` path points whose predicted drops are nearest to max_drop x (1/4 .. 2), (count, L)."""
    if count <= 0 or len(path) == 0:
        return np.zeros((0, len(problem.encoding.layer_names)), dtype=np.int64)
    drops = problem.predict_drop(path, _default_compensation(problem, len(path)))
    targets = max(max_drop, 0.1) * np.geomspace(0.25, 2.0, count)
    picked: list[int] = []
    for target in targets:
        order = np.argsort(np.abs(drops - target), kind="stable")
        pick = next((int(i) for i in order if int(i) not in picked), None)
        if pick is not None:
            picked.append(pick)
    return path[sorted(picked)]

"""The choices between phases: what calibrates the surrogate, where the search looks, what gets confirmed.

Every choice is a deterministic function of the surrogate, the stored search and the measurements
of earlier rounds (each measurement records its round), so a resumed study makes the same choices.

Confirmation runs in rounds. Each round makes a bisection step per target drop (the report levels
within the allowed drop, and the allowed drop) and fills the gaps of the confirmed front that could
add the most hypervolume. The surrogate's score orders the front (more score, more saving, more
drop), so for each target the measurements so far bracket it: the largest score measured within
the target and the smallest measured beyond it. Each round measures, per bracket, the unmeasured
front point in its middle (in energy), so a bracket about halves every round;
with no measured point beyond a target yet, the point the refitted map predicts nearest above it.
The drop map is refitted on every earlier measurement before each round (for predictions only).

Only front points that are no near-twin of a measured one count as unmeasured: within
:data:`RESOLUTION_ENERGY` in energy and :data:`RESOLUTION_SCORE` in log score of a calibration or
candidate measurement (typically the same assignment but for a small layer), a point adds little
to that measurement (on the digits study such pairs measure about one test image apart). So a
bracket with only near-twins inside is settled, a gap whose only inside points are near-twins gets
no more points, and no two brackets of a round pick near-twins. The measurements saved go to
distinct assignments, which near zero drop is what finds better points: there, which of several
assignments of similar energy measures best is mostly sampling noise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

from .confirm import CALIBRATION, CANDIDATE, Job, Measurement
from .front import non_dominated
from .problem import AssignmentProblem, log_scores
from .seeding import spread_in_score

if TYPE_CHECKING:
    from .history import SearchHistory

#: The search looks at scores up to where the calibrated map predicts this many times the allowed drop.
CAP_FACTOR = 10.0
#: New points per target bracket and round (bisection), and gap-filling points per round.
BRACKET_POINTS = 1
FILL_POINTS = 2
#: Near-twins: front points this close to a measured one in energy (percentage points of exact) and
#: in log10 score (0.02: about 5 %) are not measured again (the search's own resolution; such points
#: mostly differ in a layer too small to move either objective).
RESOLUTION_ENERGY = 0.5
RESOLUTION_SCORE = 0.02


def make_job(problem: AssignmentProblem, x: np.ndarray, compensation: str, role: str,
             predicted: float | None, search_trial: int | None = None, round_: int = 0,
             interval: tuple[float, float] | None = None) -> Job:
    """A job for assignment row ``x`` (our layer and design order), with the predicted drop and its interval."""
    names = problem.encoding.multiplier_names
    assignment = {layer: names[int(j)] for layer, j in zip(problem.encoding.layer_names, x)}
    rows = problem.energy_rows(x[None])
    energy = float(100.0 * problem.energy.relative_energy(rows)[0])
    mac = float(problem.energy.mac_saving(rows)[0])
    return Job(assignment, problem.job_compensation(x, compensation), role,
               None if predicted is None else float(predicted), energy, mac, search_trial, round_,
               predicted_interval=None if interval is None else (float(interval[0]), float(interval[1])))


def rows_of(problem: AssignmentProblem, measurements: Sequence[Measurement]) -> np.ndarray:
    """The assignments of measurements (or jobs) as rows of design indices (our order)."""
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
    images = max((m.images for m in used), default=0) or None
    problem.fit_drop_map(rows_of(problem, used), np.array([baseline_top1 - m.top1 for m in used]), baseline_top1, images)
    return len(used)


def score_cap(problem: AssignmentProblem, path: np.ndarray) -> float:
    """The smallest path score the calibrated map predicts at :data:`CAP_FACTOR` x the allowed drop."""
    if len(path) == 0:
        return float("inf")
    drops = problem.predict_drop(path)
    beyond = drops >= CAP_FACTOR * max(problem.max_drop, 0.1)
    return float(problem.score(path[beyond]).min()) if beyond.any() else float("inf")


def targets(max_drop: float, report_drops: Sequence[float]) -> list[float]:
    """Target drops: the report levels within the allowed drop, and the allowed drop itself."""
    return sorted({float(d) for d in [*report_drops, max_drop] if 0 < d <= max_drop})


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


def _tried(problem: AssignmentProblem, measured: Sequence[Measurement], baseline_top1: float):
    """Scores, energies (% of exact) and measured drops of the calibration and candidate measurements."""
    tried = [m for m in measured if m.role in (CALIBRATION, CANDIDATE)]
    scores = problem.score(rows_of(problem, tried)) if tried else np.zeros(0)
    return scores, np.array([m.energy for m in tried]), np.array([baseline_top1 - m.top1 for m in tried])


def _nearest_energy(inside: np.ndarray, energy: np.ndarray, marks: Sequence[float]) -> list[int]:
    """For each energy mark, the index in ``inside`` whose energy is nearest (distinct picks)."""
    picks: list[int] = []
    for mark in marks:
        for i in inside[np.argsort(np.abs(energy[inside] - mark), kind="stable")]:
            if int(i) not in picks:
                picks.append(int(i))
                break
    return picks


def _twins(energy: np.ndarray, log_score: np.ndarray, at_energy: np.ndarray, at_log_score: np.ndarray) -> np.ndarray:
    """Whether each point lies within :data:`RESOLUTION_ENERGY` and :data:`RESOLUTION_SCORE` of an ``at`` point."""
    if len(at_energy) == 0:
        return np.zeros(len(energy), dtype=bool)
    near = (np.abs(energy[:, None] - np.asarray(at_energy)[None]) <= RESOLUTION_ENERGY) & (
        np.abs(log_score[:, None] - np.asarray(at_log_score)[None]) <= RESOLUTION_SCORE)
    return near.any(axis=1)


def _unmeasured(problem: AssignmentProblem, X: np.ndarray, energy: np.ndarray, scores: np.ndarray,
                measured: Sequence[Measurement], tried_scores: np.ndarray, tried_energy: np.ndarray,
                compensation: str) -> np.ndarray:
    """Front points neither measured nor a near-twin of a calibration or candidate measurement."""
    keys = {m.key for m in measured}
    fresh = np.array([_key(problem, x, compensation) not in keys for x in X], dtype=bool)
    return fresh & ~_twins(energy, log_scores(scores), tried_energy, log_scores(tried_scores))


def round_jobs(problem: AssignmentProblem, front: tuple[np.ndarray, np.ndarray, np.ndarray],
               measured: Sequence[Measurement], baseline_top1: float, levels: Sequence[float], limit: int,
               compensation: str, round_: int) -> list[Job]:
    """One round of the per-target search: up to :data:`BRACKET_POINTS` new front points per bracket.

    Inside a bracket count only points that are no near-twin of a measurement or of this round's
    earlier picks; a bracket without such points is settled.
    """
    X, energy, numbers = front
    if len(X) == 0 or limit <= 0:
        return []
    scores = problem.score(X)
    log_score = log_scores(scores)
    predicted = problem.predict_drop(X)
    tried_scores, tried_energy, tried_drops = _tried(problem, measured, baseline_top1)
    fresh = _unmeasured(problem, X, energy, scores, measured, tried_scores, tried_energy, compensation)
    picks: list[int] = []
    brackets: list[tuple[float, float]] = []
    for level in levels:
        good, bad = tried_drops <= level, tried_drops > level
        lo = int(np.argmax(np.where(good, tried_scores, -np.inf))) if good.any() else None
        hi = int(np.argmin(np.where(bad, tried_scores, np.inf))) if bad.any() else None
        bracket = (tried_scores[lo] if lo is not None else 0.0, tried_scores[hi] if hi is not None else np.inf)
        if bracket in brackets:
            continue
        brackets.append(bracket)
        inside = np.flatnonzero((scores > bracket[0]) & (scores < bracket[1]) & fresh)
        if len(inside) == 0:
            continue
        if hi is not None:  # split the bracket evenly in energy
            e_lo = tried_energy[lo] if lo is not None else 100.0
            marks = e_lo + (tried_energy[hi] - e_lo) * np.arange(1, BRACKET_POINTS + 1) / (BRACKET_POINTS + 1)
            chosen = _nearest_energy(inside, energy, marks)
        else:  # nothing measured beyond the target: the map's best guess just above it
            above = inside[predicted[inside] > level]
            chosen = [int(above[np.argmin(predicted[above])]) if len(above) else int(inside[np.argmax(scores[inside])])]
        chosen = [i for i in chosen if i not in picks]
        picks += chosen
        if chosen:  # later brackets pick no near-twin of these
            fresh &= ~_twins(energy, log_score, energy[chosen], log_score[chosen])
    low, high = problem.predict_interval(X[picks]) if picks else ([], [])
    jobs = [make_job(problem, X[i], compensation, CANDIDATE, predicted[i], int(numbers[i]), round_, (lo, hi))
            for i, lo, hi in zip(picks, low, high)]
    return jobs[:limit]


def fill_jobs(problem: AssignmentProblem, front: tuple[np.ndarray, np.ndarray, np.ndarray],
              measured: Sequence[Measurement], baseline_top1: float, limit: int, compensation: str,
              round_: int, picked: Sequence[Job] = ()) -> list[Job]:
    """Fill the gaps of the confirmed front that could add the most area (every round, after the brackets).

    Between consecutive confirmed front points a and b (exact first; energy saved e, drop d), a new
    point can add at most (e_b - e_a) x (d_b - d_a) to the front's hypervolume; the largest such gaps
    get the unmeasured surrogate-front point nearest their middle in energy, :data:`FILL_POINTS` per round.
    A gap without a rise in drop (both ends at no drop) can add nothing, and a gap that already holds one
    of this round's bracket picks (``picked``) is being split by it: neither gets a point.
    Near-twins of measured points do not count as unmeasured, so a gap that stays open gets a distinct
    assignment each round, and one whose inside holds only near-twins gets none.
    """
    X, energy, numbers = front
    if len(X) == 0 or limit <= 0:
        return []
    scores = problem.score(X)
    tried_scores, tried_energy, tried_drops = _tried(problem, measured, baseline_top1)
    within = tried_drops <= problem.max_drop
    F = np.stack([tried_energy[within], np.maximum(tried_drops[within], 0.0)], axis=1)
    keep = non_dominated(F) if len(F) else np.zeros(0, dtype=bool)
    confirmed = sorted([(0.0, 100.0, 0.0)] + list(zip(tried_scores[within][keep], F[keep, 0], F[keep, 1])))
    fresh = _unmeasured(problem, X, energy, scores, measured, tried_scores, tried_energy, compensation)
    picked_scores = problem.score(rows_of(problem, picked)) if len(picked) else np.zeros(0)
    gaps = []
    for (s_a, e_a, d_a), (s_b, e_b, d_b) in zip(confirmed, confirmed[1:]):
        inside = np.flatnonzero((scores > s_a) & (scores < s_b) & fresh)
        splitting = np.any((picked_scores > s_a) & (picked_scores < s_b))
        if len(inside) and e_a - e_b > 0.1 and d_b > d_a and not splitting:
            gaps.append(((e_a - e_b) * (d_b - d_a), _nearest_energy(inside, energy, [0.5 * (e_a + e_b)])[0]))
    gaps.sort(key=lambda g: -g[0])
    picks = list(dict.fromkeys(i for _, i in gaps[:FILL_POINTS]))
    predicted = problem.predict_drop(X[picks]) if picks else []
    low, high = problem.predict_interval(X[picks]) if picks else ([], [])
    return [make_job(problem, X[i], compensation, CANDIDATE, p, int(numbers[i]), round_, (lo, hi))
            for i, p, lo, hi in zip(picks, predicted, low, high)][:limit]


def _key(problem: AssignmentProblem, x: np.ndarray, compensation: str) -> str:
    from .confirm import assignment_hash

    names = problem.encoding.multiplier_names
    assignment = {layer: names[int(j)] for layer, j in zip(problem.encoding.layer_names, x)}
    return assignment_hash(assignment, problem.job_compensation(x, compensation))


def surrogate_points(problem: AssignmentProblem, history: "SearchHistory") -> np.ndarray:
    """The search's front as (energy saved %, predicted drop) under the current map, for plots."""
    X, energy, _ = surrogate_front(problem, history)
    if len(X) == 0:
        return np.zeros((0, 2))
    return np.stack([100.0 - energy, problem.predict_drop(X)], axis=1)

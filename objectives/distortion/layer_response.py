"""Each layer's measured response to real designs: a design's predicted contribution -> its real logit error power.

The linearised sensitivities with their white-noise injection factor (:mod:`.sensitivity`) predict the logit
error power a design causes in one layer, and are exact for small noise-like errors in a linear part of the
network. Real designs in a real int8 network bend away from that prediction in two ways, both smooth in the
design's error level and both properties of the layer (measured on ResNet-20, ``benchmarks/layer_response.py``):

- requantisation rounding: a near-exact design still flips some outputs' rounding, so it costs a floor of logit
  error power that the linearisation (proportional to the error power) puts orders of magnitude lower;
- large errors reach the logits less than the factor measured with white noise at 1e-3 of the output power says
  (ReLUs and saturation after the layer), by a factor 0.3-1 at the largest designs.

One concentrated assignment is then ruled by one layer's bend and a spread one averages many, which made the
score over-predict concentrated assignments and under-predict spread ones. So after the table is built, a few
real designs per layer (:data:`RESPONSE_DESIGNS`, spanning its contributions) run alone in that layer, with the
compensation and weight tuning the table is for, on the calibration images; their measured centred logit error
power is the response at their contribution, and every contribution of the layer is mapped through those points
(monotone, interpolated in log-log). The designs measured get exactly their measured power; the real errors of
different layers add (measured: the whole assignment over the sum of its layers alone is 0.86-1.19).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

logger = logging.getLogger(__name__)

#: Real designs measured alone in each layer, at evenly spaced ranks of its contributions (eighths); a surrogate's
#: cache key holds the count it was built with. With 5, designs between them measured
#: on held-out images were 1.04 times the mapped contribution (quartiles 0.95-1.37; up to 6x just below the largest);
#: with 9, 1.02 (0.92-1.20), at about a second per design and compensation in a ResNet-20 layer on 2 cores.
RESPONSE_DESIGNS = 9
#: Slopes in log-log beyond the measured points: below the smallest, power grows like |error| (rounding); above
#: the largest, like the error power.
SLOPE_BELOW = 0.5
SLOPE_ABOVE = 1.0


@dataclass(frozen=True)
class LayerResponse:
    """Measured logit error power of a layer at a few contributions, as a monotone map of any contribution."""

    contributions: np.ndarray  # (P,) increasing, > 0
    powers: np.ndarray  # (P,) measured centred logit error power per image, >= 0

    def __post_init__(self) -> None:
        c, p = np.asarray(self.contributions, dtype=np.float64), np.asarray(self.powers, dtype=np.float64)
        if c.ndim != 1 or c.shape != p.shape or not len(c) or np.any(c <= 0) or np.any(np.diff(c) <= 0):
            raise ValueError("a layer response needs increasing positive contributions, one measured power each")
        if np.any(p < 0) or not np.all(np.isfinite(p)):
            raise ValueError("measured powers must be finite and >= 0")

    def __call__(self, contributions: np.ndarray) -> np.ndarray:
        """The response at each contribution (0 at 0): log-log interpolation of the monotone measured points."""
        c = np.asarray(contributions, dtype=np.float64)
        powers = monotone(np.asarray(self.powers, dtype=np.float64))
        if not np.any(powers > 0):
            return np.zeros_like(c)
        # a design that changed nothing measurable sits at a trillionth of the largest power, not at log(0)
        y = np.log(np.maximum(powers, powers.max() * 1e-12))
        x = np.log(np.asarray(self.contributions, dtype=np.float64))
        lc = np.log(np.maximum(c, 1e-300))
        out = np.interp(lc, x, y)
        out = np.where(lc < x[0], y[0] + SLOPE_BELOW * (lc - x[0]), out)
        out = np.where(lc > x[-1], y[-1] + SLOPE_ABOVE * (lc - x[-1]), out)
        return np.where(c > 0, np.exp(out), 0.0)


def monotone(values: np.ndarray) -> np.ndarray:
    """The least-squares non-decreasing fit of ``values`` (pool adjacent violators, equal weights)."""
    blocks: list[list[float]] = []  # [mean, count]
    for v in np.asarray(values, dtype=np.float64):
        blocks.append([float(v), 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m2, n2), (m1, n1) = blocks.pop(), blocks.pop()
            blocks.append([(m1 * n1 + m2 * n2) / (n1 + n2), n1 + n2])
    return np.concatenate([np.full(int(n), m) for m, n in blocks])


def response_designs(contributions: np.ndarray, count: int = RESPONSE_DESIGNS) -> list[int]:
    """Indices of up to ``count`` designs at evenly spaced ranks of a layer's positive contributions (the smallest
    and the largest among them), one per distinct contribution."""
    row = np.asarray(contributions, dtype=np.float64)
    positive = [int(i) for i in np.argsort(row, kind="stable") if row[i] > 0]
    if not positive or count <= 0:
        return []
    ranks = np.unique(np.round(np.linspace(0, len(positive) - 1, min(count, len(positive)))).astype(int))
    chosen, seen = [], set()
    for r in ranks:
        index = positive[int(r)]
        if row[index] not in seen:
            seen.add(row[index])
            chosen.append(index)
    return chosen


def measure_responses(
    qnet: Any, multipliers: Sequence[Any], tables: dict[str, np.ndarray], count: int = RESPONSE_DESIGNS,
    max_images: int = 256, progress: bool = False,
) -> dict[str, dict[str, LayerResponse]]:
    """Each layer's response under each compensation of ``tables`` ({compensation: (L, M) contributions}): ``count``
    designs of its row run alone in it on the first ``max_images`` calibration images, their centred logit error
    power against their contribution (the exact network's logits taken once for all)."""
    import torch

    from ..evaluate import batches
    from .sensitivity import _first_images, centred

    names = list(qnet.layers)
    data = _first_images(qnet.calibration, max_images)
    picks = {(c, li): response_designs(table[li], count) for c, table in tables.items() for li in range(len(names))}
    plan = [(c, li, m) for (c, li), chosen in picks.items() for m in chosen]
    saved = dict(qnet.assignment), qnet.compensation, dict(qnet.injection)
    qnet.reset()
    measured: dict[tuple[str, int], list[tuple[float, float]]] = {}
    try:
        _fit_compensations(qnet, names, multipliers, picks)
        with torch.no_grad():
            # logits to the CPU in float64 before any sum, as the injection calibration: the same on every device
            reference = [qnet(x).double().cpu() for x, _ in batches(data, qnet.batch_size, progress=False)]
            iterator = plan
            if progress:
                from tqdm import tqdm

                iterator = tqdm(plan, desc="layer response", unit="design")
            for compensation, li, m in iterator:
                qnet.set_assignment({names[li]: multipliers[m]}, compensation=compensation)
                power = 0.0
                for (x, _), ref in zip(batches(data, qnet.batch_size, progress=False), reference):
                    power += float((centred(qnet(x).double().cpu() - ref) ** 2).sum())
                point = (float(tables[compensation][li, m]), power / len(data))
                measured.setdefault((compensation, li), []).append(point)
    finally:
        assignment, mode, injection = saved
        qnet.set_assignment(assignment, mode)
        qnet.set_injection(injection)
    responses: dict[str, dict[str, LayerResponse]] = {c: {} for c in tables}
    for (compensation, li), points in measured.items():
        points = np.array(sorted(points))
        responses[compensation][names[li]] = LayerResponse(points[:, 0], points[:, 1])
        logger.debug("layer %s (%s): response %s", names[li], compensation, np.round(points, 6).tolist())
    return responses


def _fit_compensations(qnet: Any, names: Sequence[str], multipliers: Sequence[Any],
                       picks: dict[tuple[str, int], list[int]]) -> None:
    """Fit the compensation constants of every design picked ({(compensation, layer index): designs}), one
    calibration pass per round (the i-th design of every layer), instead of one pass per design as each
    assignment would."""
    rounds: dict[tuple[str, int], dict[str, Any]] = {}
    for (compensation, li), chosen in picks.items():
        for i, m in enumerate(chosen):
            rounds.setdefault((compensation, i), {})[names[li]] = multipliers[m]
    for (compensation, _), mapping in rounds.items():
        qnet.fit_compensation(mapping, compensation)


def apply_responses(contributions: np.ndarray, layer_names: Sequence[str],
                    responses: dict[str, LayerResponse]) -> np.ndarray:
    """The table (L, M) with each layer's contributions mapped through its response (layers without one: as is)."""
    out = np.array(contributions, dtype=np.float64, copy=True)
    for li, name in enumerate(layer_names):
        if name in responses:
            out[li] = responses[name](out[li])
    return out

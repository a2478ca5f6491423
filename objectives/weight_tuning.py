"""Weight tuning: each layer stores, in place of a weight w, the operand whose approximate products best serve w.

Retraining-free and free in hardware (ALWANN, Mrazek et al., ICCAD 2019): weights are constants, so a
layer whose multiplier is approximate may hold any operand in their place. With the design's table
``lut`` (row: activation, column: weight), the layer's activation distribution p(a) and the error of
storing v for w, ``e(a) = lut[a, v] - a w``, the layer's accumulated error over a GEMM of depth K
decides the choice (the closed form, E||dC||^2 = M N (K sigma^2 + K^2 mu^2)):

* uncompensated, w is stored as the v that minimises ``E[e^2]`` per weight, plus the bias term
  ``(K - 1) mu^2`` with ``mu = sum_w q(w) E[e | w]`` over the layer's weight histogram q: the bias of
  one weight's choice adds up over K products, so choices whose mean errors cancel are preferred
  (coordinate descent over the weights, a few sweeps);
* compensated (bias, affine, threshold: the channel's mean error is removed anyway), v minimises the
  error's variance ``Var[e]`` per weight; among (nearly) equal choices the one that keeps the layer's
  summed error slope ``sum_w q(w) Cov(e, a) / Var(a)`` near zero, since neighbouring activations are
  correlated and equal slopes add up like a bias.

The identity is always a candidate and is kept unless beaten, so no weight's objective gets worse
and an exact design maps every weight to itself. Activations the calibration never saw get a little
weight (:data:`UNSEEN`), so operands whose products agree on the seen activations are told apart by
the others. A perforated design that drops the partial products of the weight's low bits, for
example, is exact for weights whose low bits are zero: tuning rounds each weight to a near one of
those instead of letting the design drop them.

The layer then behaves like the table ``lut[:, map]`` applied to its original weights: its error
table is ``lut[:, map] - exact`` (:func:`tuned_error_table`), which is what the distortion model and
bias compensation see. Maps are over LUT indices (value + 128 for int8, the code for uint8).
"""

from __future__ import annotations

import numpy as np

from multipliers import exact_lut, operand_values

#: Probability mass spread evenly over all activation values (seen or not in calibration) when tuning.
UNSEEN = 1e-4
#: At most this many coordinate-descent sweeps over the weights for the layer-wide term.
SWEEPS = 4
#: Compensated: choices whose error variance is within this fraction of the least count as equal.
NEAR = 1e-6


def tuned_weight_map(
    lut: np.ndarray, signed: bool, activation_counts: np.ndarray, weight_counts: np.ndarray | None = None,
    k: int = 1, compensated: bool = False,
) -> np.ndarray:
    """For every weight column j of ``lut``, the column to store instead, (256,) int64 LUT indices.

    ``weight_counts`` (the layer's weight histogram) and ``k`` (its GEMM depth) bring in the
    layer-wide term; ``compensated``: the layer's mean error is compensated (see the module docstring).
    """
    values = operand_values(signed).astype(np.float64)
    counts = np.asarray(activation_counts, dtype=np.float64).reshape(256)
    identity = np.arange(256, dtype=np.int64)
    total = counts.sum()
    p = np.full(256, 1.0 / 256) if total <= 0 else (1.0 - UNSEEN) * counts / total + UNSEEN / 256
    table = np.asarray(lut, dtype=np.float64)
    mean_a = p @ values
    var_a = max(float(p @ (values - mean_a) ** 2), 1e-12)
    with_a = (p * values) @ table  # E[a lut(a, v)], (v,)
    # moments of the error lut(a, v) - a w over the activations: (w, v)
    first = (p @ table)[None, :] - values[:, None] * mean_a
    second = (p @ (table * table))[None, :] - 2.0 * values[:, None] * with_a[None, :] \
        + (values**2)[:, None] * float(p @ values**2)
    q = np.zeros(256) if weight_counts is None else np.asarray(weight_counts, dtype=np.float64).reshape(256)
    coupled = k > 1 and q.sum() > 0
    q = q / q.sum() if q.sum() > 0 else q
    if not compensated:
        choice = _least(second, identity)
        if coupled:  # sum_w q(w) second(w, v_w) + (k - 1) (sum_w q(w) first(w, v_w))^2
            choice = _descend(choice, q, lambda w, rest: q[w] * second[w] + (k - 1) * (rest + q[w] * first[w]) ** 2,
                              first)
        return choice
    variance = np.maximum(second - first**2, 0.0)
    choice = _least(variance, identity)
    if not coupled:
        return choice
    slope = (with_a[None, :] - values[:, None] * float(p @ values**2) - first * mean_a) / var_a  # Cov(e, a) / Var(a)
    least = variance[identity, choice]
    near = variance <= (least + NEAR * np.maximum(least, 1.0))[:, None]

    def cost(w: int, rest: float) -> np.ndarray:  # the summed slope, among the near-least variances only
        return np.where(near[w], np.abs(rest + q[w] * slope[w]), np.inf)

    return _descend(choice, q, cost, slope)


def _descend(choice: np.ndarray, q: np.ndarray, cost, term: np.ndarray) -> np.ndarray:
    """Coordinate descent over the weights in use: each takes the operand of least ``cost(w, rest)``,
    where ``rest`` is the layer-wide sum ``sum q(w') term(w', v_w')`` over the other weights."""
    choice = choice.copy()
    total = float(q @ term[np.arange(256), choice])
    for _ in range(SWEEPS):
        moved = False
        for w in np.flatnonzero(q):
            rest = total - q[w] * term[w, choice[w]]
            v = int(_least(cost(int(w), rest)[None], np.array([choice[w]]))[0])
            moved |= v != choice[w]
            choice[w] = v
            total = rest + q[w] * term[w, v]
        if not moved:
            break
    return choice


def _least(cost: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Per row, the column of least cost; ``keep`` (the incumbent) unless beaten by more than rounding noise."""
    best = cost.argmin(axis=1)
    index = np.arange(cost.shape[0])
    incumbent = cost[index, keep]
    tolerance = 1e-9 * np.maximum(np.abs(np.where(np.isfinite(incumbent), incumbent, 0.0)), 1.0)
    return np.where(cost[index, best] < incumbent - tolerance, best, keep).astype(np.int64)


def tuned_error_table(lut: np.ndarray, signed: bool, weight_map: np.ndarray) -> np.ndarray:
    """``lut[:, map] - exact`` as int64 (256, 256): the error of each (activation, original weight)."""
    return np.asarray(lut, dtype=np.int64)[:, weight_map] - exact_lut(signed)


def apply_weight_map(weight_codes: np.ndarray, weight_map: np.ndarray, signed: bool) -> np.ndarray:
    """The stored operands: every weight value replaced by its tuned value (same shape, int64)."""
    offset = 128 if signed else 0
    return weight_map[np.asarray(weight_codes, dtype=np.int64) + offset] - offset

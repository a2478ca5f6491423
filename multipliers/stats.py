"""Error statistics of multipliers under uniform or given operand distributions, vectorised over designs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ._record import Multiplier, exact_lut

METRICS = ("mean_error", "error_std", "mae", "mse", "mred", "nmed", "wce", "error_rate")


@dataclass(frozen=True)
class ErrorStatistics:
    """Error metrics of n designs (arrays of shape (n,)), all under one operand distribution.

    ``mean_error`` (bias), ``error_std``, ``mae``, ``mse`` and ``wce`` (worst case over operand
    pairs of non-zero probability) are in product units; ``mred`` (mean |error| / |exact|, pairs
    with an exact product of 0 count with denominator 1), ``nmed`` (MAE over the largest exact
    product magnitude) and ``error_rate`` (probability of a wrong product) are fractions.
    """

    names: tuple[str, ...]
    mean_error: np.ndarray
    error_std: np.ndarray
    mae: np.ndarray
    mse: np.ndarray
    mred: np.ndarray
    nmed: np.ndarray
    wce: np.ndarray
    error_rate: np.ndarray

    def record(self, index: int) -> dict[str, float]:
        """The metrics of one design as plain floats."""
        return {m: float(getattr(self, m)[index]) for m in METRICS}

    def by_name(self, name: str) -> dict[str, float]:
        """The metrics of the design called ``name``."""
        return self.record(self.names.index(name))


def _distribution(p: np.ndarray | None, what: str) -> np.ndarray:
    if p is None:
        return np.full(256, 1.0 / 256)
    p = np.asarray(p, dtype=np.float64)
    if p.shape != (256,):
        raise ValueError(f"{what} histogram must have 256 bins, got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0) or p.sum() <= 0:
        raise ValueError(f"{what} histogram must be finite, non-negative and not all zero")
    return p / p.sum()


def error_statistics(
    multipliers: Sequence[Multiplier],
    p: np.ndarray | None = None,
    q: np.ndarray | None = None,
) -> ErrorStatistics:
    """Statistics of every design for row operands ~ ``p`` and column operands ~ ``q``.

    ``p`` and ``q`` are 256-bin histograms in LUT index order (row: activation, column: weight);
    ``None`` means uniform. Designs of both signednesses may be mixed: each is read against the
    exact table of its own signedness.
    """
    p, q = _distribution(p, "row (activation)"), _distribution(q, "column (weight)")
    multipliers = list(multipliers)
    n = len(multipliers)
    out = {m: np.zeros(n) for m in METRICS}
    weight = np.outer(p, q)  # (256, 256) joint probability
    support = weight > 0
    for signed in (False, True):
        idx = [k for k, m in enumerate(multipliers) if m.signed == signed]
        if not idx:
            continue
        exact = exact_lut(signed).astype(np.float64)
        errors = np.stack([multipliers[k].lut for k in idx]).astype(np.float64) - exact  # (n_s, 256, 256)
        flat = errors.reshape(len(idx), -1)
        w = weight.reshape(-1)
        mean = flat @ w
        second = (flat * flat) @ w
        absolute = np.abs(flat)
        mae = absolute @ w
        rel = absolute / np.maximum(np.abs(exact.reshape(-1)), 1.0)
        out["mean_error"][idx] = mean
        out["mse"][idx] = second
        out["error_std"][idx] = np.sqrt(np.maximum(second - mean * mean, 0.0))
        out["mae"][idx] = mae
        out["mred"][idx] = rel @ w
        out["nmed"][idx] = mae / np.abs(exact).max()
        out["wce"][idx] = np.where(support.reshape(-1), absolute, 0.0).max(axis=1)
        out["error_rate"][idx] = (flat != 0) @ w
    return ErrorStatistics(names=tuple(m.name for m in multipliers), **out)

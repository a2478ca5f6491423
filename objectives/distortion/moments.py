"""Error moments of multipliers under operand distributions, vectorised over designs.

All functions take a stack of error tables ``E`` of shape (n, 256, 256), ``E[i, a, w]`` the error
of design i for row (activation) index a and column (weight) index w, in LUT index order.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from multipliers import Multiplier


def error_tables(multipliers: Sequence[Multiplier]) -> np.ndarray:
    """Stack of error tables, float64 (n, 256, 256)."""
    return np.stack([m.error_table for m in multipliers]).astype(np.float64)


def normalised(histogram: np.ndarray) -> np.ndarray:
    """Histogram(s) over the last axis scaled to sum to one (all-zero rows stay zero)."""
    histogram = np.asarray(histogram, dtype=np.float64)
    total = histogram.sum(axis=-1, keepdims=True)
    return np.divide(histogram, total, out=np.zeros_like(histogram), where=total > 0)


def uniform_moments(errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of each design's error under uniform operands: (n,), (n,)."""
    mean = errors.mean(axis=(1, 2))
    return mean, (errors * errors).mean(axis=(1, 2)) - mean * mean


def histogram_moments(errors: np.ndarray, p: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``p^T E q`` and variance ``p^T (E*E) q - mu^2`` with a ~ p (rows), w ~ q (columns)."""
    p, q = normalised(p), normalised(q)
    mean = np.einsum("a,iaw,w->i", p, errors, q)
    second = np.einsum("a,iaw,w->i", p, errors * errors, q)
    return mean, np.maximum(second - mean * mean, 0.0)


def conditional_moments(errors: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per weight value, the mean and second moment of the error over activations a ~ p.

    ``p`` is (256,) or a stack of histograms (C, 256) (one per input channel); returns
    ``ebar[i, c, w] = sum_a p_c(a) E[i, a, w]`` and ``e2bar`` likewise for ``E^2``, each
    (n, C, 256) (C = 1 for a single histogram).
    """
    p = normalised(np.atleast_2d(p))
    return np.einsum("ca,iaw->icw", p, errors), np.einsum("ca,iaw->icw", p, errors * errors)

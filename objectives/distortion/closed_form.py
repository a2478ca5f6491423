"""The paper's closed form for the error of an approximate GEMM (Alahakoon et al., arXiv 2512.06537).

A GEMM C = A W with A of shape (M, K) and W of shape (K, N) computed with a multiplier whose
per-product error has mean ``mu`` and variance ``sigma2``, errors independent across the K
products of each output, has

    E ||dC||_F^2 = M N (K sigma^2 + K^2 mu^2)

since each of the M N outputs sums K errors: its mean is K mu and its variance K sigma^2. For K
in the hundreds the K^2 mu^2 term dominates: the bias of a multiplier, not its spread, drives the
distortion. The same expression gives the variance of ||dC||_F^2 under Gaussian errors (used by
the Monte-Carlo tests).
"""

from __future__ import annotations

import numpy as np


def expected_error_energy(m: float, k: float, n: float, mu: np.ndarray | float, sigma2: np.ndarray | float) -> np.ndarray:
    """E ||dC||_F^2 for an (M, K) x (K, N) GEMM with i.i.d. product errors of mean mu, variance sigma2."""
    mu, sigma2 = np.asarray(mu, dtype=np.float64), np.asarray(sigma2, dtype=np.float64)
    return m * n * (k * sigma2 + k * k * mu * mu)


def error_energy_variance_gaussian(m: float, k: float, n: float, mu: np.ndarray | float, sigma2: np.ndarray | float) -> np.ndarray:
    """Var ||dC||_F^2 when each output's error is Gaussian with mean K mu, variance K sigma^2."""
    mu, sigma2 = np.asarray(mu, dtype=np.float64), np.asarray(sigma2, dtype=np.float64)
    mean, var = k * mu, k * sigma2
    # Var[X^2] for X ~ N(mean, var) is 2 var^2 + 4 mean^2 var; outputs are independent.
    return m * n * (2 * var * var + 4 * mean * mean * var)


def relative_distortion(error_energy: np.ndarray | float, output_energy: np.ndarray | float) -> np.ndarray:
    """D = ||dC||_F / ||C||_F from the two squared norms (expected or measured)."""
    return np.sqrt(np.asarray(error_energy, dtype=np.float64) / np.asarray(output_energy, dtype=np.float64))

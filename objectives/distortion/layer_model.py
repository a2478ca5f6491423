"""Predicted GEMM distortion of one layer for many multipliers, at three levels of knowledge.

A layer is an (M, K) x (K, N) integer GEMM (a conv after im2col: M output pixels per image,
K = C_in kh kw / groups, N = C_out). With e(a, w) the multiplier's error, the output error is
dC[m, n] = sum_k e(A[m, k], W[k, n]). The levels drop fewer assumptions in turn:

1. ``uniform`` — the paper's closed form with the design's error moments under uniform operands:
   assumes operands uniform over all 256 codes and errors i.i.d. across products.
2. ``histogram`` — the same closed form with moments under the layer's own activation and weight
   histograms (mu = p^T E q): drops the uniform-operand assumption, still treats every weight as a
   random draw, so per-output-channel biases that add up over K are averaged away.
3. ``weight-aware`` — the weights are known: the expected error of output channel n is
   b_n = sum_k ebar_k(W[k, n]) with ebar_k(w) = sum_a p_k(a) e(a, w), and its variance
   v_n = sum_k Var_{a ~ p_k}[e(a, W[k, n])]; E||dC||^2 = M sum_n (b_n^2 + v_n). p_k is the
   histogram of the activation codes that meet column k of the im2col matrix (one per input
   channel and kernel position, padding included), which keeps most of the structure of
   activations in one receptive field; only independence of errors across k given those
   histograms remains assumed.

Compensation (free in hardware, folded into requantisation): ``bias`` subtracts b_n from every
output of channel n, leaving M sum_n v_n at level 3 (levels 1-2 then keep only the variance
term); ``affine`` also removes the part of each channel's error proportional to its exact output
(a per-channel scale correction), leaving v_n (1 - rho_n^2) with rho_n the correlation of error and
product within channel n, computed the same way from the histograms and the known weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .closed_form import expected_error_energy
from .moments import histogram_moments, normalised, uniform_moments

LEVELS = ("uniform", "histogram", "weight-aware")
COMPENSATIONS = ("none", "bias", "affine")


@dataclass(frozen=True)
class LayerOperands:
    """What the surrogate knows of one layer, gathered once from calibration data.

    ``weights`` holds the weight operands as LUT column indices, shape (K, N);
    ``column_histograms`` (K, 256) counts the activation LUT row indices met by each im2col column
    (padding included); ``m`` is the number of GEMM rows per image; ``output_energy`` the mean
    squared Frobenius norm of the exact integer output per image; ``activation_values`` the
    operand value of each LUT index (for the affine correlation).
    """

    name: str
    m: int
    weights: np.ndarray
    column_histograms: np.ndarray
    output_energy: float
    activation_values: np.ndarray
    weight_values: np.ndarray

    @property
    def k(self) -> int:
        """Reduction length K."""
        return int(self.weights.shape[0])

    @property
    def n(self) -> int:
        """Output channels N."""
        return int(self.weights.shape[1])

    @property
    def activation_histogram(self) -> np.ndarray:
        """The layer's activation histogram (256,), pooled over im2col columns."""
        return self.column_histograms.sum(axis=0)

    @property
    def weight_histogram(self) -> np.ndarray:
        """The layer's weight histogram (256,)."""
        return np.bincount(self.weights.ravel(), minlength=256).astype(np.float64)


def predict_error_energy(
    layer: LayerOperands, errors: np.ndarray, level: str = "weight-aware", compensation: str = "none"
) -> np.ndarray:
    """Predicted E||dC||_F^2 per image of ``layer`` for each error table in ``errors`` (n, 256, 256)."""
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; levels: {', '.join(LEVELS)}")
    if compensation not in COMPENSATIONS:
        raise ValueError(f"unknown compensation {compensation!r}; choose from {', '.join(COMPENSATIONS)}")
    if level == "weight-aware":
        return _weight_aware(layer, errors, compensation)
    if level == "uniform":
        mu, sigma2 = uniform_moments(errors)
    else:
        mu, sigma2 = histogram_moments(errors, layer.activation_histogram, layer.weight_histogram)
    if compensation != "none":
        mu = np.zeros_like(mu)  # a constant per-channel correction removes the mean at these levels
    return expected_error_energy(layer.m, layer.k, layer.n, mu, sigma2)


def channel_moments(layer: LayerOperands, errors: np.ndarray, chunk: int = 16) -> dict[str, np.ndarray]:
    """Per output channel, for each design: bias b_n, variance v_n and covariance with the product.

    Returns arrays of shape (n_designs, N): ``bias``, ``variance``, ``covariance`` (of dC_n with
    the exact output C_n, under independence across k) and, shape (N,), ``output_variance``.
    """
    p = normalised(layer.column_histograms)  # (K, 256)
    k_index = np.arange(layer.k)[:, None]
    a = layer.activation_values.astype(np.float64)
    w_of = layer.weight_values.astype(np.float64)[layer.weights]  # (K, N) weight values
    a_mean = p @ a  # (K,)
    a_var = p @ (a * a) - a_mean**2
    out = {"bias": [], "variance": [], "covariance": []}
    for start in range(0, errors.shape[0], chunk):
        block = errors[start : start + chunk]
        ebar = np.matmul(p[None], block)  # (b, K, 256): E_a[e(a, w)] per column k
        e2bar = np.matmul(p[None], block * block)
        aebar = np.matmul((p * a)[None], block)  # E_a[a e(a, w)]
        mean_kn = ebar[:, k_index, layer.weights]  # (b, K, N)
        var_kn = e2bar[:, k_index, layer.weights] - mean_kn**2
        cov_kn = (aebar[:, k_index, layer.weights] - a_mean[None, :, None] * mean_kn) * w_of[None]
        out["bias"].append(mean_kn.sum(axis=1))
        out["variance"].append(np.maximum(var_kn, 0.0).sum(axis=1))
        out["covariance"].append(cov_kn.sum(axis=1))
    result = {key: np.concatenate(value) for key, value in out.items()}
    result["output_variance"] = (a_var[:, None] * w_of**2).sum(axis=0)
    return result


def _weight_aware(layer: LayerOperands, errors: np.ndarray, compensation: str) -> np.ndarray:
    moments = channel_moments(layer, errors)
    variance = moments["variance"]
    if compensation == "affine":
        out_var = moments["output_variance"][None]
        explained = np.divide(moments["covariance"] ** 2, out_var, out=np.zeros_like(variance), where=out_var > 0)
        variance = np.maximum(variance - explained, 0.0)
    per_channel = variance if compensation != "none" else variance + moments["bias"] ** 2
    return layer.m * per_channel.sum(axis=1)

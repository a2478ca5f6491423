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
   b_n = sum_k ebar_k(W[k, n]) with ebar_k(w) = sum_a p_k(a) e(a, w), p_k the histogram of the
   activation codes met by column k of the im2col matrix (one per input channel and kernel
   position, padding included). Activations in one receptive field are correlated, so errors are
   not independent across k: each error is split into its linear regression on the activation,
   beta_k(w) (a - abar_k), plus a residual. The linear parts add up through the activations'
   measured covariance Sigma (K x K), the residuals are taken as independent:
   Var dC_n = beta_n^T Sigma beta_n + sum_k (Var_k e - beta_k^2 Var_k a), and
   E||dC||^2 = M sum_n (b_n^2 + Var dC_n). With a diagonal Sigma this is the independent model.

Compensation (free in hardware, folded into requantisation): ``bias`` subtracts b_n from every
output of channel n, leaving M sum_n Var dC_n at level 3 (levels 1-2 then keep only the variance
term); ``affine`` also removes the part of each channel's error that follows its exact output C_n
(a per-channel gain 1 + alpha_n), leaving (Var dC_n - Cov(dC_n, C_n)^2 / Var C_n) / (1 + alpha_n)^2
with Cov(dC_n, C_n) = beta_n^T Sigma w_n and Var C_n = w_n^T Sigma w_n (w_n the channel's weights).
:func:`compensation_constants` gives those corrections, so prediction and hardware agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .closed_form import expected_error_energy
from .moments import histogram_moments, normalised, uniform_moments

LEVELS = ("uniform", "histogram", "weight-aware")
COMPENSATIONS = ("none", "bias", "affine")


def activation_features(values: np.ndarray) -> np.ndarray:
    """The basis phi(a) errors are regressed on: (a, a^2 / 2^7, a^3 / 2^14), shape (256, 3); phi_0 is a.

    Products grow with a and many designs' errors grow faster or bend (log-based ones change
    slope at every power of two); a cubic follows most of that, and what it misses is taken as
    independent across k.
    """
    a = np.asarray(values, dtype=np.float64)
    return np.stack([a, a * a / 128.0, a**3 / 16384.0], axis=1)


@dataclass(frozen=True)
class LayerOperands:
    """What the surrogate knows of one layer, gathered once from calibration data.

    ``weights``: the weight operands as LUT column indices, (K, N); ``weight_values``: the weight
    each activation is multiplied by in the exact output C (zero point removed), (K, N);
    ``column_histograms``: counts of the activation LUT row indices met by each im2col column,
    padding included, (K, 256); ``activation_values``: the activation value of each row index;
    ``feature_cov``: covariance of the features ``activation_features(a_k)`` of all im2col columns,
    (K d, K d) ordered column-major in k (index k d + j), or ``None`` to assume independent
    columns; ``m``: GEMM rows per image; ``output_energy``: mean squared Frobenius norm of the
    exact output per image.
    """

    name: str
    m: int
    weights: np.ndarray
    weight_values: np.ndarray
    column_histograms: np.ndarray
    activation_values: np.ndarray
    output_energy: float
    feature_cov: np.ndarray | None = None

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

    def covariance(self) -> np.ndarray:
        """Feature covariance (K d, K d): the measured one, else block-diagonal from the histograms."""
        if self.feature_cov is not None:
            return self.feature_cov
        phi = activation_features(self.activation_values)
        d = phi.shape[1]
        blocks = column_feature_cov(normalised(self.column_histograms), phi)  # (K, d, d)
        cov = np.zeros((self.k * d, self.k * d))
        for k in range(self.k):
            cov[k * d : (k + 1) * d, k * d : (k + 1) * d] = blocks[k]
        return cov


def column_feature_cov(p: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Per im2col column, the covariance of the features under its histogram: (K, d, d)."""
    mean = p @ phi  # (K, d)
    second = np.einsum("ka,ai,aj->kij", p, phi, phi)
    return second - mean[:, :, None] * mean[:, None, :]


def predict_error_energy(
    layer: LayerOperands, errors: np.ndarray, level: str = "weight-aware", compensation: str = "none"
) -> np.ndarray:
    """Predicted E||dC||_F^2 per image of ``layer`` for each error table in ``errors`` (n, 256, 256).

    A product of two activations (:class:`~.products.ProductOperands`) has no weights: its third level is
    the model of :mod:`.products` (both operands' statistics, their products' measured moments).
    """
    if level not in LEVELS:
        raise ValueError(f"unknown level {level!r}; levels: {', '.join(LEVELS)}")
    if compensation not in COMPENSATIONS:
        raise ValueError(f"unknown compensation {compensation!r}; choose from {', '.join(COMPENSATIONS)}")
    if level == "weight-aware":  # per output channel; per head of a product of two activations
        moments = channel_moments(layer, errors)
        per_channel = residual_variance(moments, compensation)
        if compensation == "none":
            per_channel = per_channel + moments["bias"] ** 2
        return layer.m * per_channel.sum(axis=1)
    if level == "uniform":
        mu, sigma2 = uniform_moments(errors)
    else:
        mu, sigma2 = histogram_moments(errors, layer.activation_histogram, layer.weight_histogram)
    if compensation != "none":
        mu = np.zeros_like(mu)  # a constant per-channel correction removes the mean at these levels
    if isinstance(layer, LayerOperands):
        return expected_error_energy(layer.m, layer.k, layer.n, mu, sigma2)
    return expected_error_energy(layer.m * layer.heads, layer.k, 1, mu, sigma2)  # one output per head and row


def channel_moments(layer: LayerOperands, errors: np.ndarray, chunk: int = 8) -> dict[str, np.ndarray]:
    """Per output channel and design: the error's mean, variance and covariance with the exact output.

    Returns ``bias``, ``variance``, ``covariance`` of shape (n_designs, N) and ``output_variance``,
    ``output_mean`` of shape (N,), under the model of level 3 (see the module docstring); for a product of
    two activations, per head (:func:`~.products.product_moments`).
    """
    if not isinstance(layer, LayerOperands):
        from .products import product_moments

        return product_moments(layer, errors)
    p = normalised(layer.column_histograms)  # (K, 256)
    kk, nn = layer.k, layer.n
    k_index = np.arange(kk)[:, None]
    phi = activation_features(layer.activation_values)  # (256, d)
    d = phi.shape[1]
    phi_mean = p @ phi  # (K, d)
    phi_cov = column_feature_cov(p, phi)  # (K, d, d)
    # a regularised inverse per column: columns that never vary (always padding) get no slope
    scale = np.maximum(np.trace(phi_cov, axis1=1, axis2=2), 1e-12)[:, None, None]
    phi_inv = np.linalg.pinv(phi_cov + 1e-9 * scale * np.eye(d), hermitian=True, rcond=1e-8)
    sigma = layer.covariance()  # (K d, K d)
    w = layer.weight_values.astype(np.float64)  # (K, N)
    sigma_w = sigma[:, 0::d] @ w  # (K d, N): Cov(phi(a_k), C_n), since phi_0 = a
    weighted = p[:, :, None] * phi[None]  # (K, 256, d)
    out: dict[str, list] = {"bias": [], "variance": [], "covariance": []}
    for start in range(0, errors.shape[0], chunk):
        block = errors[start : start + chunk]
        b = block.shape[0]
        ebar = np.matmul(p[None], block)[:, k_index, layer.weights]  # (b, K, N)
        e2bar = np.matmul(p[None], block * block)[:, k_index, layer.weights]
        # E_k[phi_j(a) e(a, w)] for every column, feature and weight in use: (b, K, N, d)
        phi_e = np.stack(
            [np.matmul(weighted[None, :, :, j], block)[:, k_index, layer.weights] for j in range(d)], axis=-1
        )
        cross = phi_e - phi_mean[None, :, None, :] * ebar[..., None]  # Cov_k(phi, e)
        beta = np.einsum("kij,bknj->bkni", phi_inv, cross)  # regression coefficients
        explained = np.einsum("bkni,bkni->bkn", beta, cross)
        residual = np.maximum(e2bar - ebar**2 - explained, 0.0).sum(axis=1)  # (b, N)
        flat = beta.transpose(0, 2, 1, 3).reshape(b, nn, kk * d)  # (b, N, K d)
        linear = np.einsum("bni,bni->bn", flat, np.matmul(flat, sigma))
        out["bias"].append(ebar.sum(axis=1))
        out["variance"].append(residual + linear)
        out["covariance"].append(np.einsum("bni,in->bn", flat, sigma_w))
    result = {key: np.concatenate(value) for key, value in out.items()}
    result["output_variance"] = np.einsum("kn,kn->n", w, sigma_w[0::d])
    result["output_mean"] = phi_mean[:, 0] @ w
    return result


def residual_variance(moments: dict[str, np.ndarray], compensation: str) -> np.ndarray:
    """Per channel and design, the error variance left after ``compensation`` (bias term excluded).

    ``affine`` divides the accumulator by the channel's gain 1 + alpha_n (alpha_n = Cov(dC_n, C_n) /
    Var C_n, the regression of the emulated accumulator on the exact one) and removes the offset,
    which leaves (Var dC_n - Cov(dC_n, C_n)^2 / Var C_n) / (1 + alpha_n)^2.
    """
    variance = moments["variance"]
    if compensation != "affine":
        return variance
    var_c = moments["output_variance"][None]
    cov = moments["covariance"]
    alpha = np.divide(cov, var_c, out=np.zeros_like(cov), where=var_c > 0)
    unexplained = np.maximum(variance - alpha * cov, 0.0)
    return unexplained / np.maximum((1.0 + alpha) ** 2, 1e-12)


def compensation_constants(moments: dict[str, np.ndarray], compensation: str) -> tuple[np.ndarray, np.ndarray]:
    """Per channel and design, ``(gain, offset)`` making ``gain * acc + offset`` the compensated accumulator.

    ``bias``: gain 1, offset -b_n. ``affine``: with acc = (1 + alpha_n) C + ..., gain 1 / (1 + alpha_n)
    and the offset that makes the mean right. ``none``: (1, 0).
    """
    bias = moments["bias"]
    ones, zeros = np.ones_like(bias), np.zeros_like(bias)
    if compensation == "none":
        return ones, zeros
    if compensation == "bias":
        return ones, -bias
    var_c = moments["output_variance"][None]
    alpha = np.divide(moments["covariance"], var_c, out=np.zeros_like(bias), where=var_c > 0)
    gain = 1.0 / (1.0 + alpha)
    mean_c = moments["output_mean"][None]
    return gain, mean_c - gain * (mean_c + bias)

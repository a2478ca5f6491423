"""The distortion model of a product of two activations (attention's Q K^T and softmax(.) V).

Per image and head the layer computes C = A B with both A (M x K) and B (K x N) activations, so no
weight is known and level 3 of :mod:`.layer_model` does not apply as is. What calibration does give:

* the exact distribution of operand pairs over all products, per head: ``J_h(a, b)`` counts, for every
  k, each row's ``A[m, k]`` with each column's ``B[k, n]`` (:func:`~objectives.operand_stats.pair_counts`);
* the measured second moments of the products of operand features, per head: with a basis
  ``f(x) = (1, t, t^2, t^3)`` of the LUT index (``t = (index - 128) / 128``) and the 16 matrices
  ``X^{ij} = f_i(A) f_j(B)`` (a product of feature-mapped matrices), ``S_h = E sum_{m,n} X X^T`` (16 x 16)
  and ``u_h = E sum_{m,n} X``, per image.

A design's error is fitted per head on the tensor basis, ``e(a, b) ~ sum_ij c_ij f_i(a) f_j(b)``, by least
squares weighted by ``J_h`` (the pairs that occur); then ``dC ~ sum_ij c_ij X^{ij} + r`` and, per image,

    E ||dC_h||^2 = c^T S_h c + sum over products of E r^2,

the fitted part exactly through the measured statistics (however the operands are correlated: within
a row, within a column, between A and B), the residual taken as independent from product to product.
The mean error of an output is exact, ``b_h = sum J_h e / outputs``: it is the bias that compensation
removes (:func:`objectives.compensation.expected_product_error`). The exact output is in the basis too
(``a b`` and the zero-point terms are products of ``1`` and ``t``), which gives Cov(dC, C) and Var C for
affine compensation. Results come as :func:`~.layer_model.channel_moments` gives them for conv/linear
layers, with the heads as channels and ``m`` the outputs of one head per image, so the network score,
compensation and the levels treat both alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Features per operand: 1, t, t^2, t^3.
DEGREE = 4
#: Rows of feature products (outputs) per step when the statistics are gathered.
CHUNK_OUTPUTS = 1 << 18


def features(count: int = DEGREE) -> np.ndarray:
    """The operand basis over LUT indices, (256, DEGREE): powers of ``t = (index - 128) / 128``."""
    t = (np.arange(256, dtype=np.float64) - 128.0) / 128.0
    return np.stack([t**i for i in range(count)], axis=1)


def output_weights(signed: bool, first_zero: int, second_zero: int) -> np.ndarray:
    """The exact output ``sum_k (a - z_a)(b - z_b)`` as weights of the 16 feature products ``X^{ij}``.

    With ``t = (index - 128) / 128``: ``a - z_a = 128 t + (128 - z_a)`` for unsigned codes, ``128 t`` for
    signed values (index = value + 128, no zero point).
    """
    ca = 0.0 if signed else 128.0 - first_zero
    cb = 0.0 if signed else 128.0 - second_zero
    w = np.zeros((DEGREE, DEGREE))
    w[1, 1] = 128.0 * 128.0
    w[1, 0] = 128.0 * cb
    w[0, 1] = 128.0 * ca
    w[0, 0] = ca * cb
    return w.reshape(-1)


@dataclass(frozen=True)
class ProductOperands:
    """What the surrogate knows of one product of two activations, gathered once from calibration data.

    Per head h: ``pairs`` (H, 256, 256) operand-pair counts over all calibration images; ``gram`` (H, 16, 16)
    and ``sums`` (H, 16) the feature-product statistics per image; ``first_histograms``/``second_histograms``
    (H, 256) operand counts. ``m``: outputs of one head per image; ``k``: the reduction; ``images``: the
    calibration images ``pairs`` count; ``weights`` (16,) the exact output in the basis; ``output_energy``:
    mean ||C||_F^2 per image over all heads.
    """

    name: str
    m: int
    k: int
    heads: int
    pairs: np.ndarray
    gram: np.ndarray
    sums: np.ndarray
    first_histograms: np.ndarray
    second_histograms: np.ndarray
    weights: np.ndarray
    images: int
    output_energy: float

    @property
    def n(self) -> int:
        """Channels (the heads)."""
        return self.heads

    @property
    def activation_histogram(self) -> np.ndarray:
        """The first operand's histogram (LUT rows), pooled over heads."""
        return self.first_histograms.sum(axis=0)

    @property
    def weight_histogram(self) -> np.ndarray:
        """The second operand's histogram (LUT columns), pooled over heads."""
        return self.second_histograms.sum(axis=0)


def product_moments(layer: ProductOperands, errors: np.ndarray, chunk: int = 16) -> dict[str, np.ndarray]:
    """Per head and design: the error's mean, variance and covariance with the exact output, per output.

    Keys and shapes as :func:`~.layer_model.channel_moments`: ``bias``, ``variance``, ``covariance``
    (n_designs, H), ``output_variance``, ``output_mean`` (H,).
    """
    f = features()
    pairs = np.asarray(layer.pairs, dtype=np.float64)  # (H, 256, 256)
    # normal equations of the J-weighted fit, per head: G[(i, j), (k, l)] = sum J f_i(a) f_k(a) f_j(b) f_l(b)
    half = np.einsum("hab,bj,bl->hajl", pairs, f, f)
    normal = np.einsum("hajl,ai,ak->hijkl", half, f, f).reshape(layer.heads, DEGREE**2, DEGREE**2)
    scale = np.maximum(np.trace(normal, axis1=1, axis2=2), 1e-300)[:, None, None]
    inverse = np.linalg.pinv(normal + 1e-12 * scale * np.eye(DEGREE**2), hermitian=True, rcond=1e-10)
    outputs = pairs.sum(axis=(1, 2)) / max(layer.k, 1)  # every output sums K pairs
    images = max(layer.images, 1)
    gram, sums, w = layer.gram, layer.sums, layer.weights
    p = float(layer.m)
    out: dict[str, list] = {"bias": [], "variance": [], "covariance": []}
    for start in range(0, errors.shape[0], chunk):
        block = errors[start : start + chunk]  # (b, 256, 256)
        weighted = pairs[None] * block[:, None]  # (b, H, 256, 256)
        rhs = np.matmul(np.matmul(f.T, weighted), f).reshape(block.shape[0], layer.heads, -1)  # f^T (J e) f
        energy = (weighted * block[:, None]).sum(axis=(2, 3))  # sum J e^2
        coef = np.einsum("hij,nhj->nhi", inverse, rhs)
        residual = np.maximum(energy - np.einsum("nhi,nhi->nh", coef, rhs), 0.0) / images  # per image
        fitted = np.einsum("nhi,hij,nhj->nh", coef, gram, coef)  # per image
        bias = np.divide(rhs[:, :, 0], outputs, out=np.zeros_like(rhs[:, :, 0]), where=outputs > 0)
        mean_c = (sums @ w) / p  # (H,)
        out["bias"].append(bias)
        out["variance"].append(np.maximum((fitted + residual) / p - bias**2, 0.0))
        out["covariance"].append(np.einsum("nhi,hij,j->nh", coef, gram, w) / p - bias * mean_c[None])
    result = {key: np.concatenate(value) for key, value in out.items()}
    mean_c = (sums @ w) / p
    result["output_mean"] = mean_c
    result["output_variance"] = np.maximum(np.einsum("i,hij,j->h", w, gram, w) / p - mean_c**2, 0.0)
    return result


class ProductAccumulator:
    """Streaming statistics of one product of two activations (see the module docstring)."""

    def __init__(self, heads: int) -> None:
        self.heads = heads
        d2 = DEGREE**2
        self.pairs = np.zeros((heads, 256, 256))
        self.gram = np.zeros((heads, d2, d2))
        self.sums = np.zeros((heads, d2))
        self.first = np.zeros((heads, 256))
        self.second = np.zeros((heads, 256))
        self.images = 0
        self.shape: tuple[int, int, int] | None = None  # (M, K, N) of one matrix

    def add(self, first_index, second_index) -> None:
        """LUT indices of one batch's operands (torch, on any device): (B, ..., M, K) and (B, ..., K, N)."""
        import torch

        from ..operand_stats import pair_counts

        heads = self.heads
        first_index, second_index = first_index.cpu(), second_index.cpu()
        m, k = first_index.shape[-2:]
        n = second_index.shape[-1]
        self.shape = (m, k, n)
        self.pairs += pair_counts(first_index, second_index, heads).numpy()
        a = first_index.reshape(first_index.shape[0], heads, -1, m, k).transpose(0, 1).reshape(heads, -1, m, k)
        b = second_index.reshape(second_index.shape[0], heads, -1, k, n).transpose(0, 1).reshape(heads, -1, k, n)
        for h in range(heads):
            self.first[h] += np.bincount(a[h].reshape(-1).numpy(), minlength=256)
            self.second[h] += np.bincount(b[h].reshape(-1).numpy(), minlength=256)
        table = torch.from_numpy(features())  # (256, d) float64
        d = DEGREE
        step = max(1, CHUNK_OUTPUTS // max(1, m * n))
        for h in range(heads):
            for start in range(0, a.shape[1], step):
                fa = table[a[h, start : start + step]]  # (g, M, K, d)
                fb = table[b[h, start : start + step]]  # (g, K, N, d)
                g = fa.shape[0]
                x = torch.bmm(fa.permute(0, 1, 3, 2).reshape(g, m * d, k), fb.reshape(g, k, n * d))
                x = x.view(g, m, d, n, d).permute(0, 1, 3, 2, 4).reshape(-1, d * d)  # (g M N, 16): X^{ij}
                self.gram[h] += (x.T @ x).numpy()
                self.sums[h] += x.sum(0).numpy()
        self.images += int(first_index.shape[0])

    def result(self, name: str, m: int, weights: np.ndarray, output_energy: float) -> ProductOperands:
        """The layer's operands; ``m`` outputs per head and image."""
        images = max(self.images, 1)
        return ProductOperands(
            name=name, m=m, k=int(self.shape[1]) if self.shape else 0, heads=self.heads, pairs=self.pairs.copy(),
            gram=self.gram / images, sums=self.sums / images, first_histograms=self.first.copy(),
            second_histograms=self.second.copy(), weights=weights, images=self.images, output_energy=output_energy,
        )

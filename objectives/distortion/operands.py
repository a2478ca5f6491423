"""Gather each layer's :class:`LayerOperands` from a quantised network on its calibration images."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .layer_model import LayerOperands, activation_features
from .products import ProductAccumulator, output_weights

logger = logging.getLogger(__name__)

#: GEMM rows per layer whose features enter the covariance estimate (a seeded random subset).
COVARIANCE_ROWS = 16384
#: Layers with a longer reduction keep a block-diagonal (per-column) covariance instead.
MAX_COVARIANCE_K = 2048


class _LayerAccumulator:
    """Streaming statistics of one (layer, group): column histograms, feature moments, output energy."""

    def __init__(self, k: int, d: int, rng: np.random.Generator) -> None:
        self.histograms = np.zeros((k, 256), dtype=np.int64)
        self.full = k <= MAX_COVARIANCE_K
        self.kd = k * d
        self.sum = np.zeros(self.kd)
        self.outer = np.zeros((self.kd, self.kd)) if self.full else None
        self.rows = 0
        self.rng = rng

    def add(self, index: np.ndarray, features: np.ndarray, keep_fraction: float) -> None:
        """``index`` (rows, K) LUT row indices; ``features`` (256, d) per index."""
        k = index.shape[1]
        flat = (index + 256 * np.arange(k)[None, :]).ravel()
        self.histograms += np.bincount(flat, minlength=k * 256).reshape(k, 256)
        if not self.full:
            return
        keep = self.rng.random(index.shape[0]) < keep_fraction
        if not keep.any():
            return
        phi = features[index[keep]].reshape(int(keep.sum()), self.kd)  # column-major in k
        self.sum += phi.sum(axis=0)
        self.outer += phi.T @ phi
        self.rows += phi.shape[0]

    def covariance(self) -> np.ndarray | None:
        """The feature covariance, or ``None`` (block-diagonal from histograms) if not measured."""
        if not self.full or self.rows < 2:
            return None
        mean = self.sum / self.rows
        return self.outer / self.rows - np.outer(mean, mean)


def collect_operands(
    qnet: Any, seed: int = 0, progress: bool = True, covariance: bool = True
) -> dict[str, list[Any]]:
    """Per layer (one entry per conv group), what the surrogate needs, from the exact network: a
    :class:`LayerOperands` per conv group or linear layer, a :class:`~.products.ProductOperands` per product
    of two activations.

    Runs the calibration images once through ``qnet`` with exact multipliers, seeing every
    layer's padded integer input codes. ``covariance=False`` skips the feature covariance
    (block-diagonal from the histograms then), which is most of the cost.
    """
    import torch

    from ..evaluate import batches

    names = list(qnet.layers)
    signed = qnet.scheme == "int8"
    rng = np.random.default_rng(seed)
    accumulators: dict[str, list[_LayerAccumulator]] = {}
    energy: dict[str, Any] = {name: 0.0 for name in names}
    images = 0
    total_images = len(qnet.calibration)
    saved = dict(qnet.assignment), qnet.compensation, dict(qnet.injection)
    qnet.reset()
    try:
        with qnet.capture(names) as records, torch.no_grad():
            for x, _ in batches(qnet.calibration, qnet.batch_size, progress=progress, desc="surrogate operands"):
                qnet(x)
                images += x.shape[0]
                for name in names:
                    layer = qnet.layer(name)
                    for codes in records[name]:
                        out = _exact_output(layer, codes).cpu()  # summed on the CPU: the same on every device
                        energy[name] = energy[name] + out.pow(2).transpose(0, 1).reshape(out.shape[1], -1).sum(1).numpy()
                        if qnet.layers[name].kind == "matmul":
                            if name not in accumulators:
                                accumulators[name] = ProductAccumulator(qnet.layers[name].heads)
                            accumulators[name].add(layer.lut_index(codes.first), layer.lut_index(codes.second))
                            continue
                        _accumulate(layer, codes, accumulators, name, rng, total_images if covariance else 0, signed)
                    records[name].clear()
    finally:
        assignment, compensation, injection = saved
        qnet.set_assignment(assignment, compensation)
        qnet.set_injection(injection)
    result = {}
    for name in names:
        layer = qnet.layer(name)
        info = qnet.layers[name]
        if info.kind == "matmul":
            quant = layer.quant
            weights = output_weights(signed, quant.first_zero, quant.second_zero)
            outputs_per_head = info.m * info.n // info.heads
            result[name] = [accumulators[name].result(name, outputs_per_head, weights, float(np.sum(energy[name]) / images))]
            continue
        result[name] = _layer_operands(name, layer, info, accumulators[name], energy[name] / images, signed)
    return result


def _exact_output(layer: Any, codes: Any) -> Any:
    """The exact integer GEMM output (zero-point terms removed), float64."""
    out = layer.products(codes, layer.exact_arithmetic())
    if layer.quant.scheme == "uint8":
        out = out - layer.zero_point_terms(codes)
    return out


def _columns(layer: Any, codes: Any) -> np.ndarray:
    """The im2col matrix of LUT row indices, (groups, rows, K)."""
    import torch.nn.functional as F
    from torch import nn

    index = layer.lut_index(codes).cpu()
    if not isinstance(layer, nn.Conv2d):
        return index.numpy()[None]
    cols = F.unfold(index.double(), layer.kernel_size, dilation=layer.dilation, stride=layer.stride)
    n, ck, rows = cols.shape
    g = layer.groups
    cols = cols.view(n, g, ck // g, rows).permute(1, 0, 3, 2).reshape(g, n * rows, ck // g)
    return cols.numpy().astype(np.int64)


def _accumulate(layer, codes, accumulators, name, rng, total_images, signed) -> None:
    cols = _columns(layer, codes)
    groups, rows, k = cols.shape
    features = activation_features(_activation_values(layer, signed))
    if name not in accumulators:
        accumulators[name] = [
            _LayerAccumulator(k, features.shape[1], np.random.default_rng(rng.integers(2**63)))
            for _ in range(groups)
        ]
    expected_rows = rows / codes.shape[0] * total_images
    keep_fraction = min(1.0, COVARIANCE_ROWS / expected_rows) if expected_rows > 0 else 0.0
    for g in range(groups):
        accumulators[name][g].add(cols[g], features, keep_fraction)


def _activation_values(layer: Any, signed: bool) -> np.ndarray:
    """The activation value entering the exact output for each LUT row index (zero point removed)."""
    return np.arange(-128, 128) if signed else np.arange(256) - int(layer.quant.input_zero)


def _layer_operands(name, layer, info, accumulators, output_energy, signed) -> list[LayerOperands]:
    w_index = layer.lut_index(layer.weight_codes).cpu().numpy().reshape(layer.weight_codes.shape[0], -1)  # (O, K)
    w_values = layer.weight_codes.double().reshape(w_index.shape[0], -1).cpu().numpy()
    w_values = w_values - layer.quant.weight_zero.double().cpu().numpy()[:, None]
    groups = len(accumulators)
    per_group = w_index.shape[0] // groups
    out = []
    for g, acc in enumerate(accumulators):
        rows = slice(g * per_group, (g + 1) * per_group)
        out.append(
            LayerOperands(
                name=name if groups == 1 else f"{name}[{g}]",
                m=info.m,
                weights=np.ascontiguousarray(w_index[rows].T),
                weight_values=np.ascontiguousarray(w_values[rows].T),
                column_histograms=acc.histograms.astype(np.float64),
                activation_values=_activation_values(layer, signed),
                output_energy=float(output_energy[rows].sum()),
                feature_cov=acc.covariance(),
            )
        )
    return out

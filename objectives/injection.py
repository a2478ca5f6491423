"""Synthetic error injection (as in the paper): every product gets an error of chosen mean and spread.

Product errors are independent Gaussians of mean ``mu`` and standard deviation ``sigma``, so the
error of a sum over K products is exactly N(K mu, K sigma^2): it is drawn once per output,
and costs no more than exact inference. ``relative=True`` takes ``mean`` and ``std`` as
fractions of the RMS of the layer's products, sqrt(E[a^2] E[w^2]) over its calibration histograms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class ErrorSpec:
    """Per-product error: mean and standard deviation, absolute or relative to the layer's product RMS."""

    mean: float = 0.0
    std: float = 0.0
    relative: bool = False

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mean) and math.isfinite(self.std) and self.std >= 0):
            raise ValueError(f"error mean must be finite and std finite and >= 0, got {self.mean}, {self.std}")


class GaussianInjection:
    """A layer's noise source: ``noise(layer, sums)`` draws the error of each output sum."""

    def __init__(self, k: int, mean: float, std: float, seed: int) -> None:
        self.k = k
        self.mean = mean
        self.std = std
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, layer: torch.nn.Module, sums: torch.Tensor) -> torch.Tensor:
        # drawn on the CPU's generator whatever the device: the same noise, so the same results, everywhere
        noise = torch.randn(sums.shape, generator=self.generator, dtype=torch.float64)
        noise.mul_(math.sqrt(self.k) * self.std).add_(self.k * self.mean)
        return noise.to(sums.device, non_blocking=True)


def product_rms(activation: np.ndarray, weight: np.ndarray, scheme: str) -> float:
    """sqrt(E[a^2] E[w^2]) of operand values (LUT-domain) under the given 256-bin histograms."""
    values = np.arange(-128, 128, dtype=np.float64) if scheme == "int8" else np.arange(256, dtype=np.float64)

    def second_moment(counts: np.ndarray) -> float:
        total = counts.sum()
        return float((counts * values**2).sum() / total) if total else 0.0

    return math.sqrt(second_moment(activation) * second_moment(weight))

"""Operand statistics: 256-bin histograms of the codes that enter each layer's multipliers.

Activation histograms count the entries of the im2col matrix (each input value once per
receptive field it falls in, padding included), so normalised they are exactly the distribution
p(a) of activation operands over the layer's products. They are kept per input channel and
kernel tap, (C_in, kh*kw, 256) (a linear layer: (K, 1, 256)); for ``groups == 1`` reshaping
to (K, 256) gives one histogram per im2col column, in the order of the flattened weight
(O, C_in, kh, kw). Weight histograms count the layer's weight codes. Bin ``i`` is LUT
row/column ``i``: value i - 128 for int8, code i for uint8.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass
class OperandHistograms:
    """One layer's operand counts (int64) on ``images`` calibration images."""

    activation_per_tap: np.ndarray
    weight: np.ndarray
    images: int = 0

    @property
    def activation_per_channel(self) -> np.ndarray:
        """Activation counts per input channel, (C_in, 256)."""
        return self.activation_per_tap.sum(1)

    @property
    def activation(self) -> np.ndarray:
        """Activation counts over all products, (256,)."""
        return self.activation_per_tap.sum((0, 1))


class HistogramObserver:
    """A layer observer accumulating activation-code counts per input channel and kernel tap."""

    def __init__(self, channels: int, taps: int) -> None:
        self.shape = (channels, taps, 256)
        self.counts = torch.zeros(channels * taps * 256, dtype=torch.int64)
        self.images = 0

    def __call__(self, layer: nn.Module, codes: torch.Tensor) -> None:
        index = layer.lut_index(codes)
        channels, taps = self.shape[0], self.shape[1]
        if self.counts.device != index.device:  # integer counts: the same on every device
            self.counts = self.counts.to(index.device)
        if isinstance(layer, nn.Conv2d):
            n, _, h, w = codes.shape
            (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
            ho, wo = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
            base = (torch.arange(channels, device=index.device) * taps * 256).view(1, channels, 1, 1)
            for i in range(kh):
                for j in range(kw):
                    seen = index[:, :, i * dh : i * dh + (ho - 1) * sh + 1 : sh, j * dw : j * dw + (wo - 1) * sw + 1 : sw]
                    flat = (seen + base + (i * kw + j) * 256).reshape(-1)
                    self.counts += torch.bincount(flat, minlength=self.counts.numel())
        else:
            base = (torch.arange(channels, device=index.device) * 256).view(1, channels)
            self.counts += torch.bincount((index + base).reshape(-1), minlength=self.counts.numel())
        self.images += codes.shape[0]

    def result(self, layer: nn.Module) -> OperandHistograms:
        """The histograms seen so far, with the layer's weight-code counts."""
        weight = np.bincount(layer.lut_index(layer.weight_codes).reshape(-1).cpu().numpy(), minlength=256)
        return OperandHistograms(self.counts.view(self.shape).cpu().numpy().copy(), weight.astype(np.int64), self.images)


@dataclass
class MatmulHistograms(OperandHistograms):
    """A product of two activations: ``activation_per_tap`` (H, 1, 256) counts the first operand (LUT rows) per
    head, ``weight`` the second (LUT columns); ``second_per_channel`` (H, 256) the second per head, ``pairs``
    (H, 256, 256) the operand pairs of every product and ``outputs`` (H,) the outputs, per head."""

    second_per_channel: np.ndarray | None = None
    pairs: np.ndarray | None = None
    outputs: np.ndarray | None = None


def pair_counts(first_index: torch.Tensor, second_index: torch.Tensor, heads: int) -> torch.Tensor:
    """Operand-pair counts of a product, float64 (H, 256, 256), from LUT indices (B, ..., M, K), (B, ..., K, N).

    Per matrix and k, the pairs are every row's a[m, k] with every column's b[k, n]: the outer product of
    the counts of column k of the first operand and row k of the second.
    """
    m, k = first_index.shape[-2:]
    n = second_index.shape[-1]
    a = first_index.reshape(first_index.shape[0], heads, -1, m, k).transpose(0, 1).reshape(heads, -1, m, k)
    b = second_index.reshape(second_index.shape[0], heads, -1, k, n).transpose(0, 1).reshape(heads, -1, k, n)
    out = torch.zeros((heads, 256, 256), dtype=torch.float64, device=a.device)
    step = max(1, (1 << 22) // max(1, k * 256))
    for start in range(0, a.shape[1], step):
        stop = min(a.shape[1], start + step)
        ca = torch.zeros((heads, stop - start, k, 256), dtype=torch.float64, device=a.device)
        ca.scatter_add_(3, a[:, start:stop].transpose(2, 3), torch.ones((1, 1, 1, 1), dtype=torch.float64,
                                                                        device=a.device).expand(heads, stop - start, k, m))
        cb = torch.zeros((heads, stop - start, k, 256), dtype=torch.float64, device=a.device)
        cb.scatter_add_(3, b[:, start:stop], torch.ones((1, 1, 1, 1), dtype=torch.float64,
                                                        device=a.device).expand(heads, stop - start, k, n))
        out += ca.reshape(heads, -1, 256).transpose(1, 2) @ cb.reshape(heads, -1, 256)
    return out


class MatmulHistogramObserver:
    """A product's observer: counts of both operands per head, of their pairs and of the outputs."""

    def __init__(self, heads: int) -> None:
        self.heads = heads
        self.first = torch.zeros(heads, 256, dtype=torch.int64)
        self.second = torch.zeros(heads, 256, dtype=torch.int64)
        self.pairs = torch.zeros(heads, 256, 256, dtype=torch.float64)
        self.outputs = torch.zeros(heads, dtype=torch.float64)
        self.images = 0

    def __call__(self, layer: nn.Module, codes) -> None:
        heads = self.heads
        if heads > 1 and (codes.first.dim() < 4 or codes.first.shape[1] != heads):
            raise RuntimeError(f"a product with {heads} heads in dimension 1 got operands of shape "
                               f"{tuple(codes.first.shape)}")
        first, second = layer.lut_index(codes.first).cpu(), layer.lut_index(codes.second).cpu()
        for counts, index in ((self.first, first), (self.second, second)):
            per_head = index.reshape(index.shape[0], heads, -1).transpose(0, 1)
            for h in range(heads):
                counts[h] += torch.bincount(per_head[h].reshape(-1), minlength=256)
        self.pairs += pair_counts(first, second, heads)
        self.outputs += first.shape[:-1].numel() * second.shape[-1] / heads
        self.images += codes.first.shape[0]

    def result(self, layer: nn.Module) -> MatmulHistograms:
        """The histograms seen so far."""
        first = self.first.numpy().copy()
        second = self.second.numpy().copy()
        return MatmulHistograms(first[:, None, :], second.sum(0), self.images, second, self.pairs.numpy().copy(),
                                self.outputs.numpy().copy())

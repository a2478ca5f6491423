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

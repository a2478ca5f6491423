"""Per-channel compensation of an AxM's accumulated error, folded into requantisation (free in hardware).

``bias``: subtract each output channel's expected accumulated error
``b_n = sum_k ebar_c(k)(W[k, n])`` with ``ebar_c(w) = sum_a p_c(a) e(a, w)`` from the layer's
per-input-channel activation histograms and its known weights (DESIGN.md level 3).
``affine``: a per-channel gain and offset, ``acc <- g_n acc + h_n``, fitted by least squares to
the exact accumulator on the calibration images (inputs from the exact network), which also
removes the scale-like part of errors that grow with the product.
"""

from __future__ import annotations

import numpy as np
import torch

MODES = ("none", "bias", "affine")


def expected_error(
    error_table: np.ndarray, activation_per_channel: np.ndarray, weight_index: np.ndarray, groups: int = 1
) -> np.ndarray:
    """Expected accumulated error per output channel, float64 (O,).

    ``error_table`` (256, 256) is ``lut - exact`` (row activation, column weight);
    ``activation_per_channel`` (C_in, 256) counts; ``weight_index`` the LUT column of every
    weight, (O, C_in/groups, kh, kw) or (O, K).
    """
    counts = activation_per_channel.astype(np.float64)
    totals = counts.sum(1, keepdims=True)
    p = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    ebar = p @ error_table.astype(np.float64)  # (C_in, 256): mean error of each weight value per channel
    out_channels = weight_index.shape[0]
    w = weight_index.reshape(out_channels, weight_index.shape[1], -1)  # (O, C/g, taps)
    per_group = out_channels // groups
    channel = (np.arange(out_channels) // per_group)[:, None] * w.shape[1] + np.arange(w.shape[1])[None, :]
    return ebar[channel[:, :, None], w].sum(axis=(1, 2))


class AffineFit:
    """Streaming per-channel least squares of the exact accumulator on the approximate one."""

    def __init__(self) -> None:
        self.n = 0
        self.shift_x = self.shift_y = None
        self.sx = self.sy = self.sxx = self.sxy = None

    def update(self, approx: torch.Tensor, exact: torch.Tensor) -> None:
        """Add one batch of accumulators, (N, O, ...) float64 each."""
        x = approx.transpose(0, 1).reshape(approx.shape[1], -1).double()
        y = exact.transpose(0, 1).reshape(exact.shape[1], -1).double()
        if self.shift_x is None:  # centre on the first batch's means to keep the sums well conditioned
            self.shift_x, self.shift_y = x.mean(1), y.mean(1)
            zeros = torch.zeros_like(self.shift_x)
            self.sx, self.sy, self.sxx, self.sxy = zeros.clone(), zeros.clone(), zeros.clone(), zeros.clone()
        x = x - self.shift_x[:, None]
        y = y - self.shift_y[:, None]
        self.n += x.shape[1]
        self.sx += x.sum(1)
        self.sy += y.sum(1)
        self.sxx += (x * x).sum(1)
        self.sxy += (x * y).sum(1)

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(gain, offset) per channel such that ``gain * approx + offset`` best matches the exact accumulator."""
        n = self.n
        mx, my = self.sx / n, self.sy / n
        var = self.sxx / n - mx * mx
        cov = self.sxy / n - mx * my
        ok = var > 1e-9 * (1.0 + mx.abs() ** 2)
        gain = torch.where(ok, cov / torch.where(ok, var, torch.ones_like(var)), torch.ones_like(var))
        # Back to uncentred accumulators: y = g x + h with x, y shifted by shift_x, shift_y.
        offset = (my + self.shift_y) - gain * (mx + self.shift_x)
        return gain, offset

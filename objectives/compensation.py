"""Per-channel compensation of an AxM's accumulated error, folded into requantisation (free in hardware).

``bias``: subtract each output channel's expected accumulated error (a product of two activations: each
head's, :func:`expected_product_error`)
``b_n = sum_k ebar_c(k)(W[k, n])`` with ``ebar_c(w) = sum_a p_c(a) e(a, w)`` from the layer's
per-input-channel activation histograms and its known weights (DESIGN.md level 3).
``affine``: per channel, the emulated accumulator is regressed on the exact one over the
calibration images (inputs from the exact network), ``acc ~ s_n C + t_n``, and inverted:
``acc <- (acc - t_n) / s_n``. This corrects each channel's scale as well as its mean (many designs'
errors grow with the product like a scale error, which no constant removes) and keeps the
corrected output unbiased in scale, ``E[corrected | C] = C``. The least-squares fit of C on acc
would instead shrink noisy channels towards their mean: measured on ResNet-20 it costs accuracy.
``threshold``: an offset only (gain 1, like ``bias``) from the same regression, chosen so the
corrected accumulator is unbiased where the channel's output crosses zero (its ReLU threshold),
``C* = -bias / scale`` in accumulator units: ``acc <- acc - E[dC | C = C*]``. A constant cannot
undo a scale error ``dC ~ alpha C``; ``bias`` removes its mean ``alpha E[C]`` and so moves the
zero crossing by ``alpha (C* - E[C])``, this mode leaves it in place. For an error that does not
depend on C it is ``bias``.
"""

from __future__ import annotations

import numpy as np
import torch

MODES = ("none", "bias", "affine", "threshold")


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


def expected_product_error(error_table: np.ndarray, pairs: np.ndarray, outputs: np.ndarray) -> np.ndarray:
    """Per head of a product of two activations, the expected accumulated error of one output, float64 (H,).

    ``pairs`` (H, 256, 256) counts the operand pairs (first operand: row, second: column) of every product
    over the calibration images, ``outputs`` (H,) their outputs: the mean of ``sum_k e(a_k, b_k)`` over the
    outputs is the summed error of all pairs over the outputs, exactly, whatever ties the operands together.
    """
    pairs = np.asarray(pairs, dtype=np.float64)
    total = np.einsum("hab,ab->h", pairs, np.asarray(error_table, dtype=np.float64))
    outputs = np.asarray(outputs, dtype=np.float64)
    return np.divide(total, outputs, out=np.zeros_like(total), where=outputs > 0)


class AffineFit:
    """Streaming per-channel regression of the approximate accumulator on the exact one."""

    def __init__(self) -> None:
        self.n = 0
        self.shift_x = self.shift_y = None
        self.sx = self.sy = self.syy = self.sxy = None

    def update(self, approx: torch.Tensor, exact: torch.Tensor) -> None:
        """Add one batch of accumulators, (N, O, ...) float64 each (summed on the CPU: the accumulators are
        bit-exact on every device, and so are the fit and the compensation it gives)."""
        x = approx.cpu().transpose(0, 1).reshape(approx.shape[1], -1).double()
        y = exact.cpu().transpose(0, 1).reshape(exact.shape[1], -1).double()
        if self.shift_x is None:  # centre on the first batch's means to keep the sums well conditioned
            self.shift_x, self.shift_y = x.mean(1), y.mean(1)
            zeros = torch.zeros_like(self.shift_x)
            self.sx, self.sy, self.syy, self.sxy = zeros.clone(), zeros.clone(), zeros.clone(), zeros.clone()
        x = x - self.shift_x[:, None]
        y = y - self.shift_y[:, None]
        self.n += x.shape[1]
        self.sx += x.sum(1)
        self.sy += y.sum(1)
        self.syy += (y * y).sum(1)
        self.sxy += (x * y).sum(1)

    def _regression(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Centred means of approx and exact, the slope of ``approx ~ s exact + t``, and where it is usable."""
        n = self.n
        mx, my = self.sx / n, self.sy / n
        var_y = self.syy / n - my * my
        cov = self.sxy / n - mx * my
        slope = cov / torch.where(var_y > 0, var_y, torch.ones_like(var_y))
        ok = (var_y > 1e-9 * (1.0 + my.abs() ** 2)) & (slope > 0)
        return mx, my, slope, ok

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(gain, offset) per channel: ``gain * approx + offset`` undoes ``approx ~ s exact + t``.

        A channel whose exact output does not vary (or whose slope is not positive) gets gain 1
        and the mean difference as offset.
        """
        mx, my, slope, ok = self._regression()
        gain = torch.where(ok, 1.0 / torch.where(ok, slope, torch.ones_like(slope)), torch.ones_like(slope))
        offset = (my + self.shift_y) - gain * (mx + self.shift_x)  # uncentred: exact mean = gain * approx mean + offset
        return gain, offset

    def threshold_offset(self, threshold: torch.Tensor) -> torch.Tensor:
        """Per channel, ``-E[approx - exact | exact = threshold]`` from the regression ``approx ~ s exact + t``.

        ``threshold`` (O,) float64 in accumulator units. A channel whose exact output does not
        vary (or whose slope is not positive) gets minus its mean difference, as ``bias`` would.
        """
        mx, my, slope, ok = self._regression()
        mean_error = (mx + self.shift_x) - (my + self.shift_y)
        # E[dC | C = c] = E[dC] + (s - 1)(c - E[C]), with the centred exact mean E[C] = my + shift_y
        at_threshold = mean_error + (slope - 1.0) * (threshold.to(slope) - (my + self.shift_y))
        return -torch.where(ok, at_threshold, mean_error)

"""Choosing quantisation ranges: per-tensor activations from calibration samples, per-channel weights."""

from __future__ import annotations

import numpy as np
import torch

CALIBRATORS = ("mse", "max", "percentile")
SAMPLES_PER_BATCH = 1 << 14
MAX_SAMPLES = 1 << 17
PERCENTILE = 99.99


def fractions(start: float = 0.2, end: float = 1.0, steps: int = 41) -> tuple[float, ...]:
    """The fractions of the observed range the MSE calibrator tries: ``torch.linspace(start, end, steps)`` in
    float32 exactly as x86 vector code computes it (each value one fused multiply-add, rounded once: ``start + i
    step`` for the first half, ``end - (steps - 1 - i) step`` for the rest), written out in exact arithmetic.

    torch.linspace's last bits depend on the CPU: scalar code rounds the product and the sum separately, and for
    (0.2, 1.0, 41) 7 of the 41 values differ by one float32 step. Each such fraction changes a layer's scale,
    and with it every figure of a study, so the grid is computed here, the same on every machine.
    """
    step = float(np.float32((end - start) / (steps - 1)))
    first, last = float(np.float32(start)), float(np.float32(end))
    # float32 operands: every product and sum below is exact in float64, so one rounding to float32 is the fma's
    return tuple(
        float(np.float32(first + step * i if i < steps // 2 else last - step * (steps - 1 - i))) for i in range(steps)
    )


#: Range fractions of the MSE calibrator (see :func:`fractions`).
FRACTIONS = fractions()


class RangeObserver:
    """Exact minimum and maximum of everything seen, plus a seeded random sample of the values."""

    def __init__(self, seed: int = 0) -> None:
        self.low = float("inf")
        self.high = float("-inf")
        self.samples: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def update(self, x: torch.Tensor) -> None:
        """Record one batch of values."""
        x = x.detach().reshape(-1).float()
        if x.numel() == 0:
            return
        self.low = min(self.low, float(x.min()))
        self.high = max(self.high, float(x.max()))
        if x.numel() > SAMPLES_PER_BATCH:
            x = x[torch.randint(x.numel(), (SAMPLES_PER_BATCH,), generator=self.generator)]
        self.samples.append(x.clone())

    def sample(self) -> torch.Tensor:
        """The retained values (at most ``MAX_SAMPLES``)."""
        values = torch.cat(self.samples) if self.samples else torch.zeros(1)
        if values.numel() > MAX_SAMPLES:
            values = values[torch.randperm(values.numel(), generator=self.generator)[:MAX_SAMPLES]]
        return values


def activation_quant(observer: RangeObserver, scheme: str, method: str = "mse") -> tuple[float, int]:
    """Per-tensor (scale, zero point): symmetric for ``int8``, asymmetric unsigned for ``uint8``."""
    if method not in CALIBRATORS:
        raise ValueError(f"unknown calibrator {method!r}; choose one of {', '.join(CALIBRATORS)}")
    low, high = min(observer.low, 0.0), max(observer.high, 0.0)
    values = observer.sample()
    if method == "percentile":
        low = min(float(torch.quantile(values, 1 - PERCENTILE / 100)), 0.0)
        high = max(float(torch.quantile(values, PERCENTILE / 100)), 0.0)
    if high - low <= 0:
        return 1.0, 0 if scheme == "int8" else 0
    shrink = FRACTIONS if method == "mse" else (1.0,)
    best, best_err = None, float("inf")
    for alpha in shrink:
        scale, zero = _range_to_quant(alpha * low, alpha * high, scheme)
        err = float(((_fake_quant(values, scale, zero, scheme) - values) ** 2).double().mean())
        if err < best_err:
            best, best_err = (scale, zero), err
    return best


def weight_quant(weight: torch.Tensor, scheme: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output-channel (scale, zero point), float64 and int64 (O,): max-abs symmetric or min/max asymmetric."""
    w = weight.detach().double().flatten(1)
    if scheme == "int8":
        scale = w.abs().amax(1) / 127.0
        zero = torch.zeros(w.shape[0], dtype=torch.int64)
    else:
        low = w.amin(1).clamp(max=0.0)
        high = w.amax(1).clamp(min=0.0)
        scale = (high - low) / 255.0
        safe = torch.where(scale > 0, scale, torch.ones_like(scale))
        zero = torch.round(-low / safe).clamp(0, 255).to(torch.int64)
    scale = torch.where(scale > 0, scale, torch.ones_like(scale))
    return scale, zero


def _range_to_quant(low: float, high: float, scheme: str) -> tuple[float, int]:
    if scheme == "int8":
        return max(abs(low), abs(high)) / 127.0, 0
    scale = (high - low) / 255.0
    return scale, int(min(max(round(-low / scale), 0), 255))


def _fake_quant(x: torch.Tensor, scale: float, zero: int, scheme: str) -> torch.Tensor:
    lo, hi = (-128, 127) if scheme == "int8" else (0, 255)
    return (torch.round(x / scale) + zero).clamp(lo, hi).sub(zero).mul(scale)

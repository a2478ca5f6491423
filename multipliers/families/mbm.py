"""Minimally biased multiplier (MBM)."""

from __future__ import annotations

import numpy as np

from ..unit_gate import GateCount
from ._base import SignMagnitudeFamily
from .mitchell import FULL_FRACTION, log_product, log_structure


def mbm_correction(w: int) -> int:
    """The error-reduction constant in units of 2^-w: 1/12 = 0.000101010101..b cut to w bits."""
    return (1 << w) // 12


class MinimallyBiased(SignMagnitudeFamily):
    """Minimally biased multiplier: Mitchell's log multiplier plus a constant that cancels its mean error.

    Saadat, Bokhari and Parameswaran, "Minimally biased multipliers for approximate integer
    and floating-point multiplication", IEEE TCAD 37(11), 2018. Mitchell's error is
    2^(k1+k2) x1 x2 when f1 + f2 < 1 and 2^(k1+k2) (1 - f1)(1 - f2) otherwise; averaged over
    either region both equal 2^(k1+k2) / 12, so the constant 1/12 = 0.0001010101..b is added
    to the fraction sum (its half when the sum carried, since that mantissa is scaled by
    2^(k1+k2+1)). The constant here is 1/12 cut to the ``w`` fraction bits kept (w = 7: 10/128,
    the bit pattern 0001010); the output keeps the integer part of the antilog. Signed
    designs are sign-magnitude.
    """

    name = "mbm"
    title = "Minimally biased (Mitchell-based) multiplier"
    citation = "Saadat, Bokhari & Parameswaran, IEEE TCAD 37(11), 2018"

    def grid(self, signed: bool) -> list[dict]:
        return [{"w": w} for w in (7, 6, 5)]

    def check_params(self, signed: bool, w: int = FULL_FRACTION) -> None:
        if not 4 <= int(w) <= FULL_FRACTION:
            # below 4 bits the cut constant (1/12 truncated) is zero: the design is Mitchell's
            raise ValueError(f"mbm: w (fraction bits kept) must be in 4..{FULL_FRACTION}, got {w}")

    def core(self, a: np.ndarray, b: np.ndarray, w: int = FULL_FRACTION) -> np.ndarray:
        return log_product(a, b, int(w), correction=mbm_correction(int(w)))

    def core_structure(self, w: int = FULL_FRACTION) -> GateCount:
        return log_structure(int(w), correction=True)

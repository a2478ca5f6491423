"""Mitchell's logarithmic multiplier."""

from __future__ import annotations

import numpy as np

from ..unit_gate import GateCount, barrel_shifter, incrementer, leading_one_detector, ripple_adder
from ._base import BITS, SignMagnitudeFamily
from ._common import floor_log2, left_shifter, parallel, stages, zero_detector

#: Fraction bits of an 8-bit operand's logarithm (the bits below its leading one).
FULL_FRACTION = BITS - 1


def log_product(a: np.ndarray, b: np.ndarray, w: int, correction: int = 0) -> np.ndarray:
    """Mitchell's antilog of log2(a) + log2(b) with w-bit fractions, as the hardware computes it.

    a = 2^k1 (1 + f1) with f1 = x1 / 2^k1; the fraction is kept as the w-bit fixed-point
    F1 = floor(f1 2^w) (truncation when k1 > w, exact otherwise). With S = F1 + F2:
    S < 2^w gives the mantissa 2^w + S at exponent k1 + k2, S >= 2^w gives the mantissa S
    (= 1.(S - 2^w) in fixed point) at exponent k1 + k2 + 1. ``correction`` (in units of
    2^-w) is added to the fraction, halved when S carried (MBM); the output is the integer
    part of mantissa * 2^exponent / 2^w. Zero operands give zero.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    k1, k2 = floor_log2(a), floor_log2(b)
    x1 = np.maximum(a - (1 << k1), 0)
    x2 = np.maximum(b - (1 << k2), 0)
    f1 = (x1 << w) >> k1
    f2 = (x2 << w) >> k2
    s = f1 + f2
    carry = s >> w  # 0 or 1
    low = s - (carry << w)
    corr = np.where(carry == 1, correction >> 1, correction)
    mantissa = (1 << w) + low + corr
    exponent = k1 + k2 + carry
    product = (mantissa << exponent) >> w
    return np.where((a == 0) | (b == 0), 0, product)


def log_structure(w: int, correction: bool = False) -> GateCount:
    """Unit gates of a Mitchell-style log multiplier core with w-bit fractions."""
    lod = parallel(leading_one_detector(BITS), leading_one_detector(BITS))
    # normalise each operand: shift the bits below the leading one up to the binary point,
    # keeping w of them
    normalise = parallel(barrel_shifter(w, stages(BITS - 1)), barrel_shifter(w, stages(BITS - 1)))
    add = parallel(ripple_adder(w), ripple_adder(3))  # fractions, characteristics (+carry in)
    if correction:  # add the constant or its half, selected by the fraction carry
        add = add.then(GateCount(mux2=w).then(incrementer(w)))
    # antilog: 1.fraction shifted left by the characteristic sum onto the 16-bit output
    antilog = left_shifter(w + 2, 2 * BITS - 1)
    zero = parallel(zero_detector(BITS), zero_detector(BITS)) + GateCount(and2=2 * BITS, or2=1, depth=1)
    return lod.then(normalise).then(add).then(antilog).then(zero)


class Mitchell(SignMagnitudeFamily):
    """Mitchell's logarithmic multiplier: add the piecewise-linear logarithms and take the linear antilog.

    Mitchell, "Computer multiplication and division using binary logarithms", IRE Trans.
    Electronic Computers EC-11(4), 1962. With a = 2^k1 + x1, b = 2^k2 + x2 (k the leading-one
    position): P = 2^(k1+k2) + x1 2^k2 + x2 2^k1 when x1/2^k1 + x2/2^k2 < 1, else
    2 (x1 2^k2 + x2 2^k1). With full 7-bit fractions that is exact integer arithmetic; it never
    overestimates and its worst relative error is 1/9 (11.1%, at f1 = f2 = 1/2). ``w`` < 7 keeps
    only w fraction bits of each operand (truncation), for cheaper and coarser designs.
    Signed designs are sign-magnitude.
    """

    name = "mitchell"
    title = "Mitchell logarithmic multiplier"
    citation = "Mitchell, IRE Trans. Electronic Computers 11(4), 1962"

    def grid(self, signed: bool) -> list[dict]:
        return [{"w": w} for w in (7, 5, 3)]

    def check_params(self, signed: bool, w: int = FULL_FRACTION) -> None:
        if not 1 <= int(w) <= FULL_FRACTION:
            raise ValueError(f"mitchell: w (fraction bits kept) must be in 1..{FULL_FRACTION}, got {w}")

    def core(self, a: np.ndarray, b: np.ndarray, w: int = FULL_FRACTION) -> np.ndarray:
        return log_product(a, b, int(w))

    def core_structure(self, w: int = FULL_FRACTION) -> GateCount:
        return log_structure(int(w))

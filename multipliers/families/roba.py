"""Rounding-based approximate multiplier (RoBA)."""

from __future__ import annotations

import numpy as np

from ..unit_gate import GateCount, ripple_adder
from ._base import BITS, SignMagnitudeFamily
from ._common import floor_log2, one_hot_shifter, parallel, stages


def round_to_power_of_two(x: np.ndarray) -> np.ndarray:
    """RoBA's rounding: the nearest power of two, 3 * 2^(p-2) going up to 2^p (0 stays 0).

    With t the leading-one position, x rounds up to 2^(t+1) exactly when bit t-1 is also set
    (x >= 3 * 2^(t-1)), else down to 2^t: the paper's per-bit rule
    Ar[i] = (~A[i] A[i-1] A[i-2] + A[i] ~A[i-1]) * prod_{j>i} ~A[j].
    """
    t = floor_log2(x)
    second = np.where(t >= 1, (x >> np.maximum(t - 1, 0)) & 1, 0)
    rounded = np.int64(1) << (t + second)
    return np.where(x == 0, 0, rounded)


class Roba(SignMagnitudeFamily):
    """RoBA: a*b ~ Ar*b + a*Br - Ar*Br with Ar, Br the operands rounded to the nearest power of two.

    Zendegani, Kamal, Bahadori, Afzali-Kusha and Pedram, "RoBA multiplier: a rounding-based
    approximate multiplier for high-speed yet energy-efficient digital signal processing",
    IEEE TVLSI 25(2), 2017. Since a*b = (a - Ar)(b - Br) + Ar*b + a*Br - Ar*Br, dropping the
    first term leaves only shifts and additions; the error is -(a - Ar)(b - Br), zero whenever
    either operand is a power of two, and its sign depends on the rounding directions
    (relative error at most 1/9). Ties 3 * 2^(p-2) round up to 2^p, the paper's choice.
    Signed designs are the paper's sign-magnitude S-RoBA (its cheaper AS-RoBA variant, which
    takes one's complements instead of absolute values, is not modelled).
    """

    name = "roba"
    title = "Rounding-based approximate multiplier"
    citation = "Zendegani et al., IEEE TVLSI 25(2), 2017"

    def grid(self, signed: bool) -> list[dict]:
        return [{}]

    def core(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ar, br = round_to_power_of_two(a), round_to_power_of_two(b)
        return ar * b + a * br - ar * br

    def core_structure(self) -> GateCount:
        """Gate-level count, in the equivalent form Ar*b + (a - Ar)*Br (one adder, no Ar*Br path)."""
        n = BITS + 1  # the rounded operand is a one-hot word of 9 bits
        # Ar[i] = (~A[i] A[i-1] A[i-2] + A[i] ~A[i-1]) * (no one above i): bit 8 is A7 A6, bit 7
        # needs no prefix, bits 6..2 take 4 ANDs and an OR, bit 1 two ANDs, bit 0 one; the
        # "no one above i" prefix is a chain of 6 ORs
        rounding = GateCount(and2=1 + 3 + 5 * 4 + 2 + 1, or2=1 + 5 + 6, depth=2 + 6)
        # d = a - Ar as an 8-bit two's complement word, without an adder: rounding down clears
        # the leading one (AND with ~Ar); rounding up (up = OR_j Ar[j] a[j-1]) sets every bit
        # from Ar's position upward (a prefix OR of the one-hot word), the sign extension
        difference = GateCount(and2=BITS + BITS + BITS, or2=BITS + (BITS - 1) + BITS, depth=4)
        shift_b = one_hot_shifter(BITS, n)  # Ar * b
        # (a - Ar) * Br: the signed word on the one-hot lines, its sign copied above the word
        sign_extend = GateCount(and2=n, or2=(n - 1) + n, depth=2)
        shift_d = one_hot_shifter(BITS, n) + sign_extend
        rounders = parallel(rounding, rounding)
        return rounders.then(parallel(shift_b, difference.then(shift_d))).then(ripple_adder(2 * BITS + 1))

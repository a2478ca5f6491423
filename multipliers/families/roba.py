"""Rounding-based approximate multiplier (RoBA)."""

from __future__ import annotations

import numpy as np

from ..unit_gate import GateCount, leading_one_detector, ripple_adder
from ._base import BITS, SignMagnitudeFamily
from ._common import floor_log2, left_shifter, parallel


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
        n = BITS + 1  # the rounded operand is a one-hot word of 9 bits
        rounding = GateCount(and2=4 * n, or2=2 * n, depth=6)
        encode = leading_one_detector(n)  # one-hot -> shift amount
        rounders = parallel(rounding.then(encode), rounding.then(encode))
        shifts = parallel(left_shifter(BITS, BITS, 2 * BITS + 1), left_shifter(BITS, BITS, 2 * BITS + 1))
        # Ar*Br is a single one: decode its position (sum of the shift amounts)
        one_hot = ripple_adder(4).then(GateCount(and2=2 * BITS + 1, depth=2))
        add = ripple_adder(2 * BITS + 1).then(ripple_adder(2 * BITS + 1))  # + a*Br, - Ar*Br
        return rounders.then(parallel(shifts, one_hot)).then(add)

"""Dynamic range unbiased multiplier (DRUM)."""

from __future__ import annotations

import numpy as np

from ..unit_gate import GateCount, barrel_shifter, leading_one_detector, ripple_adder
from ._base import BITS, SignMagnitudeFamily
from ._common import floor_log2, full_array, left_shifter, parallel, stages


def drum_operand(x: np.ndarray, k: int) -> np.ndarray:
    """The k-bit segment from the leading one, LSB forced to 1, shifted back (x if it has <= k bits)."""
    shift = np.maximum(floor_log2(x) - (k - 1), 0)
    segment = x >> shift
    segment = np.where(shift > 0, segment | 1, segment)
    return segment << shift


class Drum(SignMagnitudeFamily):
    """DRUM(k): each operand is cut to the k bits from its leading one, the cut's LSB set to 1, and the segments multiplied exactly.

    Hashemi, Bahar and Reda, "DRUM: a dynamic range unbiased multiplier for approximate
    applications", ICCAD 2015. An operand of more than k significant bits keeps bits
    t..t-k+1 below its leading one t; forcing the segment's LSB to 1 replaces the dropped
    bits by (about) their expected value, so the error is nearly unbiased. Operands of at
    most k bits are exact. Per operand |a' - a| / a <= 2^(1-k), so the product's relative
    error is at most (1 + 2^(1-k))^2 - 1 (reached by two powers of two of more than k bits).
    Signed designs are sign-magnitude.
    """

    name = "drum"
    title = "Dynamic range unbiased multiplier"
    citation = "Hashemi, Bahar & Reda, ICCAD 2015"

    def grid(self, signed: bool) -> list[dict]:
        return [{"k": k} for k in (3, 4, 5, 6)]

    def check_params(self, signed: bool, k: int = BITS) -> None:
        if not 2 <= int(k) <= BITS:
            raise ValueError(f"drum: k (segment bits) must be in 2..{BITS}, got {k}")

    def core(self, a: np.ndarray, b: np.ndarray, k: int = BITS) -> np.ndarray:
        return drum_operand(a, int(k)) * drum_operand(b, int(k))

    def core_structure(self, k: int = BITS) -> GateCount:
        k = int(k)
        shift = BITS - k  # largest segment shift
        lod = parallel(leading_one_detector(BITS), leading_one_detector(BITS))
        select = parallel(barrel_shifter(k, stages(shift)), barrel_shifter(k, stages(shift)))
        force = GateCount(or2=2, depth=1)  # the segments' LSBs set when shifted
        multiply = parallel(full_array(k), ripple_adder(3))  # segments; shift amounts
        place = left_shifter(2 * k, 2 * shift)
        return lod.then(select + force).then(multiply).then(place)

"""Static segment multiplier (SSM)."""

from __future__ import annotations

import numpy as np

from ..unit_gate import GateCount
from ._base import BITS, SignMagnitudeFamily
from ._common import full_array, parallel, zero_detector


def ssm_operand(x: np.ndarray, m: int) -> np.ndarray:
    """The m-bit segment SSM keeps: the low m bits if the top 8-m are zero, else the top m bits."""
    shift = BITS - m
    return np.where(x < (1 << m), x, (x >> shift) << shift)


class StaticSegment(SignMagnitudeFamily):
    """Static segment multiplier: each operand contributes one of two fixed m-bit segments to an exact m x m multiply.

    Narayanamoorthy, Moghaddam, Liu, Park and Kim, "Energy-efficient approximate
    multiplication for digital signal processing and classification applications",
    IEEE TVLSI 23(6), 2015. An operand whose 8-m MSBs are all zero passes its m LSBs,
    otherwise its m MSBs (the bits below are dropped); the m x m product is shifted back
    by 0, 8-m or 2(8-m). Small operands are exact; dropped bits make it always
    underestimate. Signed designs are sign-magnitude.
    """

    name = "ssm"
    title = "Static segment multiplier"
    citation = "Narayanamoorthy et al., IEEE TVLSI 23(6), 2015"

    def grid(self, signed: bool) -> list[dict]:
        return [{"m": m} for m in (4, 5, 6)]

    def check_params(self, signed: bool, m: int = BITS) -> None:
        if not BITS // 2 <= int(m) <= BITS:
            raise ValueError(f"ssm: m (segment bits) must be in {BITS // 2}..{BITS}, got {m}")

    def core(self, a: np.ndarray, b: np.ndarray, m: int = BITS) -> np.ndarray:
        return ssm_operand(a, int(m)) * ssm_operand(b, int(m))

    def core_structure(self, m: int = BITS) -> GateCount:
        m = int(m)
        if m == BITS:
            return full_array(BITS)
        detect = parallel(zero_detector(BITS - m), zero_detector(BITS - m))
        select = GateCount(mux2=2 * m, depth=2)
        # shift by 0, 8-m or 2(8-m): two multiplexer levels (the second by 8-m again)
        place = GateCount(mux2=min(BITS + m, 2 * BITS) + 2 * BITS, depth=4)
        return detect.then(select).then(full_array(m)).then(place)

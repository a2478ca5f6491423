"""Partial-product perforation."""

from __future__ import annotations

import numpy as np

from ..unit_gate import GateCount
from ._base import BITS, Family
from ._common import array_structure, signed_pp_product


def perforated_kept(s: int, m: int) -> np.ndarray:
    """Partial products kept when rows s..s+m-1 (bits of the weight operand b) are perforated."""
    _, j = np.indices((BITS, BITS))
    return ~((j >= s) & (j < s + m))


class Perforation(Family):
    """Partial-product perforation: ``m`` consecutive partial-product rows starting at row ``s`` are never generated.

    Zervakis, Tsoumanis, Xydis, Soudris and Pekmestzi, "Design-efficient approximate
    multiplication circuits through partial product perforation", IEEE TVLSI 24(10), 2016.
    A row is the multiplicand a times one bit of the multiplier; here the multiplier is the
    weight operand b (the column operand), so P = a * (b with bits s..s+m-1 cleared). The
    rows' AND gates and the adders that accumulate them disappear. Unsigned designs always
    underestimate (by a times the perforated bits of b). Signed designs perforate rows of a
    Baugh-Wooley array and drop the rows' share of its constant, so the result is exactly
    a * b' with b' the two's complement b with those bits cleared.
    """

    name = "perf"
    title = "Partial-product perforation"
    citation = "Zervakis et al., IEEE TVLSI 24(10), 2016"

    def grid(self, signed: bool) -> list[dict]:
        # m = 4 from row 0 keeps the weight's 4 high bits: with weights tuned to it (objectives.weight_tuning)
        # a network sees 4-bit weights rather than dropped partial products
        return [{"s": s, "m": m} for s, m in ((0, 1), (0, 2), (1, 2), (0, 3), (2, 2), (0, 4))]

    def check_params(self, signed: bool, s: int = 0, m: int = 0) -> None:
        if not 0 <= int(s) <= BITS - 1:
            raise ValueError(f"perf: s (first perforated row) must be in 0..{BITS - 1}, got {s}")
        if not 0 <= int(m) <= BITS - int(s):
            raise ValueError(f"perf: m (rows perforated) must be in 0..{BITS - int(s)} for s={s}, got {m}")

    def lut(self, signed: bool, s: int = 0, m: int = 0) -> np.ndarray:
        return signed_pp_product(signed, perforated_kept(s, m))

    def structure(self, signed: bool, s: int = 0, m: int = 0) -> GateCount:
        return array_structure(signed, perforated_kept(s, m))

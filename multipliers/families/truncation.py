"""Partial-product column truncation, with and without constant correction."""

from __future__ import annotations

import numpy as np

from .._record import exact_lut
from ..unit_gate import GateCount
from ._base import BITS, Family
from ._common import array_structure, signed_pp_product


def _kept(columns: int) -> np.ndarray:
    i, j = np.indices((BITS, BITS))
    return (i + j) >= columns


class ColumnTruncation(Family):
    """Truncated array multiplier: the partial-product bits of the ``t`` least significant columns are not formed.

    Schulte and Swartzlander, "Truncated multiplication with correction constant", VLSI Signal
    Processing VI, 1993 (and Kidambi et al., IEEE TCAS-II 43(2), 1996). Dropping columns
    i + j < t removes their AND gates and adders; every dropped bit is non-negative, so the
    uncorrected design always underestimates. With ``corrected`` set, the expected value of the
    dropped bits under uniform operands (rounded to an integer) is added as a constant, which
    costs only wiring below column t and removes most of the bias.
    Signed designs truncate a Baugh-Wooley array; the constant's share of every omitted
    complemented cell is dropped with it, so a zero operand still gives zero.
    """

    name = "trunc"
    title = "Column truncation"
    citation = "Schulte & Swartzlander, VLSI Signal Processing VI, 1993"

    def grid(self, signed: bool) -> list[dict]:
        return [{"t": t, "corrected": c} for c in (False, True) for t in (2, 4, 6, 8, 10)]

    def check_params(self, signed: bool, t: int = 0, corrected: bool = False) -> None:
        if not 0 <= int(t) <= 2 * BITS - 1:
            raise ValueError(f"trunc: t (columns truncated) must be in 0..{2 * BITS - 1}, got {t}")

    def correction(self, signed: bool, t: int) -> int:
        """The constant: mean of the dropped bits' value under uniform operands, rounded."""
        plain = signed_pp_product(signed, _kept(t))
        return int(np.round(np.mean(exact_lut(signed) - plain)))

    def lut(self, signed: bool, t: int = 0, corrected: bool = False) -> np.ndarray:
        lut = signed_pp_product(signed, _kept(t))
        if not corrected:
            return lut
        lut = lut + self.correction(signed, t)
        return ((lut + (1 << 15)) % (1 << 16)) - (1 << 15) if signed else lut

    def structure(self, signed: bool, t: int = 0, corrected: bool = False) -> GateCount:
        extra: dict[int, int] = {}
        if corrected:
            constant = self.correction(signed, t) % (1 << (2 * BITS))
            for col in range(t, 2 * BITS):  # constant bits below column t are wires only
                if (constant >> col) & 1:
                    extra[col] = 1
        return array_structure(signed, _kept(t), extra)

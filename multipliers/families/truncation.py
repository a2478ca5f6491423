"""Partial-product column truncation, with and without constant correction."""

from __future__ import annotations

import numpy as np

from .._record import exact_lut
from ..unit_gate import GateCount, partial_product_array
from ._base import BITS, Family, array_product


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
    Signed designs truncate a Baugh-Wooley array.
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
        plain = array_product(signed, _kept(t))
        return int(np.round(np.mean(exact_lut(signed) - plain)))

    def lut(self, signed: bool, t: int = 0, corrected: bool = False) -> np.ndarray:
        constant = self.correction(signed, t) if corrected else 0
        return array_product(signed, _kept(t), constant)

    def structure(self, signed: bool, t: int = 0, corrected: bool = False) -> GateCount:
        extra: dict[int, int] = {BITS: 1, 2 * BITS - 1: 1} if signed else {}
        if corrected:
            constant = self.correction(signed, t) % (1 << (2 * BITS))
            for col in range(t, 2 * BITS):  # constant bits below column t are wires only
                if (constant >> col) & 1:
                    extra[col] = extra.get(col, 0) + 1
        return partial_product_array(_kept(t), extra)

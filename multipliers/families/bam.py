"""Broken-array multiplier (BAM)."""

from __future__ import annotations

import numpy as np

from ..unit_gate import GateCount
from ._base import BITS, Family
from ._common import array_structure, signed_pp_product


def bam_kept(hbl: int, vbl: int) -> np.ndarray:
    """Partial products a BAM keeps: ``kept[i, j]`` for bit i of a and bit j of b."""
    i, j = np.indices((BITS, BITS))
    return (j >= hbl) & (i + j >= vbl)


class BrokenArray(Family):
    """Broken-array multiplier: carry-save cells above a horizontal and right of a vertical break line are omitted.

    Mahdiani, Ahmadi, Fakhraie and Lucas, "Bio-inspired imprecise computational blocks for
    efficient VLSI implementation of soft-computing applications", IEEE TCAS-I 57(4), 2010.
    In the carry-save array (one row per bit of the multiplier b), the ``hbl`` top rows
    (bits b_0..b_{hbl-1}) and every cell right of the vertical line (weight 2^(i+j) < 2^vbl)
    are removed together with their AND gates, so P = sum of a_i b_j 2^(i+j) over
    j >= hbl and i + j >= vbl, the definition ArithsGen implements
    (``UnsignedBrokenArrayMultiplier``, horizontal and vertical cut).
    Removed bits are non-negative, so the unsigned design always underestimates.
    Signed designs break a Baugh-Wooley array the same way; an omitted sign-row cell drops
    its share of the Baugh-Wooley constant too, so the result is the sum of the kept
    partial products with their signs.
    """

    name = "bam"
    title = "Broken-array multiplier"
    citation = "Mahdiani et al., IEEE TCAS-I 57(4), 2010"

    def grid(self, signed: bool) -> list[dict]:
        return [{"hbl": h, "vbl": v} for h, v in ((1, 3), (1, 5), (2, 7), (3, 8), (4, 10))]

    def check_params(self, signed: bool, hbl: int = 0, vbl: int = 0) -> None:
        if not 0 <= int(hbl) <= BITS:
            raise ValueError(f"bam: hbl (rows of b omitted) must be in 0..{BITS}, got {hbl}")
        if not 0 <= int(vbl) <= 2 * BITS - 1:
            raise ValueError(f"bam: vbl (columns omitted) must be in 0..{2 * BITS - 1}, got {vbl}")

    def lut(self, signed: bool, hbl: int = 0, vbl: int = 0) -> np.ndarray:
        return signed_pp_product(signed, bam_kept(hbl, vbl))

    def structure(self, signed: bool, hbl: int = 0, vbl: int = 0) -> GateCount:
        return array_structure(signed, bam_kept(hbl, vbl))

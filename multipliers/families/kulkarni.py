"""Kulkarni's underdesigned multiplier (approximate 2x2 building blocks)."""

from __future__ import annotations

import numpy as np

from ..unit_gate import GateCount
from ._base import BITS, SignMagnitudeFamily
from ._common import heap

DIGITS = BITS // 2  # 2-bit digits per operand
#: Blocks approximated for each ``cols`` (blocks of digit weight d + e < cols).
BLOCKS_BY_COLS = {c: sum(1 for d in range(DIGITS) for e in range(DIGITS) if d + e < c) for c in range(2 * DIGITS)}


def approximate_block(d: int, e: int, cols: int) -> bool:
    """Whether the 2x2 block of a's digit d and b's digit e is the approximate one."""
    return d + e < cols


def block_2x2(x: np.ndarray, y: np.ndarray, approximate: bool) -> np.ndarray:
    """Product of 2-bit digits; the approximate block gives 3 * 3 = 7 (binary 111)."""
    p = x * y
    return np.where(p == 9, 7, p) if approximate else p


class Kulkarni(SignMagnitudeFamily):
    """Underdesigned multiplier: an 8x8 product built from sixteen 2x2 blocks, the approximate block giving 3 x 3 = 7.

    Kulkarni, Gupta and Ercegovac, "Trading accuracy for power with an underdesigned
    multiplier architecture", VLSI Design 2011. The approximate 2x2 block has a 3-bit output
    (P0 = a0 b0, P1 = a1 b0 + a0 b1, P2 = a1 b1): it is wrong only for 3 x 3, giving 7 instead
    of 9. The block outputs are summed exactly: P = sum_{d,e} block(a_d, b_e) 4^(d+e) over the
    2-bit digits a_d, b_e. ``cols`` makes the blocks of digit weight d + e < cols approximate
    (lowest significance first: 1, 3, 6, 10, 13, 15, 16 blocks for cols 1..7; cols = 7 is
    the paper's fully approximate design). Errors are never positive. Signed designs are
    sign-magnitude (the paper treats unsigned operands).
    """

    name = "kulkarni"
    title = "Underdesigned multiplier (approximate 2x2 blocks)"
    citation = "Kulkarni, Gupta & Ercegovac, VLSI Design 2011"

    def grid(self, signed: bool) -> list[dict]:
        # magnitudes <= 128 have a top digit <= 2, so signed designs saturate at cols = 5
        return [{"cols": c} for c in ((2, 3, 4, 5) if signed else (4, 5, 6, 7))]

    def check_params(self, signed: bool, cols: int = 0) -> None:
        if not 0 <= int(cols) <= 2 * DIGITS - 1:
            raise ValueError(f"kulkarni: cols (approximate digit weights) must be in 0..{2 * DIGITS - 1}, got {cols}")

    def core(self, a: np.ndarray, b: np.ndarray, cols: int = 0) -> np.ndarray:
        total = np.zeros(np.broadcast_shapes(np.shape(a), np.shape(b)), dtype=np.int64)
        for d in range(DIGITS):
            for e in range(DIGITS):
                block = block_2x2((a >> (2 * d)) & 3, (b >> (2 * e)) & 3, approximate_block(d, e, int(cols)))
                total = total + (block << (2 * (d + e)))
        return total

    def core_structure(self, cols: int = 0) -> GateCount:
        exact_block = GateCount(and2=4, xor2=2, depth=3).then(GateCount(and2=2, depth=1))  # 4 PPs, 2 HAs
        approx_block = GateCount(and2=4, or2=1, depth=2)
        blocks = GateCount()
        heights = np.zeros(2 * BITS + 1, dtype=int)
        for d in range(DIGITS):
            for e in range(DIGITS):
                base = 2 * (d + e)
                if approximate_block(d, e, int(cols)):
                    blocks = blocks + approx_block
                    heights[base : base + 3] += 1
                else:
                    blocks = blocks + exact_block
                    heights[base : base + 4] += 1
        return blocks.then(heap(heights))

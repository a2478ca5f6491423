"""Error-tolerant multiplier (ETM)."""

from __future__ import annotations

import numpy as np

from ..unit_gate import GateCount
from ._base import BITS, SignMagnitudeFamily
from ._common import floor_log2, full_array, zero_detector


def etm_product(a: np.ndarray, b: np.ndarray, m: int) -> np.ndarray:
    """ETM with the m LSBs of each operand in the non-multiplication part."""
    mask = (1 << m) - 1
    ah, bh, al, bl = a >> m, b >> m, a & mask, b & mask
    small = (ah == 0) & (bh == 0)
    either = al | bl
    # from the highest low-part bit set in either operand, that result bit (weight 2^(m+p))
    # and every bit below it are 1
    fill = np.where(either > 0, (np.int64(1) << (m + floor_log2(either) + 1)) - 1, 0)
    return np.where(small, al * bl, ((ah * bh) << (2 * m)) + fill)


class ErrorTolerant(SignMagnitudeFamily):
    """Error-tolerant multiplier: an exact multiply of the high parts and a carry-free OR approximation of the low parts.

    Kyaw, Goh and Yeo, "Low-power high-speed multiplier for error-tolerant application",
    IEEE EDSSC 2010. Each operand is split into a multiplication part (its 8-m MSBs) and a
    non-multiplication part (its m LSBs). If both multiplication parts are zero, the
    (shared) exact multiplier multiplies the low parts, so small operands are exact. Otherwise
    the high parts are multiplied exactly into bits 2m and up, and the 2m low result bits
    come from scanning the low parts from their MSB: at the first position j where a_j or
    b_j is 1, result bit m + j and all bits below it are set to 1 (cross products
    a_high * b_low are never formed). The scan does not look at which operand holds the ones,
    so a zero operand gives a non-zero product when the other one has non-zero high and low
    parts. The paper splits 16-bit operands in half; here m <= 4 so the low parts fit the
    high-part multiplier. Signed designs are sign-magnitude.
    """

    name = "etm"
    title = "Error-tolerant multiplier"
    citation = "Kyaw, Goh & Yeo, IEEE EDSSC 2010"

    def grid(self, signed: bool) -> list[dict]:
        return [{"m": m} for m in (2, 3, 4)]

    def check_params(self, signed: bool, m: int = 0) -> None:
        if not 0 <= int(m) <= BITS // 2:
            raise ValueError(f"etm: m (bits in the non-multiplication part) must be in 0..{BITS // 2}, got {m}")

    def core(self, a: np.ndarray, b: np.ndarray, m: int = 0) -> np.ndarray:
        return etm_product(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64), int(m))

    def core_structure(self, m: int = 0) -> GateCount:
        m = int(m)
        h = BITS - m
        detect = zero_detector(h) + zero_detector(h) + GateCount(and2=1, depth=1)
        steer = GateCount(mux2=2 * m, depth=2)  # multiplier inputs: high parts or low parts
        multiply = full_array(h)
        scan = GateCount(or2=2 * m, depth=m + 1)  # a_j | b_j and the OR chain from the MSB down
        output = GateCount(mux2=2 * BITS, depth=2)  # low product or (high product, filled bits)
        return (detect.then(steer).then(multiply) + scan).then(output)

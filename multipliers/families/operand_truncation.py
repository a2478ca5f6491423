"""Operand LSB truncation, with and without half-LSB compensation."""

from __future__ import annotations

import numpy as np

from ..unit_gate import GateCount
from ._base import BITS, Family, operand_grid
from ._common import array_structure


def _kept(k: int) -> np.ndarray:
    i, j = np.indices((BITS, BITS))
    return (i >= k) & (j >= k)


def truncate_operand(x: np.ndarray, k: int, comp: bool) -> np.ndarray:
    """``x`` with its k LSBs zeroed (two's complement: rounded toward -inf); with ``comp`` the
    dropped field reads as its midpoint, bit k-1 set."""
    t = (x >> k) << k
    if comp and k > 0:
        t = t | (1 << (k - 1))
    return t


class OperandTruncation(Family):
    """Operand truncation: both operands lose their ``k`` least significant bits before an exact (8-k)x(8-k) multiply.

    The classic precision-scaling baseline of the approximate-multiplier literature (e.g. the
    "truncated operand" designs in Jiang et al., "Approximate arithmetic circuits: a survey,
    characterization, and recent applications", Proc. IEEE 108(12), 2020). The plain design
    zeroes a_0..a_{k-1} and b_0..b_{k-1} (P = a' b', always <= a b for unsigned operands);
    with ``comp`` each truncated operand gets its dropped field's midpoint 2^(k-1) as a
    hard-wired 1, which makes the per-operand error nearly zero-mean at the cost of two
    wired partial-product rows (and a non-zero output for zero operands).
    Signed designs truncate two's complement operands and multiply them on a Baugh-Wooley array.
    """

    name = "optrunc"
    title = "Operand LSB truncation"
    citation = "Jiang et al., Proc. IEEE 108(12), 2020 (survey; precision scaling)"

    def grid(self, signed: bool) -> list[dict]:
        plain = [{"k": k, "comp": False} for k in (1, 2, 3)]
        return plain + [{"k": k, "comp": True} for k in (2, 3, 4)]

    def check_params(self, signed: bool, k: int = 0, comp: bool = False) -> None:
        if not 0 <= int(k) <= BITS - 1:
            raise ValueError(f"optrunc: k (LSBs dropped per operand) must be in 0..{BITS - 1}, got {k}")
        if comp and int(k) == 0:
            raise ValueError("optrunc: comp needs k >= 1 (there is no dropped field to compensate)")

    def lut(self, signed: bool, k: int = 0, comp: bool = False) -> np.ndarray:
        a, b = operand_grid(signed)
        return truncate_operand(a, k, comp) * truncate_operand(b, k, comp)

    def structure(self, signed: bool, k: int = 0, comp: bool = False) -> GateCount:
        extra: dict[int, int] = {}
        if comp and k > 0:
            # a' b' = A B + 2^(k-1) (A + B) + 2^(2k-2): the wired 1s make the rows of A and B
            # plain wires (no AND gates) plus one constant bit.
            for i in range(k, BITS):
                extra[i + k - 1] = extra.get(i + k - 1, 0) + 2
            extra[2 * k - 2] = extra.get(2 * k - 2, 0) + 1
        return array_structure(signed, _kept(k), extra)

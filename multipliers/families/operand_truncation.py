"""Operand LSB truncation, with and without half-LSB compensation."""

from __future__ import annotations

import numpy as np

from ..unit_gate import GateCount
from ._base import BITS, Family, operand_grid
from ._common import array_structure


def _kept(k: int, kw: int) -> np.ndarray:
    i, j = np.indices((BITS, BITS))
    return (i >= k) & (j >= kw)


def truncate_operand(x: np.ndarray, k: int, comp: bool) -> np.ndarray:
    """``x`` with its k LSBs zeroed (two's complement: rounded toward -inf); with ``comp`` the
    dropped field reads as its midpoint, bit k-1 set."""
    t = (x >> k) << k
    if comp and k > 0:
        t = t | (1 << (k - 1))
    return t


# (activation LSBs, weight LSBs) dropped by the asymmetric designs of the default zoo
ASYMMETRIC = ((1, 3), (2, 3), (1, 4), (2, 4), (1, 5), (2, 5))


class OperandTruncation(Family):
    """Operand truncation: the operands lose their least significant bits before an exact multiply.

    The activation (row operand a) loses ``k`` bits and the weight (column operand b) ``kw``
    bits, ``k`` unless given: an exact (8-k)x(8-kw) multiply.
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
        asymmetric = [{"k": k, "kw": kw, "comp": False} for k, kw in ASYMMETRIC]
        return plain + [{"k": k, "comp": True} for k in (2, 3, 4)] + asymmetric

    def check_params(self, signed: bool, k: int = 0, comp: bool = False, kw: int | None = None) -> None:
        if not 0 <= int(k) <= BITS - 1:
            raise ValueError(f"optrunc: k (LSBs dropped per operand) must be in 0..{BITS - 1}, got {k}")
        if kw is not None and not 0 <= int(kw) <= BITS - 1:
            raise ValueError(f"optrunc: kw (weight LSBs dropped) must be in 0..{BITS - 1}, got {kw}")
        if comp and min(int(k), int(k if kw is None else kw)) == 0:
            raise ValueError("optrunc: comp needs k >= 1 and kw >= 1 (there is no dropped field to compensate)")

    def lut(self, signed: bool, k: int = 0, comp: bool = False, kw: int | None = None) -> np.ndarray:
        a, b = operand_grid(signed)
        return truncate_operand(a, k, comp) * truncate_operand(b, k if kw is None else kw, comp)

    def structure(self, signed: bool, k: int = 0, comp: bool = False, kw: int | None = None) -> GateCount:
        kw = k if kw is None else kw
        extra: dict[int, int] = {}
        if comp and k > 0:
            # a' b' = A B + 2^(kw-1) A + 2^(k-1) B + 2^(k+kw-2): the wired 1s make the rows of A and B
            # plain wires (no AND gates) plus one constant bit.
            for i in range(k, BITS):
                extra[i + kw - 1] = extra.get(i + kw - 1, 0) + 1
            for j in range(kw, BITS):
                extra[j + k - 1] = extra.get(j + k - 1, 0) + 1
            extra[k + kw - 2] = extra.get(k + kw - 2, 0) + 1
        return array_structure(signed, _kept(k, kw), extra)

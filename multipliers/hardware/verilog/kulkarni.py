"""Kulkarni's underdesigned multiplier: sixteen 2x2 blocks (approximate ones give 3 x 3 = 7) and an adder tree."""

from __future__ import annotations

from ...families.kulkarni import DIGITS, approximate_block
from ._arith import reduce_heap, unsigned_or_sign_magnitude
from ._circuit import Bit, Circuit, Word
from ._registry import register


def block(c: Circuit, x: tuple[Bit, Bit], y: tuple[Bit, Bit], approximate: bool) -> Word:
    """A 2x2 block: the exact one (4 ANDs, 2 half adders) or the approximate one (4 ANDs, 1 OR)."""
    p00, p10, p01, p11 = c.and_(x[0], y[0]), c.and_(x[1], y[0]), c.and_(x[0], y[1]), c.and_(x[1], y[1])
    if approximate:
        return [p00, c.or_(p10, p01), p11]
    s1, c1 = c.half_adder(p10, p01)
    s2, c2 = c.half_adder(p11, c1)
    return [p00, s1, s2, c2]


@register("kulkarni")
def kulkarni(c: Circuit) -> Word:
    """Block outputs placed at weight 4^(d+e) and summed by a Dadda tree."""
    cols = int(c.multiplier.params.get("cols", 0))
    width = 2 * 2 * DIGITS

    def core(c: Circuit, a: Word, b: Word) -> Word:
        heap: list[list[Bit]] = [[] for _ in range(width)]
        for d in range(DIGITS):
            for e in range(DIGITS):
                bits = block(c, (a[2 * d], a[2 * d + 1]), (b[2 * e], b[2 * e + 1]), approximate_block(d, e, cols))
                for k, bit in enumerate(bits):
                    heap[2 * (d + e) + k].append(bit)
        return reduce_heap(c, heap, width)

    return unsigned_or_sign_magnitude(c, core)

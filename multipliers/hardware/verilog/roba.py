"""RoBA: operands rounded to powers of two by LOD logic; Ar*b + (a - Ar)*Br from two shifters and one adder."""

from __future__ import annotations

from ._arith import leading_one, ripple_add, shift_left, unsigned_or_sign_magnitude
from ._circuit import ONE, Bit, Circuit, Word
from ._registry import register

BITS = 8
WIDE = 2 * BITS + 2  # Ar*b < 2^17; the sum is formed in two's complement on 18 bits


def rounded_exponent(c: Circuit, x: Word) -> tuple[Word, Word, Bit]:
    """log2 of x rounded to the nearest power of two (4 bits), that power as a 9-bit word, and x != 0."""
    onehot, position, nonzero = leading_one(c, x)
    second = c.any_([c.and_(onehot[i], x[i - 1]) for i in range(1, BITS)])  # the bit below the leading one
    exponent = ripple_add(c, position, [second], 4)
    up = [c.and_(onehot[i], second) for i in range(BITS)]
    down = [c.and_(onehot[i], c.not_(second)) for i in range(BITS)]
    power = [down[0]] + [c.or_(down[i], up[i - 1]) for i in range(1, BITS)] + [up[BITS - 1]]
    return exponent, power, nonzero


@register("roba")
def roba(c: Circuit) -> Word:
    """The error term (a - Ar)(b - Br) is dropped; a - Ar is a signed word shifted by Br's exponent."""
    width = c.multiplier.output_width

    def core(c: Circuit, a: Word, b: Word) -> Word:
        ea, ar, nza = rounded_exponent(c, a)
        eb, _, nzb = rounded_exponent(c, b)
        ar_b = [c.and_(bit, nza) for bit in shift_left(c, b, ea, WIDE)]
        not_ar = [c.not_(bit) for bit in ar] + [ONE] * (WIDE - len(ar))
        difference = ripple_add(c, a, not_ar, WIDE, carry_in=ONE)  # a - Ar, two's complement
        d_br = [c.and_(bit, nzb) for bit in shift_left(c, difference, eb, WIDE)]
        return ripple_add(c, ar_b, d_br, WIDE)[:width]

    return unsigned_or_sign_magnitude(c, core)

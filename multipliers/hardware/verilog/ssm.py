"""Static segment multiplier: multiplexers pick each operand's low or high m-bit segment; the product shifts back."""

from __future__ import annotations

from ._arith import unsigned_or_sign_magnitude
from ._blocks import multiply_unsigned
from ._circuit import ZERO, Circuit, Word
from ._registry import register

BITS = 8


@register("ssm")
def ssm(c: Circuit) -> Word:
    """Zero detectors on the 8-m MSBs select the segments; two multiplexer levels shift by 0, 8-m or 2(8-m)."""
    m = int(c.multiplier.params.get("m", BITS))
    shift = BITS - m

    def core(c: Circuit, a: Word, b: Word) -> Word:
        low_a = c.not_(c.any_(a[m:]))  # the 8-m MSBs of a are zero: keep its m LSBs
        low_b = c.not_(c.any_(b[m:]))
        x = [c.mux(low_a, a[shift + i], a[i]) for i in range(m)]
        y = [c.mux(low_b, b[shift + i], b[i]) for i in range(m)]
        product = multiply_unsigned(c, x, y, 2 * m)
        word = product + [ZERO] * (2 * BITS - 2 * m)
        for keep in (low_a, low_b):
            word = [c.mux(keep, word[i - shift] if i >= shift else ZERO, word[i]) for i in range(2 * BITS)]
        return word

    return unsigned_or_sign_magnitude(c, core)

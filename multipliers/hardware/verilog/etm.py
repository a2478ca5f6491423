"""Error-tolerant multiplier: one exact multiplier of the high (small operands: low) parts plus an OR scan."""

from __future__ import annotations

from ._arith import unsigned_or_sign_magnitude
from ._blocks import multiply_unsigned
from ._circuit import ZERO, Circuit, Word
from ._registry import register

BITS = 8


@register("etm")
def etm(c: Circuit) -> Word:
    """Zero detectors steer the multiplier's inputs; a prefix OR of a_j | b_j fills the low result bits."""
    m = int(c.multiplier.params.get("m", 0))
    h = BITS - m

    def core(c: Circuit, a: Word, b: Word) -> Word:
        small = c.not_(c.or_(c.any_(a[m:]), c.any_(b[m:])))  # both multiplication parts zero
        x = [c.mux(small, a[m + i], a[i] if i < m else ZERO) for i in range(h)]
        y = [c.mux(small, b[m + i], b[i] if i < m else ZERO) for i in range(h)]
        product = multiply_unsigned(c, x, y, 2 * h)
        either = [c.or_(a[j], b[j]) for j in range(m)]
        above: list = [ZERO] * (m + 1)  # above[r]: some either_j with j >= r
        for r in reversed(range(m)):
            above[r] = c.or_(either[r], above[r + 1])
        fill = [above[0]] * m + [above[r] for r in range(m)]
        out: Word = []
        for i in range(2 * BITS):
            high = product[i - 2 * m] if i >= 2 * m else fill[i]
            low = product[i] if i < 2 * h else ZERO
            out.append(c.mux(small, high, low))
        return out

    return unsigned_or_sign_magnitude(c, core)

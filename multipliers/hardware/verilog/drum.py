"""DRUM: leading-one detectors, segment-selecting shifters, a k x k multiplier and an output shifter."""

from __future__ import annotations

from ._arith import leading_one, ripple_add, shift_left, shift_right, unsigned_or_sign_magnitude
from ._blocks import multiply_unsigned
from ._circuit import Circuit, Word
from ._registry import register

BITS = 8


def segment(c: Circuit, x: Word, k: int) -> tuple[Word, Word]:
    """The k-bit segment from x's leading one (its LSB set when bits were dropped) and the shift amount (3 bits)."""
    onehot, _, _ = leading_one(c, x)
    # shift = t - (k - 1) for a leading one at t >= k, else 0: encoded straight from the one-hot LOD
    amount = [c.any_([onehot[t] for t in range(k, BITS) if ((t - k + 1) >> q) & 1]) for q in range(3)]
    dropped = c.any_(onehot[k:])
    shifted = shift_right(c, x, amount)[:k]
    return [c.or_(shifted[0], dropped)] + shifted[1:], amount


@register("drum")
def drum(c: Circuit) -> Word:
    """Both segments multiplied exactly, the product shifted left by the sum of the shift amounts."""
    k = int(c.multiplier.params.get("k", BITS))
    width = c.multiplier.output_width

    def core(c: Circuit, a: Word, b: Word) -> Word:
        sa, shift_a = segment(c, a, k)
        sb, shift_b = segment(c, b, k)
        product = multiply_unsigned(c, sa, sb, 2 * k)
        total = ripple_add(c, shift_a, shift_b, 4)
        return shift_left(c, product, total, width)

    return unsigned_or_sign_magnitude(c, core)

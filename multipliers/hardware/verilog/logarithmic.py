"""Mitchell's log multiplier and MBM: leading-one detectors, normalising shifters, adders, an antilog shifter."""

from __future__ import annotations

from ...families.mbm import mbm_correction
from ...families.mitchell import FULL_FRACTION
from ._arith import constant_word, leading_one, ripple_add, shift_left, unsigned_or_sign_magnitude
from ._circuit import ONE, Bit, Circuit, Word
from ._registry import register

BITS = 8


def log_fraction(c: Circuit, x: Word, w: int) -> tuple[Word, Word, Bit]:
    """Characteristic k (3 bits), the w-bit fraction below the leading one, and x != 0."""
    _, k, nonzero = leading_one(c, x)
    normalised = shift_left(c, x, [c.not_(bit) for bit in k], BITS)  # x << (7 - k): leading one at bit 7
    return k, normalised[BITS - 1 - w : BITS - 1], nonzero


@register("mitchell", "mbm")
def logarithmic(c: Circuit) -> Word:
    """Fractions added (plus MBM's constant, halved after a carry); 1.fraction shifted by the characteristic sum."""
    m = c.multiplier
    w = int(m.params.get("w", FULL_FRACTION))
    correction = mbm_correction(w) if m.family == "mbm" else 0
    width = m.output_width

    def core(c: Circuit, a: Word, b: Word) -> Word:
        k1, f1, nz1 = log_fraction(c, a, w)
        k2, f2, nz2 = log_fraction(c, b, w)
        total = ripple_add(c, f1, f2, w + 1)
        carry, low = total[w], total[:w]
        corr = [c.mux(carry, bit, half) for bit, half in
                zip(constant_word(correction, w), constant_word(correction >> 1, w))]
        mantissa = ripple_add(c, low + [ONE], corr, w + 2)  # 2^w + low + correction
        exponent = ripple_add(c, k1, k2, 4, carry_in=carry)
        product = shift_left(c, mantissa, exponent, w + width)[w:]
        both = c.and_(nz1, nz2)
        return [c.and_(bit, both) for bit in product]

    return unsigned_or_sign_magnitude(c, core)

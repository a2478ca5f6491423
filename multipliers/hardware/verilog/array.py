"""Partial-product arrays: exact, column truncation, broken array, perforation, operand truncation."""

from __future__ import annotations

import numpy as np

from ...families.bam import bam_kept
from ...families.perforation import perforated_kept
from ._arith import array_multiplier
from ._circuit import ONE, ZERO, Circuit, Word
from ._registry import register

BITS = 8


def kept_mask(family: str, params: dict) -> np.ndarray:
    """Partial products ``kept[i, j]`` (bit i of a, bit j of b) of an array design."""
    i, j = np.indices((BITS, BITS))
    if family == "exact":
        return np.ones((BITS, BITS), dtype=bool)
    if family == "trunc":
        return (i + j) >= int(params.get("t", 0))
    if family == "bam":
        return bam_kept(int(params.get("hbl", 0)), int(params.get("vbl", 0)))
    if family == "perf":
        return perforated_kept(int(params.get("s", 0)), int(params.get("m", 0)))
    raise KeyError(f"no partial-product mask for family {family!r}")


@register("exact", "trunc", "bam", "perf")
def kept_array(c: Circuit) -> Word:
    """The kept AND gates, a Dadda tree and a ripple-carry adder (Baugh-Wooley for signed designs)."""
    m = c.multiplier
    return array_multiplier(c, c.a, c.b, kept_mask(m.family, dict(m.params)), m.output_width)


@register("optrunc")
def operand_truncation(c: Circuit) -> Word:
    """The operands' LSBs (k of a, kw of b) wired to 0 (or the top dropped bit to 1 with ``comp``) before a full array."""
    m = c.multiplier
    k, comp = int(m.params.get("k", 0)), bool(m.params.get("comp", False))
    kw = int(m.params.get("kw", k))

    def truncated(x: Word, dropped: int) -> Word:
        return [x[i] if i >= dropped else (ONE if comp and i == dropped - 1 else ZERO) for i in range(BITS)]

    kept = np.ones((BITS, BITS), dtype=bool)
    return array_multiplier(c, truncated(c.a, k), truncated(c.b, kw), kept, m.output_width)

"""Structural arithmetic blocks on a :class:`Circuit`: bit heaps, adders, shifters, leading-one detectors."""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ._circuit import ONE, ZERO, Bit, Circuit, Word, const

#: Dadda's column-height targets.
_DADDA = (2, 3, 4, 6, 9, 13, 19, 28, 42, 63)


def fold_constants(columns: Sequence[Sequence[Bit]], width: int) -> list[list[Bit]]:
    """Merge the constant bits of a heap into one constant word (mod 2^width), one bit per set bit."""
    constant = 0
    heap: list[list[Bit]] = [[] for _ in range(width)]
    for col, bits in enumerate(columns[:width]):
        for bit in bits:
            if bit.is_const:
                constant += int(bit.value) << col
            else:
                heap[col].append(bit)
    constant %= 1 << width
    for col in range(width):
        if (constant >> col) & 1:
            heap[col].append(ONE)
    return heap


def reduce_heap(c: Circuit, columns: Sequence[Sequence[Bit]], width: int) -> Word:
    """Sum a bit heap (bits per column, LSB first) modulo 2^width: Dadda reduction, then a ripple-carry adder."""
    heap = fold_constants(columns, width)
    tallest = max((len(col) for col in heap), default=0)
    targets = [d for d in _DADDA if d < tallest]
    for target in reversed(targets):
        nxt: list[list[Bit]] = [[] for _ in range(width)]
        for col in range(width):
            pool = list(heap[col])  # this stage's adders take the column's own bits first
            while len(pool) + len(nxt[col]) > target:
                over = len(pool) + len(nxt[col]) - target
                if len(pool) >= 3 and over >= 2:
                    s, carry = c.full_adder(pool[0], pool[1], pool[2])
                    pool = pool[3:]
                elif len(pool) >= 2:
                    s, carry = c.half_adder(pool[0], pool[1])
                    pool = pool[2:]
                else:  # too few bits left of its own: reduce the carries that arrived too
                    pool += nxt[col]
                    nxt[col] = []
                    continue
                nxt[col].append(s)
                if col + 1 < width:
                    nxt[col + 1].append(carry)
            nxt[col] += pool
        heap = nxt
    out: Word = []
    carry: Bit | None = None
    for col in range(width):
        bits = heap[col] + ([carry] if carry is not None else [])
        carry = None
        if not bits:
            out.append(ZERO)
        elif len(bits) == 1:
            out.append(bits[0])
        elif len(bits) == 2:
            s, carry = c.half_adder(*bits)
            out.append(s)
        else:
            s, carry = c.full_adder(*bits[:3])
            out.append(s)
    return out


def ripple_add(c: Circuit, x: Sequence[Bit], y: Sequence[Bit], width: int, carry_in: Bit = ZERO) -> Word:
    """``x + y + carry_in`` modulo 2^width (unsigned words, zero-extended), a ripple-carry adder."""
    out: Word = []
    carry = carry_in
    for i in range(width):
        xi = x[i] if i < len(x) else ZERO
        yi = y[i] if i < len(y) else ZERO
        s, carry = c.full_adder(xi, yi, carry)
        out.append(s)
    return out


def conditional_negate(c: Circuit, x: Sequence[Bit], negate: Bit, width: int) -> Word:
    """``-x`` when ``negate`` else ``x``, modulo 2^width (XOR row plus an incrementer)."""
    flipped = [c.xor(x[i] if i < len(x) else ZERO, negate) for i in range(width)]
    return ripple_add(c, flipped, [], width, carry_in=negate)


def partial_products(c: Circuit, a: Sequence[Bit], b: Sequence[Bit], kept: np.ndarray, signed: bool) -> list[list[Bit]]:
    """The kept partial-product bits a_i b_j in column i + j; Baugh-Wooley complements the sign-row bits when signed."""
    na, nb = len(a), len(b)
    columns: list[list[Bit]] = [[] for _ in range(na + nb)]
    for i in range(na):
        for j in range(nb):
            if not kept[i, j]:
                continue
            bit = c.and_(a[i], b[j])
            if signed and ((i == na - 1) != (j == nb - 1)):
                bit = c.not_(bit)
            columns[i + j].append(bit)
    return columns


def heap_value(c: Circuit, columns: Sequence[Sequence[Bit]]) -> np.ndarray:
    """Sum of a heap's bits times their column weights, on every operand pair (int64)."""
    total = np.zeros(1 << 16, dtype=np.int64)
    for col, bits in enumerate(columns):
        for bit in bits:
            total += c.word_value([bit], signed=False) << col
    return total


def array_multiplier(c: Circuit, a: Sequence[Bit], b: Sequence[Bit], kept: np.ndarray, width: int) -> Word:
    """An (unsigned or Baugh-Wooley) array of the kept partial products plus the design's constant.

    The constant (Baugh-Wooley's 2^n + 2^(2n-1), a truncation's correction, the share of omitted
    sign-row cells ...) is whatever makes the array equal the design's LUT; it must be the same for
    every operand pair, else the design is not such an array and :class:`GeneratorError` follows.
    """
    from ._circuit import GeneratorError

    m = c.multiplier
    columns = partial_products(c, a, b, kept, m.signed)
    target = m.lut.reshape(-1).astype(np.int64)
    diff = (target - heap_value(c, columns)) % (1 << width)
    if not np.all(diff == diff[0]):
        raise GeneratorError(f"{m.name}: the LUT is not the kept partial products plus a constant")
    constant = int(diff[0])
    columns += [[] for _ in range(max(0, width - len(columns)))]
    for col in range(width):
        if (constant >> col) & 1:
            columns[col].append(ONE)
    return reduce_heap(c, columns, width)


def leading_one(c: Circuit, x: Sequence[Bit]) -> tuple[Word, Word, Bit]:
    """Leading-one detector: (one-hot position, binary position, x != 0); position 0 when x is 0."""
    n = len(x)
    onehot: Word = [ZERO] * n
    seen = ZERO  # some bit above i is set
    for i in reversed(range(n)):
        onehot[i] = c.and_(x[i], c.not_(seen)) if i < n - 1 else x[i]
        seen = c.or_(seen, x[i])
    bits = max(1, (n - 1).bit_length())
    position = [c.any_([onehot[i] for i in range(n) if (i >> k) & 1]) for k in range(bits)]
    return onehot, position, seen


def shift_left(c: Circuit, x: Sequence[Bit], amount: Sequence[Bit], width: int) -> Word:
    """Logarithmic barrel shifter: ``x << amount`` truncated to ``width`` bits."""
    word: Word = list(x[:width]) + [ZERO] * max(0, width - len(x))
    for k, s in enumerate(amount):
        step = 1 << k
        word = [c.mux(s, word[i], word[i - step] if i >= step else ZERO) for i in range(width)]
    return word


def shift_right(c: Circuit, x: Sequence[Bit], amount: Sequence[Bit]) -> Word:
    """Logarithmic barrel shifter: ``x >> amount`` (logical, same width)."""
    word: Word = list(x)
    n = len(word)
    for k, s in enumerate(amount):
        step = 1 << k
        word = [c.mux(s, word[i], word[i + step] if i + step < n else ZERO) for i in range(n)]
    return word


def constant_word(value: int, width: int) -> Word:
    """The constant ``value`` as a word of ``width`` bits."""
    return [const((value >> i) & 1) for i in range(width)]


Core = Callable[[Circuit, Word, Word], Word]


def sign_magnitude(c: Circuit, core: Core) -> Word:
    """A signed design around an unsigned core: magnitudes in, the product's sign applied to the core's output."""
    width = c.multiplier.output_width
    sa, sb = c.a[7], c.b[7]
    magnitude_a = conditional_negate(c, c.a, sa, 8)
    magnitude_b = conditional_negate(c, c.b, sb, 8)
    product = core(c, magnitude_a, magnitude_b)
    return conditional_negate(c, product, c.xor(sa, sb), width)


def unsigned_or_sign_magnitude(c: Circuit, core: Core) -> Word:
    """The core on the raw operands (unsigned designs) or wrapped in sign-magnitude logic (signed ones)."""
    if c.multiplier.signed:
        return sign_magnitude(c, core)
    return core(c, c.a, c.b)

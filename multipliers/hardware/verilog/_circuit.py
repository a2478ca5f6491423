"""A bit-level circuit builder that emits structural Verilog and evaluates itself on every operand pair.

Every signal is a :class:`Bit`: a Verilog expression (a wire name or a constant) and its value
on all 65,536 operand pairs (packed bits, LUT order: row a, column b). Gates fold constants, so
a generator can feed constant bits (Baugh-Wooley's ones, a correction constant) into the same
adders as data bits and get the reduced logic. :meth:`Circuit.finish` checks the output against
the design's LUT before any Verilog is written, so a generator bug is caught where it is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..._record import Multiplier, operand_values

PAIRS = 1 << 16


class GeneratorError(RuntimeError):
    """A Verilog generator built a circuit whose outputs differ from the design's LUT."""


@dataclass(frozen=True)
class Bit:
    """One signal: its Verilog expression and its packed value on every operand pair (or a constant)."""

    expr: str
    value: np.ndarray | bool

    @property
    def is_const(self) -> bool:
        """True for the constants 0 and 1."""
        return isinstance(self.value, bool)


ZERO = Bit("1'b0", False)
ONE = Bit("1'b1", True)


def const(v: int | bool) -> Bit:
    """The constant bit ``v``."""
    return ONE if v else ZERO


Word = list  # list[Bit], least significant bit first


class Circuit:
    """Gates of one module, in creation order; inputs ``a`` and ``b`` are the operand codes' bits."""

    def __init__(self, multiplier: Multiplier) -> None:
        self.multiplier = multiplier
        self.lines: list[str] = []
        self._count = 0
        codes = operand_values(multiplier.signed) & 0xFF
        rows = np.repeat(codes, 256)
        cols = np.tile(codes, 256)
        self.a: Word = [Bit(f"a[{i}]", np.packbits((rows >> i) & 1 == 1)) for i in range(8)]
        self.b: Word = [Bit(f"b[{i}]", np.packbits((cols >> i) & 1 == 1)) for i in range(8)]
        self.gates = 0
        self._inverse: dict[str, Bit] = {}

    # -- gates ------------------------------------------------------------------------------
    def _wire(self, expr: str, value: np.ndarray, comment: str = "") -> Bit:
        name = f"n{self._count}"
        self._count += 1
        self.gates += 1
        note = f"  // {comment}" if comment else ""
        self.lines.append(f"  wire {name} = {expr};{note}")
        return Bit(name, value)

    def not_(self, x: Bit) -> Bit:
        """Inverter."""
        if x.is_const:
            return const(not x.value)
        if x.expr not in self._inverse:
            y = self._wire(f"~{x.expr}", ~x.value)
            self._inverse[x.expr], self._inverse[y.expr] = y, x
        return self._inverse[x.expr]

    def and_(self, x: Bit, y: Bit, comment: str = "") -> Bit:
        """2-input AND."""
        if x.is_const or y.is_const:
            c, other = (x, y) if x.is_const else (y, x)
            return other if c.value else ZERO
        return self._wire(f"{x.expr} & {y.expr}", x.value & y.value, comment)

    def or_(self, x: Bit, y: Bit, comment: str = "") -> Bit:
        """2-input OR."""
        if x.is_const or y.is_const:
            c, other = (x, y) if x.is_const else (y, x)
            return ONE if c.value else other
        return self._wire(f"{x.expr} | {y.expr}", x.value | y.value, comment)

    def xor(self, x: Bit, y: Bit, comment: str = "") -> Bit:
        """2-input XOR."""
        if x.is_const or y.is_const:
            c, other = (x, y) if x.is_const else (y, x)
            return self.not_(other) if c.value else other
        return self._wire(f"{x.expr} ^ {y.expr}", x.value ^ y.value, comment)

    def mux(self, sel: Bit, if0: Bit, if1: Bit) -> Bit:
        """2:1 multiplexer: ``if1`` when ``sel`` is 1."""
        if sel.is_const:
            return if1 if sel.value else if0
        if if0.is_const and if1.is_const:
            if if0.value == if1.value:
                return if0
            return sel if if1.value else self.not_(sel)
        if if0.is_const:
            return self.and_(sel, if1) if not if0.value else self.or_(self.not_(sel), if1)
        if if1.is_const:
            return self.and_(self.not_(sel), if0) if not if1.value else self.or_(sel, if0)
        value = (sel.value & if1.value) | (~sel.value & if0.value)
        return self._wire(f"{sel.expr} ? {if1.expr} : {if0.expr}", value)

    def any_(self, bits: Sequence[Bit]) -> Bit:
        """OR of several bits as a balanced tree (0 for none)."""
        bits = list(bits)
        if not bits:
            return ZERO
        while len(bits) > 1:
            bits = [self.or_(bits[i], bits[i + 1]) if i + 1 < len(bits) else bits[i] for i in range(0, len(bits), 2)]
        return bits[0]

    def half_adder(self, x: Bit, y: Bit) -> tuple[Bit, Bit]:
        """Half adder: (sum, carry)."""
        return self.xor(x, y), self.and_(x, y)

    def full_adder(self, x: Bit, y: Bit, z: Bit) -> tuple[Bit, Bit]:
        """Full adder: (sum, carry), carry = majority(x, y, z)."""
        t = self.xor(x, y)
        s = self.xor(t, z)
        c = self.or_(self.and_(x, y), self.and_(t, z))
        return s, c

    # -- output -----------------------------------------------------------------------------
    def word_value(self, word: Sequence[Bit], signed: bool) -> np.ndarray:
        """Integer value of ``word`` on every operand pair (two's complement when ``signed``)."""
        total = np.zeros(PAIRS, dtype=np.int64)
        for i, bit in enumerate(word):
            if bit.is_const:
                v = np.full(PAIRS, int(bit.value), dtype=np.int64)
            else:
                v = np.unpackbits(bit.value).astype(np.int64)
            weight = -(1 << i) if signed and i == len(word) - 1 else 1 << i
            total += v * weight
        return total

    def finish(self, product: Sequence[Bit]) -> list[str]:
        """Check ``product`` (LSB first, extended to the output width) against the LUT; return the body lines."""
        m = self.multiplier
        width = m.output_width
        product = list(product)[:width]
        fill = product[-1] if m.signed and product else ZERO
        product += [fill] * (width - len(product))
        got = self.word_value(product, m.signed).reshape(256, 256)
        bad = np.argwhere(got != m.lut)
        if len(bad):
            i, j = bad[0]
            raise GeneratorError(
                f"{m.name}: generated circuit differs from the LUT at {len(bad)} operand pairs, "
                f"first at LUT[{i}, {j}]: circuit {got[i, j]}, LUT {m.lut[i, j]}"
            )
        concat = ", ".join(bit.expr for bit in reversed(product))
        return self.lines + [f"  assign p = {{{concat}}};"]

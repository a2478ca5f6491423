"""Analytical hardware cost: a unit-gate model of a design's actual structure.

Counting rules (the unit-gate model of Tyagi / Zimmermann, as used for arithmetic circuits):

* 2-input AND, NAND, OR, NOR count 1 unit of area; XOR/XNOR 2; a 2:1 multiplexer 3; inverters
  are free (they fold into the driving cell). A full adder counts 7 (2 XOR + 3 simple gates),
  a half adder 3 (XOR + AND).
* A partial-product array is the kept partial-product bits (one AND/NAND each) plus its
  reduction: columns are compressed from the least significant one upwards, a full adder for
  every three bits and a half adder for a remaining pair, carries moving to the next column,
  until each column holds one bit (the structure of a carry-save array with its final adder).
* A leading-one detector of n bits costs about 2n units (priority chain plus OR tree), an
  n-bit barrel shifter with s stages n*s multiplexers, an n-bit ripple adder n full adders, an
  n-bit incrementer n half adders, an n-bit conditional negation n XORs plus an incrementer.
* Energy per multiplication is taken proportional to area: with uniform random operands every
  unit of switched capacitance toggles at a similar rate. This is the analytical fallback; the
  synthesis/activity-based method refines it per design and per operand distribution.

All figures are reported relative to the exact multiplier of the same signedness, so the
absolute unit cancels; ``absolute['unit_gates']`` keeps the raw count.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ._record import HardwareCost

AREA = {"and2": 1, "or2": 1, "xor2": 2, "mux2": 3, "fa": 7, "ha": 3}
DELAY = {"and2": 1, "or2": 1, "xor2": 2, "mux2": 2, "fa": 4, "ha": 2}


@dataclass(frozen=True)
class GateCount:
    """Counts of unit-gate cells in a circuit (plus its critical-path depth in unit delays)."""

    and2: int = 0
    or2: int = 0
    xor2: int = 0
    mux2: int = 0
    fa: int = 0
    ha: int = 0
    depth: float = 0.0

    def __add__(self, other: "GateCount") -> "GateCount":
        """Two circuits side by side; the depth is the caller's to set (``then`` chains)."""
        return GateCount(
            **{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self) if f.name != "depth"},
            depth=max(self.depth, other.depth),
        )

    def then(self, other: "GateCount") -> "GateCount":
        """This circuit followed by ``other`` on the critical path (depths add)."""
        total = self + other
        return GateCount(**{**total.__dict__, "depth": self.depth + other.depth})

    @property
    def area(self) -> int:
        """Area in unit gates."""
        return sum(AREA[f.name] * getattr(self, f.name) for f in fields(self) if f.name != "depth")


def reduce_columns(heights: np.ndarray | list[int]) -> GateCount:
    """Cost of compressing a bit heap (bits per column, LSB first) to one bit per column."""
    heights = [int(h) for h in heights]
    fa = ha = 0
    carry = 0
    depth = 0.0
    for h in heights + [0] * 4:
        h += carry
        carry = 0
        col_fa = 0
        while h >= 3:  # a full adder turns three bits into one here and a carry
            h -= 2
            col_fa += 1
            carry += 1
        if h == 2:  # a half adder turns the last pair into one bit and a carry
            ha += 1
            carry += 1
        fa += col_fa
        depth += DELAY["fa"] if col_fa else 0
    # carries ripple through the final row: roughly one FA delay per column that held bits
    return GateCount(fa=fa, ha=ha, depth=depth)


def partial_product_array(kept: np.ndarray, extra_bits: dict[int, int] | None = None) -> GateCount:
    """Cost of a multiplier array keeping the partial products ``kept[i, j]`` (bit i of a, bit j of b).

    ``extra_bits`` adds constant or correction bits per column (Baugh-Wooley's constants, a
    truncation's correction constant) to the heap.
    """
    kept = np.asarray(kept, dtype=bool)
    n_a, n_b = kept.shape
    heights = np.zeros(n_a + n_b + 1, dtype=int)
    for i in range(n_a):
        for j in range(n_b):
            if kept[i, j]:
                heights[i + j] += 1
    for col, count in (extra_bits or {}).items():
        heights[col] += count
    pp = GateCount(and2=int(kept.sum()), depth=DELAY["and2"] if kept.any() else 0)
    return pp.then(reduce_columns(heights))


def ripple_adder(n: int) -> GateCount:
    """An n-bit ripple-carry adder."""
    return GateCount(fa=n, depth=DELAY["fa"] * n)


def incrementer(n: int) -> GateCount:
    """An n-bit incrementer (half-adder chain)."""
    return GateCount(ha=n, depth=DELAY["ha"] * n)


def conditional_negate(n: int) -> GateCount:
    """Two's complement negation of an n-bit word under a control bit (XOR row plus incrementer)."""
    return GateCount(xor2=n, depth=DELAY["xor2"]).then(incrementer(n))


def leading_one_detector(n: int) -> GateCount:
    """An n-bit leading-one detector with a binary-encoded position output."""
    levels = max(1, int(np.ceil(np.log2(n))))
    return GateCount(and2=n, or2=n, depth=(DELAY["and2"] + DELAY["or2"]) * levels)


def barrel_shifter(width: int, stages: int) -> GateCount:
    """A logarithmic barrel shifter: ``stages`` rows of ``width`` 2:1 multiplexers."""
    return GateCount(mux2=width * stages, depth=DELAY["mux2"] * stages)


def sign_magnitude_wrapper(bits: int = 8) -> GateCount:
    """Sign handling around an unsigned core: negate both operands in, negate the product out."""
    operands = conditional_negate(bits) + conditional_negate(bits)
    return operands.then(conditional_negate(2 * bits)) + GateCount(xor2=1)


def exact_array(signed: bool, bits: int = 8) -> GateCount:
    """The exact array multiplier (Baugh-Wooley for signed), the reference of relative costs."""
    kept = np.ones((bits, bits), dtype=bool)
    extra = {bits: 1, 2 * bits - 1: 1} if signed else None
    return partial_product_array(kept, extra)


def relative_cost(circuit: GateCount, signed: bool, note: str = "") -> HardwareCost:
    """A unit-gate cost estimate relative to the exact array multiplier of that signedness."""
    reference = exact_array(signed)
    area = circuit.area / reference.area
    return HardwareCost(
        method="unit-gate",
        area=area,
        energy=area,
        delay=circuit.depth / reference.depth if reference.depth else None,
        absolute={"unit_gates": float(circuit.area), "unit_delay": float(circuit.depth)},
        source=note or "unit-gate model of the design's structure",
    )

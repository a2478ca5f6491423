"""Table-driven modules for designs known only by their LUT (imported ones): behavioural, not structural."""

from __future__ import annotations

import numpy as np

from ..._record import Multiplier

#: Families whose designs are tables only; they get a ROM module.
TABLE_FAMILIES = ("evoapprox", "imported")


def table_body(m: Multiplier) -> list[str]:
    """The module body: a ROM of 256 rows (one per code of a), row a holding the products with every b."""
    width = m.output_width
    mask = (1 << width) - 1
    # LUT rows/columns run in value order; the ROM is addressed by the 8-bit codes, so roll signed tables
    offset = 128 if m.signed else 0
    codes = np.arange(256)
    table = m.lut[np.ix_(codes ^ offset, codes ^ offset)].astype(np.int64) & mask
    row_bits = 256 * width
    lines = [
        f"  // rows[a][{width}*b +: {width}] is the product of operand codes a and b",
        f"  reg [{row_bits - 1}:0] rows [0:255];",
        "  initial begin",
    ]
    for code_a in range(256):
        word = 0
        for code_b in reversed(range(256)):
            word = (word << width) | int(table[code_a, code_b])
        lines.append(f"    rows[{code_a}] = {row_bits}'h{word:0{row_bits // 4}x};")
    lines += ["  end", "  wire [7:0] row = a, column = b;  // the codes, unsigned",
              f"  assign p = rows[row][{width} * column +: {width}];"]
    return lines

"""Table-driven modules for designs known only by their LUT (imported ones): behavioural, not structural."""

from __future__ import annotations

import numpy as np

from ..._record import Multiplier

#: Families whose designs are tables only; they get a ROM module.
TABLE_FAMILIES = ("evoapprox", "imported")


def table_body(m: Multiplier) -> list[str]:
    """The module body: a 65,536-word ROM at address {a, b} (the operand codes), initialised inline."""
    width = m.output_width
    mask = (1 << width) - 1
    digits = (width + 3) // 4
    # LUT rows/columns run in value order; the ROM address is the 8-bit codes, so roll signed tables
    offset = 128 if m.signed else 0
    codes = np.arange(256)
    table = m.lut[np.ix_(codes ^ offset, codes ^ offset)].astype(np.int64).reshape(-1) & mask
    lines = [f"  reg [{width - 1}:0] rom [0:65535];", "  initial begin"]
    lines += [f"    rom[{k}] = {width}'h{v:0{digits}x};" for k, v in enumerate(table.tolist())]
    lines += ["  end", "  assign p = rom[{a, b}];"]
    return lines

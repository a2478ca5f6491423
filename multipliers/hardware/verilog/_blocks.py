"""Sub-blocks shared by several generators: exact unsigned multipliers of narrow words."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ._arith import partial_products, reduce_heap
from ._circuit import Bit, Circuit, Word


def multiply_unsigned(c: Circuit, x: Sequence[Bit], y: Sequence[Bit], width: int) -> Word:
    """An exact unsigned array multiplier of two narrow words (AND gates, Dadda tree, final adder)."""
    kept = np.ones((len(x), len(y)), dtype=bool)
    columns = partial_products(c, x, y, kept, signed=False)
    columns += [[] for _ in range(max(0, width - len(columns)))]
    return reduce_heap(c, columns, width)

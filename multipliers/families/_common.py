"""Private helpers shared by the family modules: bit-level operand analysis and cost pieces.

Everything here works on whole operand grids at once (numpy arrays); loops run over bit
positions only.
"""

from __future__ import annotations

import numpy as np

from ..unit_gate import GateCount, partial_product_array, reduce_columns
from ._base import BITS, array_product


def floor_log2(x: np.ndarray, width: int = BITS + 1) -> np.ndarray:
    """Position of the leading one of non-negative integers ``x`` (0 for x = 0 as well as x = 1).

    Counts the bit positions i >= 1 with ``x >= 2^i``, i.e. what a leading-one detector
    outputs; callers mask x = 0 themselves.
    """
    x = np.asarray(x, dtype=np.int64)
    k = np.zeros_like(x)
    for i in range(1, width + 1):
        k += (x >> i) > 0
    return k


def stages(n: int) -> int:
    """Multiplexer stages of a barrel shifter that shifts by 0..n."""
    return max(1, int(np.ceil(np.log2(n + 1)))) if n > 0 else 0


def parallel(*circuits: GateCount) -> GateCount:
    """Circuits side by side (depth: the deepest)."""
    total = GateCount()
    for c in circuits:
        total = total + c
    return total


def left_shifter(width: int, max_shift: int, out_width: int = 2 * BITS) -> GateCount:
    """A logarithmic left shifter of a ``width``-bit word by 0..max_shift onto ``out_width`` bits.

    Stage s shifts by 2^s; its multiplexers cover the word as widened by the stages so far
    (capped at the output width).
    """
    n = stages(max_shift)
    muxes = sum(min(width + (1 << (s + 1)) - 1, out_width) for s in range(n))
    return GateCount(mux2=muxes, depth=2 * n)


def one_hot_shifter(width: int, positions: int, out_width: int = 2 * BITS + 1) -> GateCount:
    """Shift a ``width``-bit word by a one-hot amount of ``positions`` lines (an AND-OR array)."""
    ands = width * positions
    columns = min(out_width, width + positions - 1)
    return GateCount(and2=ands, or2=ands - columns, depth=1 + stages(positions - 1))


def zero_detector(n: int) -> GateCount:
    """An n-input NOR (an OR tree): 1 when all n bits are zero."""
    if n <= 1:
        return GateCount()
    return GateCount(or2=n - 1, depth=stages(n - 1))


# -- signed arrays with omitted partial products --------------------------------------------------

_TOP = BITS - 1


def _complemented(i: int, j: int) -> bool:
    """Baugh-Wooley complements the partial products with exactly one sign bit."""
    return (i == _TOP) != (j == _TOP)


def omitted_sign_constant(kept: np.ndarray) -> int:
    """Constant that keeps a Baugh-Wooley array consistent when partial products are omitted.

    Baugh-Wooley writes a negative-weight partial product -p as (1 - p) plus a share of its
    constant 2^n + 2^(2n-1). Omitting the cell of a complemented bit must also drop that
    share, otherwise every omitted sign-row bit adds a bias of -2^(i+j). Adding back
    2^(i+j) per omitted complemented bit makes the array compute exactly the sum of its kept
    signed partial products (a wiring change of the constant vector, no extra cells).
    """
    kept = np.asarray(kept, dtype=bool)
    return sum(1 << (i + j) for i in range(BITS) for j in range(BITS) if not kept[i, j] and _complemented(i, j))


def signed_pp_product(signed: bool, kept: np.ndarray) -> np.ndarray:
    """LUT of an array keeping ``kept[i, j]`` (bit i of a, bit j of b), omitting the rest.

    Unsigned: the sum of the kept partial products. Signed (Baugh-Wooley): the sum of the
    kept partial products with their two's complement signs (see :func:`omitted_sign_constant`),
    wrapped to 16 bits like the hardware output.
    """
    constant = omitted_sign_constant(kept) if signed else 0
    return array_product(signed, kept, constant)


def constant_bits(signed: bool, kept: np.ndarray, extra: int = 0) -> dict[int, int]:
    """Constant bits (per column) the array's reduction must absorb."""
    constant = extra
    if signed:
        constant += (1 << BITS) + (1 << (2 * BITS - 1)) + omitted_sign_constant(kept)
    constant %= 1 << (2 * BITS)
    return {col: 1 for col in range(2 * BITS) if (constant >> col) & 1}


def array_structure(signed: bool, kept: np.ndarray, extra: dict[int, int] | None = None) -> GateCount:
    """Unit gates of an (unsigned or Baugh-Wooley) array keeping ``kept``, plus extra heap bits."""
    bits = constant_bits(signed, kept)
    for col, count in (extra or {}).items():
        bits[col] = bits.get(col, 0) + count
    return partial_product_array(kept, bits)


def full_array(n: int) -> GateCount:
    """An exact unsigned n x n array multiplier."""
    return partial_product_array(np.ones((n, n), dtype=bool))


def heap(heights: list[int] | np.ndarray) -> GateCount:
    """Reduction of a bit heap given per column (LSB first)."""
    return reduce_columns(np.asarray(heights, dtype=int))

"""The exact multiplier."""

from __future__ import annotations

import numpy as np

from .._record import exact_lut
from ..unit_gate import GateCount, exact_array
from ._base import Family


class Exact(Family):
    """Exact 8x8 array multiplier (unsigned carry-save array; signed Baugh-Wooley).

    Baugh and Wooley, "A two's complement parallel array multiplication algorithm",
    IEEE Trans. Computers C-22(12), 1973: the sign-weighted partial products are complemented
    and the constants 2^n + 2^(2n-1) added, so one unsigned-style array forms the signed product.
    """

    name = "exact"
    title = "Exact array multiplier"
    citation = "Baugh & Wooley, IEEE Trans. Computers 22(12), 1973 (signed array)"

    def grid(self, signed: bool) -> list[dict]:
        return [{}]

    def lut(self, signed: bool, **params) -> np.ndarray:
        return exact_lut(signed).astype(np.int64)

    def structure(self, signed: bool, **params) -> GateCount:
        return exact_array(signed)

"""What a LUT is made of: exact, an exact low-rank factorisation, or neither (cached by hash)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from multipliers._record import exact_lut

from ._factorise import ANALYSIS_MAX_RANK, Factorisation, factorise_cached


@dataclass(frozen=True)
class LowRankPlan:
    """``lut == [exact +] u^T v``: the factors and whether the exact product is added.

    ``channels`` is the number of stacked GEMM channels per input channel: the rank, plus one
    for the exact term (which needs no mapping of the input).
    """

    factorisation: Factorisation
    plus_exact: bool

    @property
    def channels(self) -> int:
        return self.factorisation.rank + int(self.plus_exact)

    @property
    def term_bound(self) -> float:
        """max over weights of ``sum_r max_a |u_r(a)| |v_r(w)|`` (the exact term included)."""
        f = self.factorisation
        per_w = np.zeros(f.v.shape[1])
        if f.rank:
            per_w = (np.abs(f.u).max(axis=1)[:, None].astype(np.float64) * np.abs(f.v)).sum(axis=0)
        if self.plus_exact:
            per_w = per_w + 255.0 * 255.0  # |a w| <= 255^2 covers both signednesses
        return float(per_w.max())


def lowrank_plans(lut: np.ndarray, signed: bool, max_rank: int = ANALYSIS_MAX_RANK) -> list[LowRankPlan]:
    """Exact factorisations of ``lut`` and of ``lut - exact`` up to ``max_rank``, cheapest first.

    Cheapest: fewest stacked channels, then the smallest per-term bound (fewer limbs). Both
    factorisations are cached by the tables' SHA-256.
    """
    lut = np.asarray(lut, dtype=np.int64)
    plans = []
    whole = factorise_cached(lut, max_rank)
    if whole is not None:
        plans.append(LowRankPlan(whole, plus_exact=False))
    error = factorise_cached(lut - exact_lut(signed), max_rank)
    if error is not None:
        plans.append(LowRankPlan(error, plus_exact=True))
    return sorted(plans, key=lambda p: (p.channels, p.term_bound, not p.plus_exact))


def is_exact(lut: np.ndarray, signed: bool) -> bool:
    """True when the table is the exact product table."""
    return bool(np.array_equal(np.asarray(lut), exact_lut(signed)))

"""The low-rank path: ``lut = [exact +] sum_r u_r(a) v_r(w)`` with an exact integer factorisation."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from multipliers._record import exact_lut, operand_values

from ._analysis import LowRankPlan, lowrank_plans
from ._base import PreparedWeight, ProductKernel
from ._factorise import ANALYSIS_MAX_RANK, Factorisation
from ._stacked import StackedGemm


class LowRankKernel(ProductKernel):
    """``y = [conv(x, w) +] sum_r conv(u_r(x), v_r(w))`` as ONE conv with stacked channels.

    The factorisation (of the table itself or of its error table ``lut - exact``, whichever
    needs fewer stacked channels) is found by :func:`~._factorise.exact_factorisation` and is
    verified against the integer table entry for entry before use; a given ``factorisation``
    that does not reproduce the table raises ``ValueError``. Every input element is mapped,
    padding included: ``u_r(0)`` need not be 0, which is why callers pad explicitly.
    Exactness of the float32 conv is checked per layer (see :mod:`._stacked`).
    """

    method = "lowrank"

    def __init__(
        self,
        lut: np.ndarray,
        signed: bool,
        factorisation: Factorisation | None = None,
        plus_exact: bool = True,
        max_rank: int = ANALYSIS_MAX_RANK,
    ) -> None:
        super().__init__(lut, signed)
        if factorisation is None:
            plans = lowrank_plans(self.lut, self.signed, max_rank)
            if not plans:
                raise ValueError(f"no exact factorisation of rank <= {max_rank}: use method 'gather'")
            plan = plans[0]
        else:
            plan = LowRankPlan(factorisation, bool(plus_exact))
            target = self.lut - exact_lut(self.signed) if plan.plus_exact else self.lut
            if not factorisation.reproduces(target):
                what = "lut - exact" if plan.plus_exact else "lut"
                raise ValueError(f"the factorisation does not reproduce {what} exactly; refusing to use it")
        self.plan = plan
        fact = plan.factorisation
        self._key += (plan.plus_exact, hashlib.sha256(fact.u.tobytes() + fact.v.tobytes()).hexdigest())
        u, v = plan.factorisation.u, plan.factorisation.v
        if plan.plus_exact:
            values = operand_values(self.signed)[None, :]
            u, v = np.concatenate([values, u]), np.concatenate([values, v])
        self._gemm = StackedGemm(u, v, self.signed)

    @property
    def rank(self) -> int:
        """Rank of the factorisation (not counting the exact term)."""
        return self.plan.factorisation.rank

    @property
    def channels(self) -> int:
        """Stacked channels per input channel (the conv is this many times wider)."""
        return self.plan.channels

    def _describe(self) -> str:
        base = "exact + " if self.plan.plus_exact else ""
        return f", {base}rank {self.rank}"

    def _prepare(self, w: torch.Tensor, prepared: PreparedWeight) -> None:
        self._gemm.prepare(w, prepared.data)

    def _conv2d(self, x, prepared, stride, dilation, groups, out_size):
        return self._gemm.conv2d(x, prepared.data, prepared.cache, stride, dilation, groups, out_size, prepared.shape[0])

    def _matmul(self, a, b):
        return self._gemm.matmul(a, b)

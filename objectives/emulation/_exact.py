"""The exact path: the table is the exact product, so the layer is one integer-valued GEMM."""

from __future__ import annotations

import numpy as np
import torch

from ._analysis import is_exact
from ._base import PreparedWeight, ProductKernel
from ._centred import exact_gemm


class ExactKernel(ProductKernel):
    """One float32 conv/GEMM of the operand values (float64 results); unsigned codes centred first
    (``a w = (a - 128)(w - 128) + 128 a + 128 (w - 128)``, :mod:`._centred`), halving magnitudes.

    Exact while every partial sum is an integer below 2^24, checked per layer from the weights
    (``sum |w| * max|a|`` per output channel); layers beyond it split the weights into limbs
    (``w = sum_l 2^(b l) w_l``, each limb a block of output channels of the same conv), and past
    four limbs run in float64. See :mod:`._stacked`.
    """

    method = "exact"

    def __init__(self, lut: np.ndarray, signed: bool) -> None:
        super().__init__(lut, signed)
        if not is_exact(self.lut, self.signed):
            raise ValueError("the table is not the exact product table: use method 'lowrank' or 'gather'")
        self._gemm = exact_gemm(self.signed)

    def _prepare(self, w: torch.Tensor, prepared: PreparedWeight) -> None:
        self._gemm.prepare(w, prepared.data)

    def _conv2d(self, x, prepared, stride, dilation, groups, out_size):
        return self._gemm.conv2d(x, prepared.data, prepared.cache, stride, dilation, groups, out_size, prepared.shape[0])

    def _matmul(self, a, b):
        return self._gemm.matmul(a, b)

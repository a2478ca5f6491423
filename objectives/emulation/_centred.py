"""The unsigned exact product as a centred GEMM: half the magnitudes, so float32 stays exact.

For codes ``a, w`` in 0..255, ``a w = (a - 128)(w - 128) + 128 a + 128 (w - 128)``. Summed over a
receptive field, the first term is a conv of values in -128..127 (the signed exact GEMM, whose
partial sums stay below 2^24 up to K = 1023 where raw codes pass 2^24 from K = 259), the second
is 128 times the window sum of the input codes, the third a constant per output channel. ResNet
layers (K up to 576) then need one float32 conv instead of two limbs recombined in float64.
"""

from __future__ import annotations

import torch

from multipliers._record import operand_values

from ._im2col import window_sums
from ._stacked import StackedGemm

#: The centre of the unsigned codes.
CENTRE = 128


class CentredGemm:
    """Exact ``sum_k a w`` of unsigned codes through the signed exact GEMM of the centred codes."""

    signed = False
    rank = 1

    def __init__(self) -> None:
        values = operand_values(True)[None, :]  # -128..127
        self._inner = StackedGemm(values, values, signed=True)

    def prepare(self, w: torch.Tensor, data: dict) -> None:
        """Prepare a 4-D weight (O, Cg, kh, kw) of codes 0..255."""
        centred = w.to(torch.int64) - CENTRE
        self._inner.prepare(centred, data)
        data["kernel_size"] = tuple(int(s) for s in w.shape[2:])
        data["weight_term"] = CENTRE * centred.to(torch.float64).sum(dim=(1, 2, 3))  # (O,)

    def conv2d(
        self,
        x: torch.Tensor,
        data: dict,
        cache: dict,
        stride: tuple[int, int],
        dilation: tuple[int, int],
        groups: int,
        out_size: tuple[int, int],
        o: int,
    ) -> torch.Tensor:
        """(N, O, Ho, Wo) float64 exact ``sum_k a w`` for padded codes ``x`` (N, C, H, W)."""
        n = x.shape[0]
        centred = x.to(data["dtype"]) - CENTRE  # in float: an integer dtype such as uint8 would wrap
        y = self._inner.conv2d(centred, data, cache, stride, dilation, groups, out_size, o).to(torch.float64)
        inputs = window_sums(x, groups, data["kernel_size"], stride, dilation, out_size)  # (N, g, Ho, Wo)
        grouped = y.view(n, groups, o // groups, *out_size)
        grouped.add_(inputs.unsqueeze(2), alpha=CENTRE)
        return y.add_(data["weight_term"].view(1, o, 1, 1))

    def matmul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(G, M, K) x (G, K, N) codes -> (G, M, N) float64 exact ``sum_k a b``, through the centred product."""
        y = self._inner.matmul(a.to(torch.float32) - CENTRE, b.to(torch.float32) - CENTRE).to(torch.float64)
        y.add_(a.to(torch.float64).sum(dim=2, keepdim=True), alpha=CENTRE)
        return y.add_((b.to(torch.float64) - CENTRE).sum(dim=1, keepdim=True), alpha=CENTRE)


def exact_gemm(signed: bool) -> "StackedGemm | CentredGemm":
    """The exact product's GEMM: signed values as they are, unsigned codes centred."""
    if signed:
        values = operand_values(True)[None, :]
        return StackedGemm(values, values, signed=True)
    return CentredGemm()

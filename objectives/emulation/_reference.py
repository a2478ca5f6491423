"""The reference path: im2col, then one LUT lookup per product, summed in int64. Slow, obvious."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._base import PreparedWeight, ProductKernel
from ._operands import codes

#: Products held in memory at once (int64): the batch is processed in chunks below this.
CHUNK_PRODUCTS = 1 << 23


class ReferenceKernel(ProductKernel):
    """Ground truth: ``unfold`` the input, gather ``lut[a, w]`` for every (output, k) pair, sum in int64.

    Shares no code with the fast paths beyond argument checking; results are float64 (the int64
    sums converted, exact below 2^53).
    """

    method = "reference"

    def _prepare(self, w: torch.Tensor, prepared: PreparedWeight) -> None:
        o = w.shape[0]
        prepared.data["w_codes"] = codes(w, self.signed).reshape(o, -1)  # (O, Cg kh kw)

    def _conv2d(self, x, prepared, stride, dilation, groups, out_size):
        n = x.shape[0]
        o, cg, kh, kw = prepared.shape
        og, k = o // groups, cg * kh * kw
        lut = torch.tensor(self.lut, device=x.device).reshape(-1)  # int64, index a * 256 + w
        w_codes = prepared.data["w_codes"].view(groups, og, k)
        cols = F.unfold(x.to(torch.float64), (kh, kw), dilation=dilation, stride=stride)  # (N, C kh kw, L)
        cols = codes(cols, self.signed).view(n, groups, k, -1)  # channel-major rows, like the weight
        positions = cols.shape[-1]
        out = torch.empty((n, groups, og, positions), dtype=torch.int64, device=x.device)
        step = max(1, CHUNK_PRODUCTS // max(1, groups * og * k * positions))
        for start in range(0, n, step):
            a = cols[start : start + step]  # (n', g, K, L)
            index = a[:, :, None, :, :] * 256 + w_codes[None, :, :, :, None]  # (n', g, Og, K, L)
            out[start : start + step] = lut[index].sum(dim=3)
        return out.view(n, o, *out_size).to(torch.float64)

    def _matmul(self, a, b):
        g, m, k = a.shape
        lut = torch.tensor(self.lut, device=a.device)  # int64 (256, 256)
        rows, cols = codes(a, self.signed), codes(b, self.signed)
        out = torch.zeros((g, m, b.shape[2]), dtype=torch.int64, device=a.device)
        for kk in range(k):  # one lookup per product: lut[a[g, m, k], b[g, k, n]]
            out += lut[rows[:, :, kk, None], cols[:, None, kk, :]]
        return out.to(torch.float64)

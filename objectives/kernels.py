"""Where quantised layers get their arithmetic: ``objectives.emulation.make_kernel``, cached per table.

Until the emulation package is installed, a float64 stand-in with the same interface is used
(exact integer convolution, and a direct LUT gather for any other table).
"""

from __future__ import annotations

import hashlib
import logging
from functools import lru_cache
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


def get_kernel(lut: np.ndarray, signed: bool, method: str = "auto") -> Any:
    """A kernel for ``lut`` (int (256, 256), row = activation, column = weight), cached by table contents."""
    lut = np.ascontiguousarray(lut, dtype=np.int32)
    key = hashlib.sha256(lut.tobytes()).hexdigest()
    return _cached_kernel(key, lut.tobytes(), bool(signed), method)


@lru_cache(maxsize=256)
def _cached_kernel(key: str, lut_bytes: bytes, signed: bool, method: str) -> Any:
    lut = np.frombuffer(lut_bytes, dtype=np.int32).reshape(256, 256).copy()
    try:
        from .emulation import make_kernel
    except ImportError:  # the emulation package is not there yet
        logger.debug("objectives.emulation not available; using the float64 stand-in kernel")
        return _StandInKernel(lut, signed, method)
    return make_kernel(lut, signed, method)


class _StandInKernel:
    """Exact float64 convolution for the exact table, direct LUT gather over im2col otherwise."""

    def __init__(self, lut: np.ndarray, signed: bool, method: str) -> None:
        import torch

        self.signed = signed
        self.offset = 128 if signed else 0
        values = np.arange(-128, 128) if signed else np.arange(256)
        self.exact = bool(np.array_equal(lut, np.multiply.outer(values, values))) and method != "reference"
        self.lut = torch.from_numpy(lut.astype(np.float64))

    def prepare_weight(self, w):
        import torch

        return torch.as_tensor(w).to(torch.float64)

    def conv2d(self, x, w, stride=(1, 1), dilation=(1, 1), groups=1):
        import torch
        import torch.nn.functional as F

        x = x.to(torch.float64)
        if self.exact:
            return F.conv2d(x, w, stride=stride, dilation=dilation, groups=groups)
        n, c, h, wd = x.shape
        o, cg, kh, kw = w.shape
        cols = F.unfold(x, (kh, kw), dilation=dilation, stride=stride)  # (N, C*kh*kw, L)
        ho = (h - dilation[0] * (kh - 1) - 1) // stride[0] + 1
        wo = (wd - dilation[1] * (kw - 1) - 1) // stride[1] + 1
        cols = cols.view(n, groups, cg * kh * kw, -1).long() + self.offset
        widx = w.view(o, -1).long() + self.offset
        out = torch.empty(n, o, cols.shape[-1], dtype=torch.float64)
        per_group = o // groups
        for j in range(o):
            a = cols[:, j // per_group]  # (N, K, L)
            out[:, j] = self.lut[a, widx[j][None, :, None]].sum(1)
        return out.view(n, o, ho, wo)

    def linear(self, x, w):
        n = x.shape[0]
        x4 = x.reshape(n, -1, 1, 1)
        return self.conv2d(x4, w.reshape(w.shape[0], -1, 1, 1)).reshape(n, -1)

"""Choosing and building a kernel for a LUT (cached, so a whole network's kernels are cheap)."""

from __future__ import annotations

import functools
import hashlib
from typing import Any

import numpy as np

from ._analysis import is_exact, lowrank_plans
from ._base import METHODS, ProductKernel
from ._exact import ExactKernel
from ._factorise import ANALYSIS_MAX_RANK
from ._gather import GatherKernel
from ._lowrank import LowRankKernel
from ._operands import check_table
from ._reference import ReferenceKernel

#: ``auto`` takes the low-rank path up to this many stacked channels per input channel (the
#: rank, plus one for the exact term) and the gather path above. Measured with
#: benchmarks/kernels.py on CPU (ResNet-20-like 3x3 layer, N=64, C=O=32, 16x16): the stacked
#: conv costs about one float32 conv per channel, the gather path five to ten, and at four
#: channels the two were level.
AUTO_MAX_CHANNELS = 4
#: ... and on CUDA devices, where each stacked channel is a slice of an int8 tensor-core GEMM
#: (:mod:`._int8`) and the gather path reads one table entry per product (:mod:`._triton_lut`):
#: every factorisation the analysis finds (rank up to 16) is cheaper there than the table.
AUTO_MAX_CHANNELS_CUDA = ANALYSIS_MAX_RANK
#: ... and for products of two activations on any device, where the gather path reads one table entry per
#: product (no per-layer table can be prepared: neither operand is known ahead) and each stacked channel is
#: one more float GEMM: measured on CPU (ViT-B/16's Q K^T, 8 images, one thread), 12 stacked channels cost 14x
#: the float product and the gather path 18-20x.
AUTO_MAX_CHANNELS_PRODUCTS = ANALYSIS_MAX_RANK


def choose_method(lut: np.ndarray, signed: bool, device: Any = None, products: bool = False) -> str:
    """The path ``auto`` takes for this table on ``device`` (default CPU): "exact", "lowrank" or "gather".

    ``products``: for products of two activations (``kernel.matmul``), which take every factorisation found
    (:data:`AUTO_MAX_CHANNELS_PRODUCTS`).
    """
    table = check_table(lut)
    if is_exact(table, signed):
        return "exact"
    plans = lowrank_plans(table, signed, ANALYSIS_MAX_RANK)  # one cached analysis per table
    on_cuda = device is not None and str(device).startswith("cuda")
    limit = AUTO_MAX_CHANNELS_PRODUCTS if products else AUTO_MAX_CHANNELS_CUDA if on_cuda else AUTO_MAX_CHANNELS
    if plans and plans[0].channels <= limit:
        return "lowrank"
    return "gather"


def make_kernel(lut: np.ndarray, signed: bool, method: str = "auto", device: Any = None,
                products: bool = False) -> ProductKernel:
    """A kernel computing conv2d/linear with every product read from ``lut``.

    ``method``: "auto" (exact if the table is the exact product, else lowrank if an exact
    factorisation with at most :data:`AUTO_MAX_CHANNELS` stacked channels exists -- on a CUDA
    device :data:`AUTO_MAX_CHANNELS_CUDA` -- else gather),
    or one path by name: "exact" (raises ValueError unless the table is exact), "lowrank"
    (raises ValueError without an exact factorisation of rank <= 16), "gather" or "reference".
    ``products``: the kernel serves products of two activations (``auto`` then takes every factorisation,
    :data:`AUTO_MAX_CHANNELS_PRODUCTS`). Kernels are cached by (table hash, signedness, path) and shared:
    ``auto`` returns the same object as asking for the path it picks.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    table = check_table(lut)
    digest = hashlib.sha256(table.tobytes()).hexdigest()
    if method == "auto":
        method = choose_method(table, signed, device, products)
    _STASH[digest] = table
    try:
        return _make_cached(digest, bool(signed), method)
    finally:
        _STASH.pop(digest, None)


_STASH: dict[str, np.ndarray] = {}


@functools.lru_cache(maxsize=512)
def _make_cached(digest: str, signed: bool, method: str) -> ProductKernel:
    table = _STASH[digest]
    if method == "exact":
        return ExactKernel(table, signed)
    if method == "lowrank":
        return LowRankKernel(table, signed)
    if method == "gather":
        return GatherKernel(table, signed)
    return ReferenceKernel(table, signed)

"""The LUT GEMM as a Triton kernel: every product read from the multiplier's table, summed in int32 (GPUs).

For tables with no cheap exact factorisation (Mitchell, MBM and the like) each product is a table
read. The table is stored as 16-bit entries, ``lut - centre`` (128 KiB, resident in each
multiprocessor's L1 cache; 32-bit for the rare table spanning more than 16 bits), and the kernel computes a (BLOCK_M x BLOCK_N) tile of outputs: for each
of the K receptive-field elements it loads BLOCK_M activation codes and BLOCK_N weight codes and
gathers the BLOCK_M x BLOCK_N products ``lut[a, w]``; the lanes of a warp run along the output
channels, so one warp's reads for one activation fall in one 512-byte row of the table. Sums are
int32 (exact: every column bound is checked below 2^31 when the weight is prepared), the centre
adds back as ``K * centre``.

The activation operand is the im2col matrix of the input codes, transposed to (K, M) uint8 so each
step's BLOCK_M codes are one coalesced read; the weight is (K, O) uint8, prepared once. Block sizes
are chosen by Triton's autotuner per layer shape on CUDA. Where Triton is missing (CPU-only torch
builds), or a layer is grouped, the embedding-bag path of :mod:`._gather` runs instead.

With ``TRITON_INTERPRET=1`` set before Triton is imported the same kernel runs on CPU tensors
(slowly): that is how the test suite checks it bit-exact on machines without a GPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from ._precision import FLOAT32_EXACT

try:  # pragma: no cover - depends on the torch build
    import triton
    import triton.language as tl
except ImportError:  # CPU-only torch builds ship no Triton
    triton = None

#: Column sums of the int32 accumulator stay below this.
INT32_EXACT = 1 << 31
#: Whether the kernel runs on CPU tensors (Triton's interpreter, for tests).
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"


def available(device: torch.device) -> bool:
    """Whether the Triton LUT kernel serves layers on ``device``."""
    if triton is None:
        return False
    return device.type == "cuda" or (INTERPRET and device.type == "cpu")


if triton is not None:

    @triton.jit
    def _lut_gemm_kernel(a_ptr, w_ptr, lut_ptr, c_ptr, M, N, K, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
        """c[m, n] = sum_k lut[a[k, m] * 256 + w[k, n]] (a: (K, M) uint8, w: (K, N) uint8, c: (M, N) int32)."""
        pid_m = tl.program_id(0)
        pid_n = tl.program_id(1)
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        mask_m = offs_m < M
        mask_n = offs_n < N
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.int32)
        a_ptrs = a_ptr + offs_m
        w_ptrs = w_ptr + offs_n
        for _ in range(0, K):
            a = tl.load(a_ptrs, mask=mask_m, other=0).to(tl.int32)
            w = tl.load(w_ptrs, mask=mask_n, other=0).to(tl.int32)
            acc += tl.load(lut_ptr + (a[:, None] * 256 + w[None, :])).to(tl.int32)
            a_ptrs += M
            w_ptrs += N
        rows = offs_m.to(tl.int64)[:, None] * N
        tl.store(c_ptr + rows + offs_n[None, :], acc, mask=mask_m[:, None] & mask_n[None, :])

    _CONFIGS = [
        triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=nw)
        for bm, bn, nw in ((64, 64, 4), (128, 32, 4), (128, 64, 8), (64, 32, 2), (256, 32, 8), (32, 64, 2))
    ]
    _lut_gemm_tuned = triton.autotune(configs=_CONFIGS, key=["N", "K"])(_lut_gemm_kernel)


@dataclass
class LutPlan:
    """A layer's weights and table as the Triton kernel needs them (on the layer's device)."""

    weight: torch.Tensor  # uint8 (K, O): column index of every weight, k = (i, j, c)
    table: torch.Tensor  # int16 (int32 if needed) (65536,): lut - centre, row = activation index, column = weight
    centre: int
    kernel_size: tuple[int, int]
    dtype: torch.dtype  # float32 where every sum is below 2^24, else float64


def prepare_lut(lut: np.ndarray, w_codes: torch.Tensor, table_cache: dict) -> LutPlan | None:
    """The plan for a 4-D weight (O, C, kh, kw) of LUT indices; None where int32 sums could overflow."""
    o, c, kh, kw = (int(s) for s in w_codes.shape)
    k = c * kh * kw
    lo, hi = int(lut.min()), int(lut.max())
    centre = (lo + hi + 1) // 2
    narrow = hi - lo <= 65535  # 16-bit entries (128 KiB); else 32-bit (e.g. an unsigned 256 x 256 = 65536)
    wc = w_codes.detach().cpu().numpy().astype(np.int64)
    centred = lut - centre
    column_max = np.abs(centred).max(axis=0).astype(np.float64)  # (256,) per weight index
    column_sum = float(column_max[wc].reshape(o, -1).sum(axis=1).max()) if o else 0.0
    bound = column_sum + abs(centre) * k  # every value the kernel and the centre's addition produce
    if column_sum >= INT32_EXACT or bound >= INT32_EXACT:
        return None
    device = w_codes.device
    key = (device, centre)
    if key not in table_cache:
        table_cache[key] = torch.tensor(centred.astype(np.int16 if narrow else np.int32).reshape(-1), device=device)
    weight = torch.tensor(wc.transpose(2, 3, 1, 0).reshape(k, o).astype(np.uint8), device=device)
    dtype = torch.float32 if bound < FLOAT32_EXACT else torch.float64
    return LutPlan(weight.contiguous(), table_cache[key], centre, (kh, kw), dtype)


def _im2col_t(index: torch.Tensor, kernel_size: tuple[int, int], stride: tuple[int, int],
              dilation: tuple[int, int], out_size: tuple[int, int]) -> torch.Tensor:
    """(K, M) uint8 receptive fields of an (N, C, H, W) uint8 index tensor: k = (i, j, c), m = (n, ho, wo)."""
    n, c, _, _ = index.shape
    kh, kw = kernel_size
    ho, wo = out_size
    sn, sc, sh, sw = index.stride()
    view = index.as_strided(
        (kh, kw, c, n, ho, wo), (sh * dilation[0], sw * dilation[1], sc, sn, sh * stride[0], sw * stride[1]),
        index.storage_offset(),
    )
    return view.contiguous().view(kh * kw * c, n * ho * wo)


def lut_gemm(a_t: torch.Tensor, plan: LutPlan) -> torch.Tensor:
    """(M, O) int32 ``sum_k (lut - centre)[a_t[k, m], w[k, o]]`` for a (K, M) uint8 activation matrix."""
    k, m = a_t.shape
    o = plan.weight.shape[1]
    out = torch.empty((m, o), dtype=torch.int32, device=a_t.device)
    if m == 0 or o == 0:
        return out.zero_()
    if a_t.device.type == "cuda":
        grid = lambda meta: (triton.cdiv(m, meta["BLOCK_M"]), triton.cdiv(o, meta["BLOCK_N"]))  # noqa: E731
        _lut_gemm_tuned[grid](a_t, plan.weight, plan.table, out, m, o, k)
    else:  # the interpreter: one fixed block size
        grid = (triton.cdiv(m, 32), triton.cdiv(o, 32))
        _lut_gemm_kernel[grid](a_t, plan.weight, plan.table, out, m, o, k, BLOCK_M=32, BLOCK_N=32)
    return out


def lut_conv2d(
    x: torch.Tensor, plan: LutPlan, signed: bool, stride: tuple[int, int], dilation: tuple[int, int],
    out_size: tuple[int, int],
) -> torch.Tensor:
    """(N, O, Ho, Wo) exact sums of LUT products (a channels-last view) for padded operand values ``x``."""
    n = x.shape[0]
    ho, wo = out_size
    index = torch.empty_like(x, dtype=torch.uint8)
    if signed:
        index.copy_(x + 128)
    else:
        index.copy_(x)
    a_t = _im2col_t(index, plan.kernel_size, stride, dilation, out_size)
    sums = lut_gemm(a_t, plan).to(plan.dtype)
    if plan.centre:
        sums.add_(float(plan.centre * a_t.shape[0]))
    return sums.view(n, ho, wo, plan.weight.shape[1]).permute(0, 3, 1, 2)

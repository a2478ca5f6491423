"""The int8 GEMM of :mod:`._int8` as an implicit-GEMM convolution in Triton: no im2col matrix in memory.

``torch._int_mm`` needs the receptive fields as a matrix: kh kw times the mapped input, written and read
back, and R times more for a rank-R factorisation -- most of a layer's memory traffic. This kernel reads
the receptive fields straight from the mapped, padded, channels-last int8 input (N, H, W, C R): a
(BLOCK_M x BLOCK_N) tile of outputs loops over K = (i, j, c, r) in BLOCK_K steps, gathers each step's
(BLOCK_M x BLOCK_K) activations by address (runs of C R contiguous bytes per kernel tap), and
accumulates ``tl.dot`` of int8 operands in int32 on the tensor cores: exact, like ``torch._int_mm``.
The weight is the plan's (Np, Kp) int8 matrix, the result the same (M, Np) int32 matrix, so limbs,
extra columns and constants are recombined as before.

Block sizes come from Triton's autotuner per layer shape on CUDA; with ``TRITON_INTERPRET=1`` (set before
Triton is imported) the kernel runs on CPU tensors, which is how the tests check it bit-exact.
"""

from __future__ import annotations

import torch

from ._triton_lut import INTERPRET, triton

if triton is not None:
    import triton.language as tl

    @triton.jit
    def _conv_kernel(
        x_ptr, w_ptr, c_ptr, M, NP, K, KP, HO, WO, CR, KW, SN, SH, SW, STRIDE_H, STRIDE_W, DIL_H, DIL_W,
        const_ptr, scale_ptr, bias_ptr, O,
        BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, EPILOGUE: tl.constexpr,
        FMA64: tl.constexpr = False,
    ):
        """c[m, n] = sum_k x[window(m), k] w[n, k]; x: int8 (N, H, W, CR) by strides, w: int8 (NP, KP), c: int32 (M, NP).

        With EPILOGUE, c is float32 (M, O) and holds the requantised output instead,
        ``fma(float32(acc + const[n]), scale[n], bias[n])`` (the layer's ``requantize`` to the bit).
        """
        pid_m = tl.program_id(0)
        pid_n = tl.program_id(1)
        offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        mask_m = offs_m < M
        mask_n = offs_n < NP
        wo = offs_m % WO
        rest = offs_m // WO
        ho = rest % HO
        n = rest // HO
        base = n.to(tl.int64) * SN + (ho * STRIDE_H).to(tl.int64) * SH + (wo * STRIDE_W).to(tl.int64) * SW  # (BLOCK_M,)
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.int32)
        for k0 in range(0, K, BLOCK_K):
            offs_k = k0 + tl.arange(0, BLOCK_K)
            mask_k = offs_k < K
            tap = offs_k // CR
            cr = offs_k % CR
            i = tap // KW
            j = tap % KW
            shift = (i * DIL_H).to(tl.int64) * SH + (j * DIL_W).to(tl.int64) * SW + cr  # (BLOCK_K,)
            a = tl.load(x_ptr + base[:, None] + shift[None, :], mask=mask_m[:, None] & mask_k[None, :], other=0)
            b = tl.load(w_ptr + offs_n[None, :].to(tl.int64) * KP + offs_k[:, None], mask=mask_k[:, None] & mask_n[None, :],
                        other=0)
            acc += tl.dot(a, b)
        if EPILOGUE:
            mask_o = offs_n < O
            const = tl.load(const_ptr + offs_n, mask=mask_o, other=0.0)
            scale = tl.load(scale_ptr + offs_n, mask=mask_o, other=0.0)
            bias = tl.load(bias_ptr + offs_n, mask=mask_o, other=0.0)
            total = acc.to(tl.float32) + const[None, :]  # exact: the plan keeps every value below 2^24
            if FMA64:  # the interpreter's fma rounds twice; float64 gives the single rounding (all but never)
                result = (total.to(tl.float64) * scale[None, :].to(tl.float64) + bias[None, :].to(tl.float64)).to(tl.float32)
            else:
                result = tl.fma(total, scale[None, :], bias[None, :])
            rows = offs_m.to(tl.int64)[:, None] * O
            tl.store(c_ptr + rows + offs_n[None, :], result, mask=mask_m[:, None] & mask_o[None, :])
        else:
            rows = offs_m.to(tl.int64)[:, None] * NP
            tl.store(c_ptr + rows + offs_n[None, :], acc, mask=mask_m[:, None] & mask_n[None, :])

    @triton.jit
    def _round_half_even(v):
        """torch.round of float32 values within -256..256 (exact: ``v + 0.5`` is representable there)."""
        f = tl.floor(v + 0.5)
        tie = (f - v) == 0.5
        odd = (f - 2.0 * tl.floor(f * 0.5)) != 0.0
        return tl.where(tie & odd, f - 1.0, f)

    @triton.jit
    def _quantize_stack_kernel(
        x_ptr, table_ptr, out_ptr, TOTAL, C, H, W, HP, WP, PAD_T, PAD_L, SXN, SXC, SXH, SXW,
        inv_scale, lo, hi, offset, zero_index, R: tl.constexpr, BLOCK: tl.constexpr,
    ):
        """out[n, hp, wp, c, r] = table[code(x[n, c, hp - PAD_T, wp - PAD_L]) + offset, r] (int8, channels-last),
        with ``code(v) = round(clamp(v * inv_scale, lo, hi))``, and ``table[zero_index, r]`` in the padding."""
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        live = offs < TOTAL
        c = offs % C
        rest = offs // C
        wp = rest % WP
        rest = rest // WP
        hp = rest % HP
        n = rest // HP
        h = hp - PAD_T
        w = wp - PAD_L
        inside = live & (h >= 0) & (h < H) & (w >= 0) & (w < W)
        v = tl.load(x_ptr + n * SXN + c * SXC + h * SXH + w * SXW, mask=inside, other=0.0)
        scaled = tl.minimum(tl.maximum(v * inv_scale, lo), hi)  # clamping first is the same for integer bounds
        index = tl.where(inside, _round_half_even(scaled).to(tl.int32) + offset, zero_index)
        for r in tl.static_range(R):
            value = tl.load(table_ptr + index * R + r, mask=live, other=0)
            tl.store(out_ptr + offs * R + r, value, mask=live)

    _CONFIGS = [
        triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk}, num_warps=nw, num_stages=ns)
        for bm, bn, bk, nw, ns in (
            (128, 64, 64, 4, 3), (128, 128, 64, 8, 3), (64, 64, 64, 4, 3), (128, 32, 64, 4, 3),
            (256, 64, 64, 8, 3), (128, 16, 64, 4, 3), (256, 32, 32, 8, 3), (64, 128, 64, 4, 3),
        )
    ]
    _conv_tuned = triton.autotune(configs=_CONFIGS, key=["NP", "K", "CR", "KW"])(_conv_kernel)


def available(device: torch.device) -> bool:
    """Whether the Triton implicit-GEMM kernel serves int8 layers on ``device``."""
    if triton is None:
        return False
    return device.type == "cuda" or (INTERPRET and device.type == "cpu")


def implicit_int_mm(
    stacked: torch.Tensor, weight: torch.Tensor, k_rows: int, kernel_size: tuple[int, int], stride: tuple[int, int],
    dilation: tuple[int, int], out_size: tuple[int, int],
) -> torch.Tensor:
    """(M, Np) int32 ``im2col(stacked) @ weight.T`` without the im2col matrix: ``stacked`` int8 (N, H, W, C R)
    (any strides, last one 1), ``weight`` int8 (Np, Kp) with rows ordered (i, j, c, r) and zero padding."""
    n = stacked.shape[0]
    m = n * out_size[0] * out_size[1]
    out = torch.empty((m, weight.shape[0]), dtype=torch.int32, device=stacked.device)
    if m == 0:
        return out
    if stacked.stride(3) != 1:
        stacked = stacked.contiguous()
    _launch(stacked, weight, out, k_rows, kernel_size, stride, dilation, out_size, None)
    return out


def _launch(stacked, weight, out, k_rows, kernel_size, stride, dilation, out_size, epilogue) -> None:
    n, _, _, cr = stacked.shape
    ho, wo = out_size
    m = n * ho * wo
    np_, kp = weight.shape
    sn, sh, sw, _ = stacked.stride()
    const, scale, bias = epilogue if epilogue is not None else (out, out, out)
    o = scale.shape[0] if epilogue is not None else np_
    args = (stacked, weight, out, m, np_, k_rows, kp, ho, wo, cr, kernel_size[1], sn, sh, sw, stride[0], stride[1],
            dilation[0], dilation[1], const, scale, bias, o)
    if stacked.device.type == "cuda":
        grid = lambda meta: (triton.cdiv(m, meta["BLOCK_M"]), triton.cdiv(np_, meta["BLOCK_N"]))  # noqa: E731
        _conv_tuned[grid](*args, EPILOGUE=epilogue is not None)
    else:  # the interpreter: one fixed block size
        grid = (triton.cdiv(m, 32), triton.cdiv(np_, 16))
        _conv_kernel[grid](*args, BLOCK_M=32, BLOCK_N=16, BLOCK_K=16, EPILOGUE=epilogue is not None, FMA64=True)


def quantize_stack(
    x: torch.Tensor, table: torch.Tensor, padding: tuple[int, int, int, int], inv_scale: float, bounds: tuple[int, int],
    offset: int,
) -> torch.Tensor:
    """Float activations (N, C, H, W), any strides -> the layer's mapped codes, padded: int8 (N, Hp, Wp, C R),
    in one pass. ``padding`` is (top, bottom, left, right); padding takes the code of zero (int8: value 0)."""
    n, c, h, w = x.shape
    top, bottom, left, right = padding
    hp, wp = h + top + bottom, w + left + right
    r = table.shape[1]
    out = torch.empty((n, hp, wp, c * r), dtype=torch.int8, device=x.device)
    total = n * hp * wp * c
    if total == 0:
        return out
    sxn, sxc, sxh, sxw = x.stride()
    block = 1024
    grid = (triton.cdiv(total, block),)
    _quantize_stack_kernel[grid](x, table, out, total, c, h, w, hp, wp, top, left, sxn, sxc, sxh, sxw,
                                 inv_scale, float(bounds[0]), float(bounds[1]), offset, offset, R=r, BLOCK=block)
    return out


def fused_conv(
    stacked: torch.Tensor, weight: torch.Tensor, k_rows: int, kernel_size: tuple[int, int], stride: tuple[int, int],
    dilation: tuple[int, int], out_size: tuple[int, int], constant: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor,
) -> torch.Tensor:
    """(M, O) float32: the layer's requantised output, ``fma(sum + constant, scale, bias)`` per output channel,
    straight from the int32 accumulator (constant, scale, bias: float32 (O,))."""
    n = stacked.shape[0]
    m = n * out_size[0] * out_size[1]
    out = torch.empty((m, scale.shape[0]), dtype=torch.float32, device=stacked.device)
    if m:
        _launch(stacked, weight, out, k_rows, kernel_size, stride, dilation, out_size, (constant, scale, bias))
    return out

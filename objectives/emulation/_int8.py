"""The integer GEMM path: factor tables as int8 operands of one int8 x int8 -> int32 GEMM (GPUs).

A layer's products are ``lut[a, w] = sum_r u_r(a) v_r(w)`` (:mod:`._stacked`; the exact table is
the rank-1 case ``u = v = value``). Each factor is centred, ``u_r = u'_r + c_r`` (``c_r`` from the
table's range over all 256 activations) and ``v_r = v'_r + d_r`` (``d_r`` from the range over the
layer's own weights), and the centred values are split into balanced base-256 digits ("limbs",
each in -128..127, usually one). Then, summed over a receptive field of K elements::

    sum_k sum_r u_r v_r = sum_k sum_r u'_r v'_r              (the GEMM's main columns)
                        + sum_r d_r sum_k u'_r               (one extra column per r with d_r != 0)
                        + sum_r c_r sum_k v'_r(w) + K sum_r c_r d_r     (a constant per output channel)

The GEMM is int8 x int8 -> int32 on the tensor cores (exact by construction, with no floating-point
accumulation order to worry about): on GPUs a Triton implicit-GEMM convolution that reads the receptive
fields of the mapped, channels-last int8 input in place (:mod:`._triton_int8`); elsewhere (and where
Triton is missing) ``torch._int_mm`` (cuBLASLt's GEMM on CUDA) over the im2col matrix of the mapped
activations, built channels-last in int8. Its right operand is the mapped weights, prepared once. One GEMM per activation limb; the
limbs and extra columns are recombined exactly (float32 where the layer's bound keeps every value
below 2^24, else float64). Every int32 column sum is bounded at prepare time; a layer whose bound
reaches 2^31 (none of the zoo's at ResNet sizes) keeps the floating-point path, as do grouped
convolutions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from . import _triton_int8
from ._im2col import values_channels_last
from ._operands import offset
from ._precision import FLOAT32_EXACT, FLOAT64_EXACT

#: "int8": always (any device, for tests); "float": never; None: on CUDA devices.
BACKEND: str | None = None
#: int32 accumulators hold column sums below this.
INT32_EXACT = 1 << 31
#: torch._int_mm needs more than 16 rows and K, N multiples of 8.
MIN_ROWS = 17
ALIGN = 8


def available() -> bool:
    """Whether this torch has the int8 GEMM."""
    return hasattr(torch, "_int_mm")


def uses_int8(device: torch.device) -> bool:
    """Whether layers prepared on ``device`` take the int8 GEMM."""
    if BACKEND == "float" or not available():
        return False
    return BACKEND == "int8" or device.type == "cuda"


def _limbs(values: np.ndarray) -> list[np.ndarray]:
    """Balanced base-256 digits of integers (int64 array): ``values = sum_l 256^l limb_l``, limbs in -128..127."""
    out, rest = [], values.astype(np.int64)
    while True:
        low = ((rest + 128) % 256) - 128
        out.append(low)
        rest = (rest - low) // 256
        if not np.any(rest):
            return out
        if len(out) == 4:  # pragma: no cover - factors are far below 2^31
            raise OverflowError("factor values too large for int8 limbs")


def _centre(values: np.ndarray, axis: int) -> np.ndarray:
    """Per row, the centre ``c`` that puts ``values - c`` in -128..127 when the row spans at most 255 (0 for a
    row already there: no constant, no extra column)."""
    lo, hi = values.min(axis=axis), values.max(axis=axis)
    return np.where((lo >= -128) & (hi <= 127), 0, (lo + hi + 1) // 2)


def _cost(u_row: np.ndarray, v_used: np.ndarray) -> tuple[int, int, int, int]:
    """What a factor pair costs the GEMM: activation limbs, weight limbs, an extra column, a constant."""
    cu, cv = _centre(u_row[None], 1)[0], _centre(v_used[None], 1)[0] if v_used.size else 0
    return len(_limbs(u_row - cu)), len(_limbs(v_used - cv)) if v_used.size else 1, int(cv != 0), int(cu != 0)


def _balanced(u: np.ndarray, vw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each factor pair rewritten ``u_r v_r = (s 2^e u_r) (s v_r / 2^e)`` (sign s, power e, exact divisions only)
    to fit int8 best: fewest limbs, then no extra column, then no constant.

    Exact factorisations come out of lattice reduction with arbitrary signs and scale: Mitchell-free
    truncations, say, as ``u = -a / 2``, ``v = -4 w'`` where ``u = a``, ``v = w'`` fit one int8 digit each.
    """
    u, vw = u.copy(), vw.copy()
    for r in range(u.shape[0]):
        flat = vw[r].reshape(-1)
        best, best_cost = (1, 0), _cost(u[r], flat)
        for sign in (1, -1):
            for e in range(-8, 9):
                if e > 0 and np.any(flat % (1 << e)):
                    continue
                if e < 0 and np.any(u[r] % (1 << -e)):
                    continue
                uu = sign * (u[r] << e if e >= 0 else u[r] >> -e)
                vv = sign * (flat >> e if e >= 0 else flat << -e)
                cost = _cost(uu, vv)
                if cost < best_cost:
                    best, best_cost = (sign, e), cost
        sign, e = best
        u[r] = sign * (u[r] << e if e >= 0 else u[r] >> -e)
        vw[r] = sign * (vw[r] >> e if e >= 0 else vw[r] << -e)
    return u, vw


@dataclass
class Int8Plan:
    """A layer's weights as the int8 GEMM needs them (on the layer's device)."""

    act_tables: list[torch.Tensor]  # per activation limb: int8 (256, R), row = LUT index
    identity: bool  # R = 1 and u'_0 is the operand value itself (signed): no lookup needed
    weight: torch.Tensor  # int8 (Np, Kp): columns (lv, o) then the extra columns, padded; rows (i, j, c, r)
    k_rows: int  # unpadded K' = kh kw C R
    o: int
    v_limbs: int
    extra: list[tuple[int, int]]  # (column, d_r) of the extra columns
    constant: torch.Tensor  # (O,) float64: sum_r c_r sum_k v'_r(w) + K sum_r c_r d_r
    constant32: torch.Tensor  # the same in float32 (exact where dtype is float32)
    has_constant: bool
    kernel_size: tuple[int, int]
    dtype: torch.dtype  # float32 where every value stays below 2^24, else float64


def prepare_int8(u: np.ndarray, v: np.ndarray, signed: bool, w_codes: torch.Tensor) -> Int8Plan | None:
    """The int8 plan of a 4-D weight (O, C, kh, kw) of LUT indices for factors ``u``, ``v`` (R, 256); None
    when the layer's column sums could reach 2^31 (or the final values 2^53)."""
    o, c, kh, kw = (int(s) for s in w_codes.shape)
    r = int(u.shape[0])
    k = c * kh * kw
    wc = w_codes.detach().cpu().numpy().astype(np.int64)
    u, vw = _balanced(u, v[:, wc])  # vw: (R, O, C, kh, kw)
    centre_u = _centre(u, 1)  # (R,)
    used = vw.reshape(r, -1)
    centre_v = _centre(used, 1) if used.size else np.zeros(r, np.int64)
    u_c = u - centre_u[:, None]  # (R, 256)
    v_c = vw - centre_v[:, None, None, None, None]  # (R, O, C, kh, kw)
    u_limbs, v_limbs = _limbs(u_c), _limbs(v_c)
    extra_r = [i for i in range(r) if centre_v[i] != 0]
    # int32 bounds of every GEMM column, per activation limb
    for ul in u_limbs:
        u_max = np.abs(ul).max(axis=1).astype(np.float64)  # (R,)
        for vl in v_limbs:
            col = (np.abs(vl).astype(np.float64) * u_max[:, None, None, None, None]).sum(axis=(0, 2, 3, 4))
            if col.size and col.max() >= INT32_EXACT:
                return None
        if extra_r and (u_max[extra_r] * k).max() >= INT32_EXACT:
            return None
    # bound of every value the recombination adds up
    u_c_max = np.abs(u_c).max(axis=1).astype(np.float64)
    main = (np.abs(v_c).astype(np.float64) * u_c_max[:, None, None, None, None]).sum(axis=(0, 2, 3, 4))  # (O,)
    extra = sum(abs(float(centre_v[i])) * u_c_max[i] * k for i in extra_r)
    constant = (centre_u[:, None] * v_c.reshape(r, o, -1).sum(axis=2)).sum(axis=0) + k * int(
        (centre_u * centre_v).sum())  # (O,) int64
    bound = float((main + extra + np.abs(constant)).max()) if o else 0.0
    if bound >= FLOAT64_EXACT:
        return None
    single = len(u_limbs) == 1 and len(v_limbs) == 1
    dtype = torch.float32 if single and bound < FLOAT32_EXACT else torch.float64

    device = w_codes.device
    kp = -(-k * r // ALIGN) * ALIGN
    n_cols = o * len(v_limbs) + len(extra_r)
    np_ = -(-max(n_cols, 1) // ALIGN) * ALIGN
    weight = np.zeros((np_, kp), dtype=np.int8)
    for lv, vl in enumerate(v_limbs):  # rows (i, j, c, r): (R, O, C, kh, kw) -> (O, kh, kw, C, R)
        weight[lv * o : (lv + 1) * o, : k * r] = vl.transpose(1, 3, 4, 2, 0).reshape(o, k * r)
    extra_cols = []
    for j, i in enumerate(extra_r):
        column = o * len(v_limbs) + j
        weight[column, i : k * r : r] = 1
        extra_cols.append((column, int(centre_v[i])))
    values = np.arange(256) - offset(signed)
    identity = r == 1 and len(u_limbs) == 1 and signed and bool(np.array_equal(u_limbs[0][0], values))
    return Int8Plan(
        act_tables=[torch.tensor(ul.T.astype(np.int8), device=device).contiguous() for ul in u_limbs],
        identity=identity,
        weight=torch.tensor(weight, device=device),
        k_rows=k * r,
        o=o,
        v_limbs=len(v_limbs),
        extra=extra_cols,
        constant=torch.tensor(constant.astype(np.float64), device=device),
        constant32=torch.tensor(constant.astype(np.float32), device=device),
        has_constant=bool(np.any(constant)),
        kernel_size=(kh, kw),
        dtype=dtype,
    )


def _stacked_input(x: torch.Tensor, table: torch.Tensor, identity: bool, signed: bool) -> torch.Tensor:
    """(N, C, H, W) operand values -> int8 channels-last (N, H, W, C R) of mapped values."""
    n, c, h, w = x.shape
    if identity:
        return torch.empty((n, h, w, c), dtype=torch.int8, device=x.device).copy_(x.permute(0, 2, 3, 1))
    idx = values_channels_last(x)
    if signed:
        idx.add_(offset(signed))
    r = table.shape[1]
    return torch.index_select(table, 0, idx.view(-1)).view(n, h, w, c * r)


def _im2col(stacked: torch.Tensor, plan: Int8Plan, stride: tuple[int, int], dilation: tuple[int, int],
            out_size: tuple[int, int]) -> torch.Tensor:
    """(M, Kp) int8 rows of receptive fields (k = (i, j, c, r)), M >= MIN_ROWS, zero-padded."""
    n, h, w, cr = stacked.shape
    kh, kw = plan.kernel_size
    ho, wo = out_size
    m = n * ho * wo
    kp = plan.weight.shape[1]
    rows = max(m, MIN_ROWS)
    simple = kh == 1 and kw == 1 and stride == (1, 1) and (h, w) == (ho, wo)
    if simple and kp == cr and rows == m:
        return stacked.view(m, cr)
    out = torch.empty((rows, kp), dtype=torch.int8, device=stacked.device)
    if kp > plan.k_rows:
        out[:, plan.k_rows :].zero_()
    if rows > m:
        out[m:].zero_()
    sn, sh, sw, sc = stacked.stride()
    patches = stacked.as_strided(
        (n, ho, wo, kh, kw, cr), (sn, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1], sc)
    )
    out[:m, : plan.k_rows].view(n, ho, wo, kh, kw, cr).copy_(patches)
    return out


def int8_conv2d(
    x: torch.Tensor, plan: Int8Plan, signed: bool, stride: tuple[int, int], dilation: tuple[int, int],
    out_size: tuple[int, int],
) -> torch.Tensor:
    """(N, O, Ho, Wo) exact sums (a channels-last view) for padded operand values ``x`` (groups = 1)."""
    n = x.shape[0]
    ho, wo = out_size
    m, o = n * ho * wo, plan.o
    total = None
    implicit = _triton_int8.available(x.device)
    for level, table in enumerate(plan.act_tables):
        stacked = _stacked_input(x, table, plan.identity, signed)
        if implicit:  # the receptive fields read in place (GPUs; module doc of _triton_int8)
            c = _triton_int8.implicit_int_mm(stacked, plan.weight, plan.k_rows, plan.kernel_size, stride, dilation,
                                             out_size)
        else:
            c = torch._int_mm(_im2col(stacked, plan, stride, dilation, out_size), plan.weight.t())[:m]  # (M, Np) int32
        if len(plan.act_tables) == 1 and plan.v_limbs == 1 and not plan.extra:
            total = c[:, :o].to(plan.dtype)
            break
        # one limb: plan.dtype is float32 only where every partial sum stays below 2^24
        part = c[:, :o].to(plan.dtype)
        for lv in range(1, plan.v_limbs):
            part.add_(c[:, lv * o : (lv + 1) * o].to(plan.dtype), alpha=float(256**lv))
        for column, d in plan.extra:
            part.add_(c[:, column : column + 1].to(plan.dtype), alpha=float(d))
        if level:
            part.mul_(float(256**level))
        total = part if total is None else total.add_(part)
    if plan.has_constant:
        total = total.add_(plan.constant.to(total.dtype))
    return total.view(n, ho, wo, o).permute(0, 3, 1, 2)


def fusable(plan: Int8Plan) -> bool:
    """Whether a layer's plan is one GEMM of float32-exact sums: its requantisation can be the GEMM's epilogue."""
    return len(plan.act_tables) == 1 and plan.v_limbs == 1 and not plan.extra and plan.dtype == torch.float32


def fused_forward(
    x: torch.Tensor, plan: Int8Plan, signed: bool, geometry: tuple, quantisation: tuple, requantisation: tuple,
) -> torch.Tensor | None:
    """A whole int8 layer in two kernels, on GPUs: float input -> requantised float output, the same to the bit
    as the layer's template (quantise, pad, sums, requantise), or None where that does not apply.

    ``geometry``: (padding (top, bottom, left, right), stride, dilation); ``quantisation``: (1 / input scale as
    float32, lowest and highest code); ``requantisation``: the layer's float32 scale and bias per channel.
    The first kernel quantises, pads and maps the input to its int8 factor codes (channels-last); the
    second is the implicit-GEMM convolution whose epilogue adds the plan's constant and requantises
    (``fma`` in float32, as ``torch.addcmul`` does). Four passes over float activations and the int32
    accumulator's round trip through memory are gone.
    """
    if not (_triton_int8.available(x.device) and fusable(plan)):
        return None
    padding, stride, dilation = geometry
    inv_scale, lo, hi = quantisation
    scale, bias = requantisation
    n, _, h, w = x.shape
    kh, kw = plan.kernel_size
    hp, wp = h + padding[0] + padding[1], w + padding[2] + padding[3]
    ho = (hp - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wp - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if ho < 1 or wo < 1:
        return None
    stacked = _triton_int8.quantize_stack(x, plan.act_tables[0], padding, inv_scale, (lo, hi), offset(signed))
    out = _triton_int8.fused_conv(stacked, plan.weight, plan.k_rows, plan.kernel_size, stride, dilation, (ho, wo),
                                  plan.constant32, scale, bias)
    return out.view(n, ho, wo, plan.o).permute(0, 3, 1, 2)

"""The factorised GEMM: ``y = sum_r conv(u_r(x), v_r(w))`` as ONE conv with stacked channels.

For a table ``lut[a, w] = sum_r u[r, a] v[r, w]`` (integer factors), each input element is
mapped to its R factor values and each weight to its R factor values; stacking the R maps along
the channel dimension (inside each group) turns the sum over r into part of the GEMM's
reduction, so one conv with R times the input channels computes every output exactly (or, with
:data:`STACKED` off, R convs accumulated).

Exactness: the conv runs in float32 when every partial sum is an integer below 2^24 in
magnitude. The bound per output channel o is ``sum_{r,c,i,j} max_a |u_r(a)| |v_r(w[o,c,i,j])|``
(activations are unknown at prepare time, so the largest factor value stands in for them).
Where it is too large, the weight-side factors are split into limbs (more output channels of the
same conv, recombined in float64); beyond ``MAX_LIMBS`` limbs the conv runs in float64.

Layout: with the conv path (CPU) the stacked input is built channels-last, its channels ordered
(group, channel, factor), by one lookup of a (256, R) table per input element; the weight is
ordered to match and held channels-last too. oneDNN's convolution is much faster on
channels-last data, the more so the wider the stacked input: measured on this project's 2-core
CPU (batch 256, 3x3, ResNet-20 stage shapes), R = 4 stacked channels 72 -> 27 ms (16 channels at
32x32), 48 -> 28 ms (32 at 16x16), and one channel 11.4 -> 8.8 ms. The result is channels-last as
well, so a network of such layers stays channels-last from layer to layer.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from multipliers._record import operand_values

from . import _int8
from ._gemm import integer_conv2d, uses_conv
from ._im2col import values_channels_last
from ._operands import codes, offset
from ._precision import FLOAT32_EXACT, FLOAT64_EXACT, MAX_LIMBS, ieee_arithmetic, partial_sum_bound, split_limbs

#: True: one conv over all factors stacked along channels; False: one conv per factor,
#: accumulated. Stacked everywhere: on this project's loaded 2-core CPU, whole ResNet-20
#: forwards (batch 128, trunc/roba/kulkarni designs, 4/2/3 channels) took 0-27% less stacked
#: than one conv per factor, each of which zero-fills its output and is added up (an earlier
#: layer-level measurement, benchmarks/kernels.py, had favoured separate convs by 15-20%).
STACKED: bool = True


def map_values(table: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``table[idx]`` for an int32 (N, C, H, W) index in its own memory format (NCHW or channels-last).

    int32 indices and index_select: an int64 index tensor and advanced indexing are each several
    times slower than the conv's own input pass.
    """
    channels_last = idx.is_contiguous(memory_format=torch.channels_last) and not idx.is_contiguous()
    src = idx.permute(0, 2, 3, 1) if channels_last else idx.contiguous()
    out = torch.index_select(table, 0, src.view(-1)).view(src.shape)
    return out.permute(0, 3, 1, 2) if channels_last else out


class StackedGemm:
    """Exact ``sum_r conv(u_r(x), v_r(w))`` for integer factor tables ``u``, ``v`` (R, 256)."""

    def __init__(self, u: np.ndarray, v: np.ndarray, signed: bool) -> None:
        u = np.asarray(u, dtype=np.int64)
        v = np.asarray(v, dtype=np.int64)
        if u.shape != v.shape or u.ndim != 2 or u.shape[1] != 256:
            raise ValueError(f"factor tables must both be (R, 256), got {u.shape} and {v.shape}")
        self.u, self.v, self.signed = u, v, bool(signed)
        self.rank = int(u.shape[0])
        values = operand_values(signed)
        #: factor r maps activations to themselves: the input is used as it is.
        self.identity = [bool(np.array_equal(u[r], values)) for r in range(self.rank)]
        self.u_max = np.abs(u).max(axis=1) if self.rank else np.zeros(0, np.int64)
        self.v_max = np.abs(v).max(axis=1) if self.rank else np.zeros(0, np.int64)
        #: factor r maps the second operand to itself as well (the exact product's factor).
        self.both_identity = [self.identity[r] and bool(np.array_equal(v[r], values)) for r in range(self.rank)]
        self._device_tables: dict[tuple[torch.device, torch.dtype], tuple[torch.Tensor, torch.Tensor]] = {}
        self._by_code_tables: dict[tuple, torch.Tensor] = {}

    def _tables(self, device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """(u as float ``dtype`` (R, 256), v as int64 (R, 256)) on ``device``."""
        key = (device, dtype)
        if key not in self._device_tables:
            self._device_tables[key] = (
                torch.tensor(self.u, device=device).to(dtype),
                torch.tensor(self.v, device=device),
            )
        return self._device_tables[key]

    def _by_code(self, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """The activation factors as a contiguous (256 codes, R) table of ``dtype``."""
        key = (device, dtype)
        if key not in self._by_code_tables:
            self._by_code_tables[key] = self._tables(device, dtype)[0].t().contiguous()
        return self._by_code_tables[key]

    # -- weights -------------------------------------------------------------------------------
    def prepare(self, w: torch.Tensor, data: dict) -> None:
        """Map a 4-D weight (O, Cg, kh, kw) of operand values to stacked, limb-split factors."""
        o, cg, kh, kw = w.shape
        r = self.rank
        data["rank"] = r
        if r == 0:
            return
        _, v_t = self._tables(w.device, torch.float32)
        vw = v_t[:, codes(w, self.signed)].transpose(0, 1)  # (O, R, Cg, kh, kw) int64
        u_max = torch.as_tensor(self.u_max, dtype=torch.float64, device=w.device).view(1, r, 1, 1, 1)

        def bound(limb: torch.Tensor) -> float:
            return partial_sum_bound(limb.abs() * u_max, (1, 2, 3, 4))

        chosen = None
        if int(self.u_max.max()) < FLOAT32_EXACT:
            for n_limbs in range(1, MAX_LIMBS + 1):
                limbs, shift = split_limbs(vw, n_limbs)
                if max(bound(limb) for limb in limbs) < FLOAT32_EXACT:
                    chosen = (limbs, shift, torch.float32)
                    break
        if chosen is None:
            if bound(vw) >= FLOAT64_EXACT:
                raise OverflowError("partial sums of this layer exceed 2^53: not exactly computable in float64")
            chosen = ([vw], 0, torch.float64)
        limbs, shift, dtype = chosen
        data["limbs"] = torch.stack(limbs).to(dtype)  # (L, O, R, Cg, kh, kw)
        data["shift"] = shift
        data["dtype"] = dtype
        if _int8.uses_int8(w.device):  # groups == 1 layers take the int8 GEMM (module doc of _int8)
            data["int8"] = _int8.prepare_int8(self.u, self.v, self.signed, codes(w, self.signed))

    def _weight(self, data: dict, cache: dict, groups: int, r: int | None, channels_last: bool = False) -> torch.Tensor:
        """Conv weight (g L Og, R Cg or Cg, kh, kw): all factors stacked (``r`` None) or factor r.

        Output channels run (group, limb, channel of the group), so the limbs of each group stay
        inside that group's block of a grouped conv. Stacked input channels run (factor, channel),
        or with ``channels_last`` (channel, factor) in channels-last memory, as
        :meth:`stack_input` builds them.
        """
        key = ("weight", groups, r, channels_last)
        if key not in cache:
            limbs = data["limbs"]  # (L, O, R, Cg, kh, kw)
            n_limbs, o, rank, cg, kh, kw = limbs.shape
            sel = limbs if r is None else limbs[:, :, r : r + 1]
            if channels_last:
                sel = sel.transpose(2, 3)  # (L, O, Cg, R, kh, kw)
            sel = sel.reshape(n_limbs, groups, o // groups, -1, kh, kw).transpose(0, 1)
            weight = sel.reshape(groups * n_limbs * (o // groups), -1, kh, kw)
            fmt = torch.channels_last if channels_last else torch.contiguous_format
            cache[key] = weight.contiguous(memory_format=fmt)
        return cache[key]

    # -- inputs --------------------------------------------------------------------------------
    def stack_input(self, x: torch.Tensor, groups: int, dtype: torch.dtype, channels_last: bool = False) -> torch.Tensor:
        """(N, C, H, W) operand values -> (N, g R Cg, H, W) factor values, stacked per group.

        Channels run (group, factor, channel); with ``channels_last`` they run (group, channel,
        factor) and the result is a channels-last tensor.
        """
        n, c, h, w = x.shape
        r = self.rank
        if channels_last:
            if r == 1 and self.identity[0]:
                return x.to(dtype).contiguous(memory_format=torch.channels_last)
            idx = values_channels_last(x)
            if self.signed:
                idx.add_(offset(self.signed))
            by_code = self._by_code(x.device, dtype)  # (256, R)
            stacked = F.embedding(idx, by_code)  # (N, H, W, C, R): channels (group, channel, factor)
            return stacked.view(n, h, w, c * r).permute(0, 3, 1, 2)
        u_t, _ = self._tables(x.device, dtype)
        idx = codes(x, self.signed, torch.int32)
        if r == 1:
            return map_values(u_t[0], idx)
        cg = c // groups
        out = torch.empty((n, groups, r, cg, h, w), dtype=dtype, device=x.device)
        for k in range(r):
            src = x if self.identity[k] else map_values(u_t[k], idx)
            out[:, :, k].copy_(src.reshape(n, groups, cg, h, w))
        return out.view(n, groups * r * cg, h, w)

    # -- products of two operand matrices --------------------------------------------------------
    def matmul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(G, M, K) x (G, K, N) operand values -> (G, M, N) exact ``sum_k sum_r u_r(a) v_r(b)``.

        Neither operand is known ahead, so both are mapped through the factor tables on every call
        (one lookup of a (256, R) table per element, ``(M + N) K R`` values per matrix) and multiplied
        by one batched GEMM over the stacked factors. Its bound comes from the tables alone,
        ``K sum_r max|u_r| max|v_r|``: float32 below 2^24 (K up to 1023 for the exact signed product),
        else float64.
        """
        g, m, k = a.shape
        n = b.shape[2]
        if self.rank == 0:
            return torch.zeros((g, m, n), dtype=torch.float64, device=a.device)
        bound = k * float(np.sum(self.u_max.astype(np.float64) * self.v_max.astype(np.float64)))
        if bound >= FLOAT64_EXACT:
            raise OverflowError("partial sums of this product exceed 2^53: not exactly computable in float64")
        dtype = torch.float32 if bound < FLOAT32_EXACT else torch.float64
        if self.rank == 1 and self.both_identity[0]:
            left, right = a.to(dtype), b.to(dtype)
        else:
            left = F.embedding(codes(a, self.signed), self._by_code(a.device, dtype)).reshape(g, m, k * self.rank)
            by_code_v = self._by_code_v(b.device, dtype)
            right = F.embedding(codes(b, self.signed), by_code_v).transpose(2, 3).reshape(g, k * self.rank, n)
        with ieee_arithmetic(a.device):
            return torch.bmm(left, right)

    def _by_code_v(self, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """The second operand's factors as a contiguous (256 codes, R) table of ``dtype``."""
        key = ("v", device, dtype)
        if key not in self._by_code_tables:
            self._by_code_tables[key] = torch.tensor(self.v.T.copy(), device=device).to(dtype).contiguous()  # type: ignore[index]
        return self._by_code_tables[key]  # type: ignore[index]

    # -- the conv ------------------------------------------------------------------------------
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
        """(N, O, Ho, Wo) exact ``sum_r conv(u_r(x), v_r(w))``: float32 where one limb is exact, else float64."""
        n = x.shape[0]
        if self.rank == 0:
            return torch.zeros((n, o, *out_size), dtype=torch.float64, device=x.device)
        dtype = data["dtype"]
        plan = data.get("int8")
        if plan is not None and groups == 1:
            return _int8.int8_conv2d(x, plan, self.signed, stride, dilation, out_size)
        if STACKED or self.rank == 1:
            cl = uses_conv(x.device)
            xs = self.stack_input(x, groups, dtype, channels_last=cl)
            y = integer_conv2d(xs, self._weight(data, cache, groups, None, cl), stride, dilation, groups, out_size)
        else:  # one conv per factor, accumulated: partial sums of the same terms, same bound
            u_t, _ = self._tables(x.device, dtype)
            idx = codes(x, self.signed, torch.int32)
            y = None
            for r in range(self.rank):
                xr = x.to(dtype) if self.identity[r] else map_values(u_t[r], idx)
                part = integer_conv2d(xr, self._weight(data, cache, groups, r), stride, dilation, groups, out_size)
                y = part if y is None else y.add_(part)
        n_limbs = data["limbs"].shape[0]
        if n_limbs == 1:
            return y  # float32 exact under the layer's bound (or the float64 fallback)
        y = y.view(n, groups, n_limbs, o // groups, *out_size)
        total = y[:, :, -1].to(torch.float64)
        for limb in range(n_limbs - 2, -1, -1):  # Horner: exact, every value an integer < 2^53
            total = total * float(1 << data["shift"]) + y[:, :, limb]
        return total.reshape(n, o, *out_size)

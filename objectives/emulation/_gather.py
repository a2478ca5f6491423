"""The gather path, for tables without low-rank structure: per-layer tables read as embedding bags.

Each layer gets a table ``T[g, k, a, o] = S[a, W[g, o, k]]`` (256 rows per weight position, one
column per output channel of the group), with ``S`` the whole LUT or only its error
``E = lut - exact``. Every output position is then a bag of K rows, one per receptive-field
element (row ``k * 256 + a``, built channels-last by :func:`._im2col.bag_rows`), summed by
``torch.nn.functional.embedding_bag(mode="sum")`` -- FBGEMM on CPU, a CUDA kernel on GPUs.

Exactness: the bag runs in float32, exact while its partial sums stay below 2^24; the bound per
layer is ``max_o sum_k max_a |S[a, W[o, k]]|``, from the weights at prepare time. Whole products
are used where they fit (no GEMM at all); otherwise the exact part is one integer-valued GEMM
(:mod:`._stacked`) and only the small error goes through the bags, split into limbs
(``E = sum_l 2^(b l) E_l``, extra columns of the same bag, recombined in float64) in the rare
layers where even the error sums pass 2^24.

Why this layout -- measured on this project's 2-core CPU (ResNet-20-like 3x3 conv, N=64, C=O=32,
16x16; float32 conv 3-8 ms depending on load):

* float32 embedding bag: 11-25 ms; a float64 bag has no FBGEMM kernel: 600 ms;
* a one-hot GEMM over activation values costs 256x the conv's FLOPs, one GEMM per distinct
  weight value up to 256 convs: both far slower;
* compiled code: numba 0.68.1 (with llvmlite 0.50.0) installs with pip here and supports the
  installed numpy 2.4, but a parallel numba bag over an int16 table (half the memory traffic)
  was no faster than FBGEMM's float32 bag (24-59 ms against 24-38 ms), so it is not a dependency;
* dropping zero activations from the bags (variable-length bags) cost more to compact than it
  saved, and ``padding_idx`` leaves FBGEMM for a path ten times slower;
* whole-K bags with their row indices built in one pass per batch chunk (up to
  ``CHUNK_INDICES``), explicit cached offsets, and the float32 sums returned as a view of the
  channels-last result: about 1.6x faster than bags over a few kernel taps at a time summed
  into a zeroed buffer (under load, every extra op costs: smaller chunks were slower).

The table costs about as much to build as one call's bags, so it is cached in the prepared
weight (1 KiB per weight); above ``TABLE_CACHE_ENTRIES`` entries per layer it is built per call
in blocks of output channels, or, for layers with few output positions (a small-batch linear
layer), replaced by one int32 lookup per product with int64 sums (``_direct``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from multipliers._record import exact_lut

from . import _triton_lut
from ._base import PreparedWeight, ProductKernel
from ._centred import exact_gemm
from ._im2col import bag_row_base, bag_rows, channels_last, tap_rows, values_channels_last
from ._operands import codes, offset
from ._precision import FLOAT32_EXACT, FLOAT64_EXACT, MAX_LIMBS, split_limbs

#: Layer tables up to this many float32 entries are kept in the prepared weight (64 MiB).
TABLE_CACHE_ENTRIES = 1 << 24
#: Table block size when a layer's table is built per call.
TABLE_BLOCK_ENTRIES = 1 << 22
#: Row indices held at once (int32): the batch is processed in chunks below this.
CHUNK_INDICES = 1 << 22
#: Layers whose table is too big to cache use one lookup per product below this many bags
#: (output positions), where building the table would cost more than the lookups.
DIRECT_MAX_BAGS = 256
#: Lookups per step of the direct path (small enough to stay in cache).
DIRECT_CHUNK = 1 << 18


class GatherKernel(ProductKernel):
    """Bit-exact for any table: embedding bags over per-layer tables (plus a GEMM for the exact part)."""

    method = "gather"

    def __init__(self, lut: np.ndarray, signed: bool) -> None:
        super().__init__(lut, signed)
        self._exact = exact_gemm(self.signed)
        self._sources = {"lut": self.lut, "error": self.lut - exact_lut(self.signed).astype(np.int64)}
        self._device_tables: dict[tuple, tuple[torch.Tensor, torch.Tensor, int]] = {}
        self._flat_tables: dict[tuple, torch.Tensor] = {}
        self._bag_offsets: dict[tuple, torch.Tensor] = {}
        self._triton_tables: dict[tuple, torch.Tensor] = {}

    def _limb_tables(self, device: torch.device, source: str, n_limbs: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        """For the "lut" or "error" table split into limbs: (float32 (256 w, 256 a, L) limb values,
        int64 (L, 256 w) max over a of |limb|, limb shift in bits)."""
        key = (device, source, n_limbs)
        if key not in self._device_tables:
            limbs, shift = split_limbs(torch.tensor(self._sources[source]), n_limbs)
            stacked = torch.stack(limbs)  # (L, 256 a, 256 w)
            col_max = stacked.abs().amax(dim=1)  # (L, 256 w)
            self._device_tables[key] = (
                stacked.permute(2, 1, 0).contiguous().to(device=device, dtype=torch.float32),
                col_max.to(device),
                shift,
            )
        return self._device_tables[key]

    def _limbs_needed(self, device: torch.device, source: str, w_codes: torch.Tensor) -> int | None:
        """Fewest limbs (up to MAX_LIMBS) keeping every bag's partial sums below 2^24, or None."""
        for n_limbs in range(1, MAX_LIMBS + 1):
            _, col_max, _ = self._limb_tables(device, source, n_limbs)
            sums = [col_max[limb][w_codes].to(torch.float64).sum(dim=1).max() for limb in range(n_limbs)]
            if float(max(sums)) < FLOAT32_EXACT:
                return n_limbs
        return None

    def _prepare(self, w: torch.Tensor, prepared: PreparedWeight) -> None:
        data = prepared.data
        o = w.shape[0]
        if _triton_lut.available(w.device):  # GPUs: the Triton LUT GEMM for groups == 1 (module doc of _triton_lut)
            data["lut_plan"] = _triton_lut.prepare_lut(self.lut, codes(w, self.signed), self._triton_tables)
        w_codes = codes(w, self.signed).permute(0, 2, 3, 1).reshape(o, -1)  # (O, K), k = (i, j, c) like the rows
        data["w_codes"] = w_codes
        # Whole products in one float32 limb where the layer's sums allow (no GEMM at all);
        # else the exact part as a GEMM and only the (small) error through the bags.
        if self._limbs_needed(w.device, "lut", w_codes) == 1:
            data["source"], data["n_limbs"] = "lut", 1
            return
        data["source"] = "error"
        data["exact"] = {}
        self._exact.prepare(w, data["exact"])
        if not np.any(self._sources["error"]):
            data["n_limbs"] = 0
            return
        n_limbs = self._limbs_needed(w.device, "error", w_codes)
        if n_limbs is None:  # pragma: no cover - needs |E| sums beyond 2^24 * 2^(3b): not a real 8x8 design
            raise OverflowError("error sums of this layer are too large for float32 limbs")
        data["n_limbs"] = n_limbs

    def _layer_table(self, prepared: PreparedWeight, groups: int, lo: int, hi: int) -> torch.Tensor:
        """Float32 (g K 256, L (hi - lo)): rows (group, k, a), columns (limb, output channel lo..hi of the group)."""
        data = prepared.data
        n_limbs = data["n_limbs"]
        by_weight, _, _ = self._limb_tables(prepared.device, data["source"], n_limbs)
        o, k = data["w_codes"].shape
        w_codes = data["w_codes"].view(groups, o // groups, k)[:, lo:hi]  # (g, ob, K)
        table = by_weight[w_codes]  # (g, ob, K, 256 a, L)
        return table.permute(0, 2, 3, 4, 1).contiguous().view(groups * k * 256, n_limbs * (hi - lo))

    def _conv2d(self, x, prepared, stride, dilation, groups, out_size):
        o, cg, kh, kw = prepared.shape
        data = prepared.data
        plan = data.get("lut_plan")
        if plan is not None and groups == 1:
            return _triton_lut.lut_conv2d(x, plan, self.signed, stride, dilation, out_size)
        n = x.shape[0]
        y = None
        if data["source"] == "error":
            y = self._exact.conv2d(x, data["exact"], prepared.cache, stride, dilation, groups, out_size, o)
            if data["n_limbs"] == 0:
                return y
        geometry = ((kh, kw), stride, dilation, groups, out_size)
        table_entries = groups * cg * kh * kw * 256 * data["n_limbs"] * (o // groups)
        bags = n * out_size[0] * out_size[1] * groups
        if table_entries > TABLE_CACHE_ENTRIES and bags < DIRECT_MAX_BAGS:
            cl = channels_last(codes(x, self.signed, torch.int32))
            total = self._direct(cl, prepared, geometry).to(torch.float64)
        else:
            total = self._embedding_bags(values_channels_last(x), prepared, geometry, table_entries <= TABLE_CACHE_ENTRIES)
        # (N, Ho, Wo, g, Og) -> a (N, g Og, Ho, Wo) view of the channels-last sums
        total = total.view(n, *out_size, o).permute(0, 3, 1, 2)
        if y is None:
            return total  # whole products: float32, exact under the layer's bound (or float64 limbs)
        return y.to(torch.float64).add_(total)

    def _matmul(self, a, b):
        """(G, M, K) x (G, K, N) -> (G, M, N): one int32 lookup of the whole table per product, exact integer sums.

        Neither operand is known ahead, so the per-layer tables of the conv path (``G K 256 N`` entries, built
        per call) would cost 256 / M times the products themselves; the products are read directly instead,
        ``DIRECT_CHUNK`` lookups at a time, rows (m) and columns (n) of one matrix each a contiguous run of K.
        """
        g, m, k = a.shape
        n = b.shape[2]
        device = a.device
        flat = self._flat_tables.get((device, "lut"))
        if flat is None:
            flat = torch.tensor(self._sources["lut"], dtype=torch.int32, device=device).view(-1)
            self._flat_tables[(device, "lut")] = flat
        largest = k * int(np.abs(self._sources["lut"]).max())
        sum_dtype = torch.int32 if largest < (1 << 31) else torch.int64
        rows = codes(a, self.signed, torch.int32).mul_(256)  # (G, M, K)
        cols = codes(b, self.signed, torch.int32).transpose(1, 2).contiguous()  # (G, N, K)
        out = torch.empty((g, m, n), dtype=sum_dtype, device=device)
        per_row = n * k
        step_m = max(1, min(m, DIRECT_CHUNK // max(1, per_row)))
        step_g = max(1, DIRECT_CHUNK // max(1, m * per_row)) if step_m == m else 1
        for g0 in range(0, g, step_g):
            g1 = min(g, g0 + step_g)
            for m0 in range(0, m, step_m):
                m1 = min(m, m0 + step_m)
                index = rows[g0:g1, m0:m1, None, :] + cols[g0:g1, None, :, :]  # (g', m', N, K)
                products = flat.index_select(0, index.view(-1)).view(index.shape)
                out[g0:g1, m0:m1] = products.sum(dim=3, dtype=sum_dtype)
        return out.to(torch.float32 if largest < FLOAT32_EXACT else torch.float64)

    def _embedding_bags(self, cl: torch.Tensor, prepared: PreparedWeight, geometry: tuple, cached: bool) -> torch.Tensor:
        """(N, Ho, Wo, g, Og) exact sums of the layer table's rows: float32 for one limb, else float64.

        ``cl`` holds the input's operand values, channels-last int32. Each bag is a whole
        receptive field (K rows), its row indices built in one pass per batch chunk.
        """
        (kh, kw), stride, dilation, groups, out_size = geometry
        data = prepared.data
        o, cg = prepared.shape[:2]
        og, k = o // groups, cg * kh * kw
        n_limbs = data["n_limbs"]
        shift = self._limb_tables(prepared.device, data["source"], n_limbs)[2]
        if cached:
            if ("table", groups) not in prepared.cache:
                prepared.cache[("table", groups)] = self._layer_table(prepared, groups, 0, og)
            blocks = [(0, og, prepared.cache[("table", groups)])]
        else:
            step = max(1, TABLE_BLOCK_ENTRIES // (groups * k * 256 * n_limbs))
            blocks = [(lo, min(og, lo + step), None) for lo in range(0, og, step)]
        if ("rows", groups) not in prepared.cache:
            prepared.cache[("rows", groups)] = bag_row_base((kh, kw), cg * groups, groups, offset(self.signed), cl.device)
        base = prepared.cache[("rows", groups)]
        n = cl.shape[0]
        positions = out_size[0] * out_size[1] * groups
        step_n = max(1, CHUNK_INDICES // (positions * k))
        chunks = [(start, min(n, start + step_n)) for start in range(0, n, step_n)]
        whole = len(blocks) == 1 and len(chunks) == 1
        bag_out = None if whole else torch.empty((n, *out_size, groups, n_limbs, og), dtype=torch.float32, device=cl.device)
        for lo, hi, table in blocks:
            table = self._layer_table(prepared, groups, lo, hi) if table is None else table
            for start, stop in chunks:
                rows = bag_rows(cl[start:stop], base, stride, dilation, out_size).view(-1)
                offsets = self._offsets(cl.device, (stop - start) * positions, k)
                bag = F.embedding_bag(rows, table, offsets, mode="sum")
                if whole:
                    bag_out = bag.view(n, *out_size, groups, n_limbs, og)
                else:
                    bag_out[start:stop, ..., lo:hi] = bag.view(stop - start, *out_size, groups, n_limbs, hi - lo)
        if n_limbs == 1:
            return bag_out[..., 0, :]
        total = bag_out[..., -1, :].to(torch.float64)
        for limb in range(n_limbs - 2, -1, -1):
            total = total * float(1 << shift) + bag_out[..., limb, :]
        return total

    def _offsets(self, device: torch.device, bags: int, k: int) -> torch.Tensor:
        """int32 start of every bag of ``k`` rows (cached: the same few shapes recur every batch)."""
        key = (device, bags, k)
        if key not in self._bag_offsets:
            if len(self._bag_offsets) >= 64:
                self._bag_offsets.clear()
            self._bag_offsets[key] = torch.arange(0, bags * k, k, dtype=torch.int32, device=device)
        return self._bag_offsets[key]

    def _direct(self, cl: torch.Tensor, prepared: PreparedWeight, geometry: tuple) -> torch.Tensor:
        """(N, Ho, Wo, g, Og) int64 sums, one lookup per product: for few bags and a table too big to cache."""
        (kh, kw), stride, dilation, groups, out_size = geometry
        data = prepared.data
        o, cg = prepared.shape[:2]
        og, k = o // groups, cg * kh * kw
        flat = self._flat_tables.get((cl.device, data["source"]))
        if flat is None:
            flat = torch.tensor(self._sources[data["source"]], dtype=torch.int32, device=cl.device).view(-1)
            self._flat_tables[(cl.device, data["source"])] = flat
        a = tap_rows(cl, list(range(kh * kw)), (kh, kw), stride, dilation, groups, out_size, table_rows=False)
        a = a.view(-1, groups, 1, k) * 256  # (M, g, 1, K)
        w_codes = data["w_codes"].to(torch.int32).view(1, groups, og, k)
        out = torch.empty((a.shape[0], groups, og), dtype=torch.int64, device=cl.device)
        step = max(1, DIRECT_CHUNK // (groups * og * k))
        for start in range(0, a.shape[0], step):
            index = a[start : start + step] + w_codes  # (m, g, Og, K)
            out[start : start + step] = flat.index_select(0, index.view(-1)).view(index.shape).sum(dim=3)
        return out

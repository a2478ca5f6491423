"""Emulated layer arithmetic: every fast path is bit-exact against the reference path.

The reference (``unfold`` + one LUT lookup per product, int64 sums) is the ground truth. Every
zoo design (both signednesses) and every EvoApprox table of the shared data go through the path
``auto`` picks, the gather path, and the low-rank path where the table has an exact
factorisation, on small random inputs holding the operand extremes and a padded border: 3x3
and 1x1 convolutions, stride 1 and 2, dilation, grouped and depthwise convolutions, and linear
layers. Further tests cover the float32 bounds (limb splitting, float64 fallback), the exact
factorisation (planted low-rank tables, rejection of wrong factors), the path choice and the API.
Products of two operand matrices (``kernel.matmul``: attention's Q K^T and softmax(.) V) go through the
same check for every design and table, against a numpy gather.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from multipliers._record import exact_lut, operand_values
from multipliers.families import FAMILIES, get_family
from objectives import emulation
from objectives.emulation import (
    Factorisation,
    GatherKernel,
    LowRankKernel,
    exact_factorisation,
    lowrank_plans,
    make_kernel,
)
from objectives.emulation import _factorise, _gemm, _stacked
from objectives.emulation._precision import FLOAT32_EXACT, split_limbs

from ..conftest import STRICT, shared_data_dir

ZOO = [m for family in FAMILIES for m in family.designs()]
EVO_DIRS = {"evoapprox-mul8u": False, "evoapprox-mul8s": True}


def _evo_tables() -> list[tuple[str, bool]]:
    data = shared_data_dir()
    found = []
    for folder, signed in EVO_DIRS.items():
        if (data / folder).is_dir():
            found += [(f"{folder}/{p.name}", signed) for p in sorted((data / folder).glob("*.bin"))]
    return found


EVO = _evo_tables()


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors: one thread is faster, and immune to a busy machine's oversubscription."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


def read_evo(relative: str, signed: bool) -> np.ndarray:
    path = shared_data_dir() / relative
    if signed:
        return np.roll(np.fromfile(path, "<i2").reshape(256, 256), 128, axis=(0, 1)).astype(np.int64)
    return np.fromfile(path, "<u2").reshape(256, 256).astype(np.int64)


# -- operands ------------------------------------------------------------------------------------
def random_operands(shape, signed, gen, pad=0):
    """Random operand values holding both extremes (and 0), zero-padded by ``pad`` on H and W."""
    lo, hi = (-128, 127) if signed else (0, 255)
    t = torch.randint(lo, hi + 1, shape, generator=gen)
    flat = t.view(-1)
    flat[:3] = torch.tensor([lo, hi, 0])
    flat[-2:] = torch.tensor([hi, lo])
    if pad:
        t = F.pad(t, (pad, pad, pad, pad), value=0)  # the caller pads with operand value 0
    return t


CONV_CASES = [
    # (x shape before padding, pad, weight shape, stride, dilation, groups)
    ((2, 4, 5, 5), 1, (3, 4, 3, 3), 1, 1, 1),
    ((2, 4, 6, 7), 1, (4, 2, 3, 3), 2, 1, 2),
    ((1, 4, 6, 6), 1, (8, 1, 3, 3), 1, 1, 4),  # depthwise, channel multiplier 2
    ((2, 3, 4, 4), 0, (5, 3, 1, 1), 1, 1, 1),
    ((1, 3, 7, 7), 2, (2, 3, 3, 3), 2, 2, 1),  # dilated
]
LINEAR_CASE = ((3, 20), (5, 20))
#: Products of two operand matrices (attention's Q K^T, softmax(.) V): (first, second) shapes, batch dims equal.
MATMUL_CASES = [((2, 3, 5, 7), (2, 3, 7, 4)), ((4, 1, 9), (4, 9, 2))]


def check_against_reference(lut: np.ndarray, signed: bool, methods: list[str], seed: int = 0) -> dict[str, str]:
    """Run every conv case and the linear case through ``methods``; assert bit-equality with the reference."""
    gen = torch.Generator().manual_seed(seed)
    reference = make_kernel(lut, signed, "reference")
    kernels = {}
    for m in methods:  # auto returns the kernel of the path it picks: test each kernel once
        kernel = make_kernel(lut, signed, m)
        if all(kernel is not k for k in kernels.values()):
            kernels[m] = kernel
    for x_shape, pad, w_shape, stride, dilation, groups in CONV_CASES:
        x = random_operands(x_shape, signed, gen, pad)
        w = random_operands(w_shape, signed, gen)
        want = reference.conv2d(x, reference.prepare_weight(w), stride, dilation, groups)
        for name, kernel in kernels.items():
            got = kernel.conv2d(x.float(), kernel.prepare_weight(w.float()), (stride, stride), (dilation, dilation), groups)
            assert got.dtype == torch.float64 and got.shape == want.shape
            assert torch.equal(got, want), f"{name} ({kernel.method}) conv {x_shape}/{w_shape} s{stride} g{groups}"
    x = random_operands(LINEAR_CASE[0], signed, gen)
    w = random_operands(LINEAR_CASE[1], signed, gen)
    want = reference.linear(x, reference.prepare_weight(w))
    for name, kernel in kernels.items():
        got = kernel.linear(x, kernel.prepare_weight(w))
        assert torch.equal(got, want), f"{name} ({kernel.method}) linear"
    for a_shape, b_shape in MATMUL_CASES:
        a, b = random_operands(a_shape, signed, gen), random_operands(b_shape, signed, gen)
        want = reference_matmul(lut, signed, a, b)
        assert torch.equal(reference.matmul(a, b), want), "reference matmul"
        for name, kernel in kernels.items():
            got = kernel.matmul(a.float(), b.float())
            assert got.dtype == torch.float64 and torch.equal(got, want), f"{name} ({kernel.method}) matmul {a_shape}"
    return {name: kernel.method for name, kernel in kernels.items()}


def reference_matmul(lut: np.ndarray, signed: bool, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sum_k lut[a[..., m, k], b[..., k, n]] by numpy fancy indexing (row = first operand, column = second)."""
    off = 128 if signed else 0
    ia, ib = a.numpy().astype(np.int64) + off, b.numpy().astype(np.int64) + off
    products = np.asarray(lut, dtype=np.int64)[ia[..., :, :, None], ib[..., None, :, :]]  # (..., M, K, N)
    return torch.from_numpy(products.sum(axis=-2).astype(np.float64))


def fast_methods(lut: np.ndarray, signed: bool) -> list[str]:
    methods = ["auto", "gather"]
    if lowrank_plans(lut, signed, 16):
        methods.append("lowrank")
    return methods


# -- every design --------------------------------------------------------------------------------
@pytest.mark.parametrize("design", ZOO, ids=[m.name for m in ZOO])
def test_zoo_design_fast_paths_match_reference(design):
    lut = np.asarray(design.lut)
    check_against_reference(lut, design.signed, fast_methods(lut, design.signed), seed=len(design.name))


@pytest.mark.parametrize("table", EVO, ids=[t[0].split("/")[-1] for t in EVO])
def test_evoapprox_fast_paths_match_reference(table):
    relative, signed = table
    lut = read_evo(relative, signed)
    check_against_reference(lut, signed, fast_methods(lut, signed), seed=len(relative))


def test_evoapprox_tables_are_present():
    """All 49 EvoApprox tables take part (skipped, or failed in CI, without the shared data)."""
    if not EVO:
        reason = f"EvoApprox tables not found under {shared_data_dir()}; set DSE_SHARED_DATA"
        if STRICT:
            pytest.fail(reason)
        pytest.skip(reason)
    assert len(EVO) == 49


@pytest.mark.parametrize("stacked", [True, False], ids=["stacked", "per-factor"])
@pytest.mark.parametrize("via", ["unfold", "conv"])
def test_gemm_variants_are_exact(monkeypatch, via, stacked):
    """im2col + matmul (used off CPU) and F.conv2d; factors stacked in one conv or one conv each."""
    monkeypatch.setattr(_gemm, "VIA", via)
    monkeypatch.setattr(_stacked, "STACKED", stacked)
    for name in ("trunc_u_t4", "kulkarni_s_cols4", "mitchell_s_w5"):
        design = next(m for m in ZOO if m.name == name)
        methods = ["lowrank", "gather"] if name != "mitchell_s_w5" else ["gather"]
        check_against_reference(np.asarray(design.lut), design.signed, methods, seed=3)
    lut = exact_lut(False)
    x, w = big_layer(False, 255, 255)  # limbs inside a GEMM
    kernel = make_kernel(lut, False, "exact")
    assert torch.equal(kernel.linear(x, kernel.prepare_weight(w)), x.double() @ w.double().T)


# -- float32 bounds ------------------------------------------------------------------------------
def big_layer(signed: bool, value_x: int, value_w: int, k: int = 2048):
    """A linear layer whose every product is at the extreme: partial sums far beyond 2^24."""
    gen = torch.Generator().manual_seed(1)
    lo, hi = (-128, 127) if signed else (0, 255)
    x = torch.full((3, k), value_x, dtype=torch.float32)
    w = torch.full((4, k), value_w, dtype=torch.float32)
    x[1] = torch.randint(lo, hi + 1, (k,), generator=gen).float()
    w[1] = torch.randint(lo, hi + 1, (k,), generator=gen).float()
    return x, w


@pytest.mark.parametrize("signed", [False, True])
def test_exact_path_splits_limbs_beyond_float32(signed):
    value = -128 if signed else 255
    x, w = big_layer(signed, value, value)
    kernel = make_kernel(exact_lut(signed), signed, "exact")
    prepared = kernel.prepare_weight(w)
    assert prepared.data["limbs"].shape[0] > 1 and prepared.data["dtype"] == torch.float32
    y = kernel.linear(x, prepared)
    want = (x.double() @ w.double().T)
    assert torch.equal(y, want)
    assert y[0, 0] == 2048 * value * value > FLOAT32_EXACT
    ref = make_kernel(exact_lut(signed), signed, "reference")
    assert torch.equal(y, ref.linear(x, ref.prepare_weight(w)))


def large_error_lut(signed: bool, seed: int = 5) -> np.ndarray:
    """An unstructured table with errors of up to +-30000 (in the valid output range)."""
    rng = np.random.default_rng(seed)
    lut = exact_lut(signed).astype(np.int64) + rng.integers(-30000, 30001, (256, 256))
    lo, hi = (-(1 << 16), (1 << 16) - 1) if signed else (0, (1 << 17) - 1)
    return np.clip(lut, lo, hi)


@pytest.mark.parametrize("signed", [False, True])
def test_gather_error_limbs_beyond_float32(signed):
    lut = large_error_lut(signed)
    value = -128 if signed else 255
    x, w = big_layer(signed, value, value)
    kernel = make_kernel(lut, signed, "gather")
    prepared = kernel.prepare_weight(w)
    assert prepared.data["source"] == "error" and prepared.data["n_limbs"] > 1
    ref = make_kernel(lut, signed, "reference")
    assert torch.equal(kernel.linear(x, prepared), ref.linear(x, ref.prepare_weight(w)))


def test_gather_reads_whole_products_when_they_fit():
    design = get_family("mitchell").make(True, w=5)
    kernel = make_kernel(design.lut, True, "gather")
    small = kernel.prepare_weight(torch.randint(-3, 4, (4, 8, 3, 3)))
    assert small.data["source"] == "lut"
    big = kernel.prepare_weight(torch.full((2, 2048), -128))
    assert big.data["source"] == "error"


@pytest.mark.parametrize("direct", [False, True], ids=["table-blocks", "direct"])
@pytest.mark.parametrize("big_weights", [False, True], ids=["whole-products", "exact+error"])
def test_gather_layers_too_large_to_cache(monkeypatch, direct, big_weights):
    """Uncached tables: built per call in blocks of output channels, or one lookup per product."""
    from objectives.emulation import _gather

    monkeypatch.setattr(_gather, "TABLE_CACHE_ENTRIES", 1000)
    monkeypatch.setattr(_gather, "TABLE_BLOCK_ENTRIES", 3000)  # a block of one output channel
    monkeypatch.setattr(_gather, "CHUNK_INDICES", 500)  # and several batch chunks
    monkeypatch.setattr(_gather, "DIRECT_CHUNK", 5000)
    monkeypatch.setattr(_gather, "DIRECT_MAX_BAGS", 10**9 if direct else 0)
    design = get_family("mbm").make(False, w=6)
    kernel = GatherKernel(design.lut, False)
    ref = make_kernel(design.lut, False, "reference")
    gen = torch.Generator().manual_seed(2)
    x = random_operands((3, 4, 6, 6), False, gen, pad=1)
    w = random_operands((6, 2, 3, 3), False, gen)
    if big_weights:  # whole products would pass 2^24: exact GEMM + error table
        x, w = big_layer(False, 255, 255)
        want = ref.linear(x, ref.prepare_weight(w))
        prepared = kernel.prepare_weight(w)
        assert prepared.data["source"] == "error"
        assert torch.equal(kernel.linear(x, prepared), want)
        return
    prepared = kernel.prepare_weight(w)
    assert prepared.data["source"] == "lut"
    assert torch.equal(kernel.conv2d(x, prepared, groups=2), ref.conv2d(x, ref.prepare_weight(w), groups=2))


def test_lowrank_float64_fallback_is_exact():
    """Factors too large for any float32 limb split run in float64, still exactly."""
    a = operand_values(False)
    u, v = (a + (1 << 23))[None, :], a[None, :]  # one factor just below 2^24
    lut = u.T @ v
    kernel = LowRankKernel(lut, False, Factorisation(u, v), plus_exact=False)
    x, w = big_layer(False, 255, 255)
    prepared = kernel.prepare_weight(w)
    assert prepared.data["dtype"] == torch.float64
    ref = make_kernel(lut, False, "reference")
    assert torch.equal(kernel.linear(x, prepared), ref.linear(x, ref.prepare_weight(w)))


def test_split_limbs_recombines():
    values = torch.tensor([-(1 << 20) - 5, -1, 0, 1, 12345, (1 << 21) + 3])
    for n in (1, 2, 3, 4):
        limbs, shift = split_limbs(values, n)
        total = sum(limb * (1 << (shift * i)) for i, limb in enumerate(limbs))
        assert torch.equal(total, values)
        for limb in limbs[:-1]:
            assert int(limb.min()) >= 0 and int(limb.max()) < (1 << shift)


# -- factorisation -------------------------------------------------------------------------------
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rank=st.integers(0, 6),
    magnitude=st.sampled_from([1, 3, 40, 300]),
    seed=st.integers(0, 2**32 - 1),
    plus_exact=st.booleans(),
    signed=st.booleans(),
)
def test_planted_low_rank_is_found_exactly(rank, magnitude, seed, plus_exact, signed):
    rng = np.random.default_rng(seed)
    u = rng.integers(-magnitude, magnitude + 1, (rank, 256))
    v = rng.integers(-magnitude, magnitude + 1, (rank, 256))
    # structured factors too: bits of the operand, operand residues
    if rank >= 2:
        a = np.arange(256)
        u[0] = (a >> int(rng.integers(0, 8))) & 1
        v[1] = a % int(rng.integers(2, 64))
    error = u.T @ v
    fact = exact_factorisation(error, max_rank=8)
    assert fact is not None
    assert fact.rank == np.linalg.matrix_rank(error.astype(np.float64)) <= rank
    assert np.array_equal(fact.product(), error)
    # the low-rank kernel of [exact +] this table on these factors matches the reference
    lut = error + (exact_lut(signed).astype(np.int64) if plus_exact else 0)
    gen = torch.Generator().manual_seed(seed % 1000)
    x = random_operands((2, 3, 4, 4), signed, gen, pad=1)
    w = random_operands((2, 3, 3, 3), signed, gen)
    ref = make_kernel(lut, signed, "reference")
    kernel = LowRankKernel(lut, signed, fact, plus_exact=plus_exact)
    assert torch.equal(kernel.conv2d(x, kernel.prepare_weight(w)), ref.conv2d(x, ref.prepare_weight(w)))


def test_full_rank_table_has_no_small_factorisation():
    rng = np.random.default_rng(0)
    table = rng.integers(-1000, 1000, (256, 256))
    assert exact_factorisation(table, max_rank=12) is None
    with pytest.raises(ValueError, match="no exact factorisation"):
        make_kernel(exact_lut(False) + np.abs(table), False, "lowrank")


def test_wrong_factorisation_is_rejected():
    design = get_family("trunc").make(False, t=4, corrected=False)
    error = np.asarray(design.lut, np.int64) - exact_lut(False)
    fact = exact_factorisation(error)
    assert fact is not None and fact.reproduces(error)
    bad_v = fact.v.copy()
    bad_v[0, 17] += 1
    wrong = Factorisation(fact.u, bad_v)
    assert not wrong.reproduces(error)
    with pytest.raises(ValueError, match="does not reproduce"):
        LowRankKernel(design.lut, False, wrong, plus_exact=True)
    LowRankKernel(design.lut, False, fact, plus_exact=True)  # the right one is accepted


def test_unverified_factorisation_falls_back_to_gather(monkeypatch):
    """Factors that fail the exact check are never used: auto takes the gather path."""
    design = get_family("trunc").make(True, t=4, corrected=False)
    real = _factorise._factorise_with_pivots

    def corrupted(table, rows, cols):
        found = real(table, rows, cols)
        if found is None:
            return None
        u, v = found
        v = v.copy()
        v[0, 3] += 1
        return u, v

    monkeypatch.setattr(_factorise, "_factorise_with_pivots", corrupted)
    lut = np.asarray(design.lut, np.int64)
    assert exact_factorisation(lut - exact_lut(True)) is None
    _factorise._factorise_by_key.cache_clear()
    emulation._factory._make_cached.cache_clear()
    try:
        assert lowrank_plans(lut, True) == []
        assert make_kernel(lut, True).method == "gather"
    finally:
        _factorise._factorise_by_key.cache_clear()
        emulation._factory._make_cached.cache_clear()


def test_underestimated_rank_is_recovered(monkeypatch):
    """A float elimination that stops one pivot short is caught by the exact check."""
    real = _factorise._pivots

    def short(table, max_pivots):
        rows, cols, rank = real(table, max_pivots)
        return rows, cols, max(rank - 1, 1)

    monkeypatch.setattr(_factorise, "_pivots", short)
    design = get_family("trunc").make(False, t=6, corrected=True)
    error = np.asarray(design.lut, np.int64) - exact_lut(False)
    fact = exact_factorisation(error)
    assert fact is not None and fact.rank == np.linalg.matrix_rank(error.astype(float))
    assert fact.reproduces(error)


# -- path choice ---------------------------------------------------------------------------------
@pytest.mark.parametrize("signed", [False, True])
def test_auto_picks_exact_for_the_exact_table(signed):
    kernel = make_kernel(exact_lut(signed), signed)
    assert kernel.method == "exact"
    assert make_kernel(exact_lut(signed), signed, "exact") is kernel


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("corrected", [False, True])
def test_auto_picks_lowrank_for_column_truncation(signed, corrected):
    """Truncating 2 columns: error rank 2 (3 with the constant), within the measured threshold."""
    design = get_family("trunc").make(signed, t=2, corrected=corrected)
    kernel = make_kernel(design.lut, signed)
    assert kernel.method == "lowrank"
    assert kernel.channels == 3 + corrected  # exact + rank 2 (+ 1), or the table itself at that rank
    assert kernel.channels <= emulation.AUTO_MAX_CHANNELS
    deeper = get_family("trunc").make(signed, t=6, corrected=corrected)
    expected = "lowrank" if lowrank_plans(deeper.lut, signed)[0].channels <= emulation.AUTO_MAX_CHANNELS else "gather"
    assert make_kernel(deeper.lut, signed).method == expected


@pytest.mark.parametrize("signed", [False, True])
def test_column_truncation_error_rank_is_small(signed):
    for design in get_family("trunc").designs(signed):
        error = np.asarray(design.lut, np.int64) - exact_lut(signed)
        fact = exact_factorisation(error, max_rank=9)
        assert fact is not None and fact.rank <= 9, design.name  # <= 8 columns, + 1 for a constant


def test_auto_picks_gather_for_unstructured_tables():
    design = get_family("mitchell").make(False, w=7)
    assert make_kernel(design.lut, False).method == "gather"
    assert make_kernel(large_error_lut(False), False).method == "gather"


def test_zero_table_is_rank_zero():
    lut = np.zeros((256, 256), np.int64)
    kernel = make_kernel(lut, False)
    assert kernel.method == "lowrank" and kernel.channels == 0
    x = torch.randint(0, 256, (2, 3, 5, 5))
    w = torch.randint(0, 256, (4, 3, 3, 3))
    assert torch.equal(kernel.conv2d(x, kernel.prepare_weight(w)), torch.zeros(2, 4, 3, 3, dtype=torch.float64))


# -- API -----------------------------------------------------------------------------------------
def test_integer_dtypes_are_accepted():
    design = get_family("drum").make(False, k=4)
    kernel = make_kernel(design.lut, False)
    ref = make_kernel(design.lut, False, "reference")
    gen = torch.Generator().manual_seed(4)
    x = random_operands((2, 3, 5, 5), False, gen, pad=1)
    w = random_operands((2, 3, 3, 3), False, gen)
    want = ref.conv2d(x, ref.prepare_weight(w))
    for dtype in (torch.uint8, torch.int32, torch.int64, torch.float64):
        got = kernel.conv2d(x.to(dtype), kernel.prepare_weight(w.to(dtype)))
        assert torch.equal(got, want), dtype
    signed_kernel = make_kernel(exact_lut(True), True)
    xs = torch.randint(-128, 128, (2, 6), dtype=torch.int8)
    ws = torch.randint(-128, 128, (3, 6), dtype=torch.int8)
    assert torch.equal(signed_kernel.linear(xs, signed_kernel.prepare_weight(ws)), xs.double() @ ws.double().T)


@pytest.mark.parametrize("name", ["exact_s", "trunc_u_t4", "kulkarni_s_cols4", "mitchell_s_w5", "mbm_u_w6"])
def test_unchecked_sums_match_reference_in_either_memory_format(name):
    """``sums`` (no operand check, the path's own dtype): the reference's values, NCHW or channels-last input."""
    design = next(m for m in ZOO if m.name == name)
    lut, signed = np.asarray(design.lut), design.signed
    ref = make_kernel(lut, signed, "reference")
    gen = torch.Generator().manual_seed(6)
    for method in fast_methods(lut, signed):
        kernel = make_kernel(lut, signed, method)
        for x_shape, pad, w_shape, stride, dilation, groups in CONV_CASES:
            x = random_operands(x_shape, signed, gen, pad).float()
            w = random_operands(w_shape, signed, gen)
            want = ref.conv2d(x, ref.prepare_weight(w), stride, dilation, groups)
            prepared = kernel.prepare_weight(w)
            for layout in (torch.contiguous_format, torch.channels_last):
                got = kernel.sums(x.contiguous(memory_format=layout), prepared, stride, dilation, groups)
                assert got.dtype == torch.float32  # small layers: every sum below 2^24
                assert torch.equal(got.double(), want), f"{method} {layout} {x_shape}/{w_shape}"
        x, w = big_layer(signed, -128 if signed else 255, -128 if signed else 255)
        got = kernel.linear_sums(x, kernel.prepare_weight(w))
        assert got.dtype == torch.float64  # sums beyond 2^24
        assert torch.equal(got, ref.linear(x, ref.prepare_weight(w))), method


def test_bad_arguments_are_refused():
    signed_kernel = make_kernel(exact_lut(True), True)
    unsigned_kernel = make_kernel(exact_lut(False), False)
    w = torch.zeros(2, 3, 3, 3)
    with pytest.raises(ValueError, match="unknown method"):
        make_kernel(exact_lut(True), True, "fast")
    with pytest.raises(ValueError, match="not the exact product"):
        make_kernel(get_family("drum").make(True, k=4).lut, True, "exact")
    with pytest.raises(ValueError, match="outside the signed operand range"):
        signed_kernel.prepare_weight(torch.full((2, 3), 128.0))
    with pytest.raises(ValueError, match="outside the unsigned operand range"):
        unsigned_kernel.prepare_weight(torch.full((2, 3), -1))
    with pytest.raises(ValueError, match="integer operand values"):
        signed_kernel.prepare_weight(torch.full((2, 3), 0.5))
    prepared = signed_kernel.prepare_weight(w)
    with pytest.raises(ValueError, match="not prepared by this kernel"):
        unsigned_kernel.conv2d(torch.zeros(1, 3, 5, 5), prepared)
    with pytest.raises(ValueError, match="channels"):
        signed_kernel.conv2d(torch.zeros(1, 4, 5, 5), prepared)
    with pytest.raises(ValueError, match="smaller than"):
        signed_kernel.conv2d(torch.zeros(1, 3, 2, 2), prepared)
    with pytest.raises(ValueError, match="linear"):
        signed_kernel.linear(torch.zeros(1, 27), prepared)
    with pytest.raises(ValueError, match="outside"):
        signed_kernel.conv2d(torch.full((1, 3, 5, 5), 200.0), prepared)


def test_kernels_are_cached_and_report_their_path():
    design = get_family("trunc").make(False, t=2, corrected=True)
    first = make_kernel(design.lut, False)
    assert make_kernel(np.array(design.lut), False) is first
    assert first.method in emulation.METHODS and first.method != "auto"
    assert make_kernel(design.lut, False, "gather").method == "gather"
    assert make_kernel(design.lut, False, "reference").method == "reference"


@pytest.mark.parametrize("signed", [False, True])
def test_matmul_bounds_and_api(signed):
    """Long reductions leave float32 (exact GEMM in float64, gather sums in int64 when past 2^31 ... here int32);
    operand checks, shapes and empty products."""
    top = -128 if signed else 255
    a = torch.full((1, 2, 2000), float(top))
    b = torch.full((1, 2000, 3), float(top))
    a[0, 1, ::3] = 1.0
    for name in ("exact_s" if signed else "exact_u", "mitchell_s_w5" if signed else "mitchell_u_w5",
                 "trunc_s_t6" if signed else "trunc_u_t6"):
        design = next(m for m in ZOO if m.name == name)
        want = reference_matmul(np.asarray(design.lut), signed, a, b)
        for method in fast_methods(np.asarray(design.lut), signed):
            kernel = make_kernel(design.lut, signed, method)
            sums = kernel.matmul_sums(a, b)
            assert sums.dtype == torch.float64 and torch.equal(sums, want), (name, method)
    kernel = make_kernel(exact_lut(signed), signed)
    with pytest.raises(ValueError, match="first operand holds values"):
        kernel.matmul(torch.full((1, 2, 3), 300.0), torch.zeros(1, 3, 2))
    with pytest.raises(ValueError, match="equal leading dimensions"):
        kernel.matmul(torch.zeros(2, 2, 3), torch.zeros(1, 3, 2))
    with pytest.raises(ValueError, match=r"\(\.\.\., M, K\)"):
        kernel.matmul(torch.zeros(2, 3), torch.zeros(2, 3))
    assert kernel.matmul(torch.zeros(0, 2, 3), torch.zeros(0, 3, 4)).shape == (0, 2, 4)
    small = kernel.matmul_sums(torch.ones(2, 3), torch.ones(3, 4))
    assert torch.equal(small.double(), torch.full((2, 4), 3.0))
    assert small.dtype == (torch.float32 if signed else torch.float64)  # unsigned: the centred terms in float64


def test_empty_batch():
    kernel = make_kernel(exact_lut(True), True, "gather")
    prepared = kernel.prepare_weight(torch.ones(2, 3, 3, 3))
    assert kernel.conv2d(torch.zeros(0, 3, 5, 5), prepared).shape == (0, 2, 3, 3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu_reference():
    for name in ("exact_s", "trunc_u_t4", "mitchell_s_w5", "drum_u_k4"):
        design = next(m for m in ZOO if m.name == name)
        gen = torch.Generator().manual_seed(9)
        x = random_operands((4, 8, 10, 10), design.signed, gen, pad=1)
        w = random_operands((6, 8, 3, 3), design.signed, gen)
        ref = make_kernel(design.lut, design.signed, "reference")
        want = ref.conv2d(x, ref.prepare_weight(w), stride=2)
        for method in ("auto", "gather"):
            kernel = make_kernel(design.lut, design.signed, method)
            got = kernel.conv2d(x.cuda(), kernel.prepare_weight(w.cuda()), stride=2)
            assert got.device.type == "cuda"
            assert torch.equal(got.cpu(), want), (name, method)
        a, b = random_operands((3, 2, 17, 8), design.signed, gen), random_operands((3, 2, 8, 17), design.signed, gen)
        want = reference_matmul(np.asarray(design.lut), design.signed, a, b)
        for method in ("auto", "gather"):
            got = make_kernel(design.lut, design.signed, method).matmul(a.cuda(), b.cuda())
            assert got.device.type == "cuda" and torch.equal(got.cpu(), want), (name, method, "matmul")

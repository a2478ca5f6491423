"""The GPU arithmetic, checked on the CPU: the int8 GEMM path and the Triton LUT kernel, bit-exact.

On a CUDA device the exact and low-rank paths run as int8 tensor-core GEMMs (``_int8``) and the
gather path as a Triton kernel (``_triton_lut``). ``torch._int_mm`` also runs on the CPU, and
Triton's interpreter (``TRITON_INTERPRET=1``) runs the kernel on CPU tensors, so both are tested
here bit-exact against the reference kernel on machines without a GPU (CI); tests/objectives/
test_cuda.py checks whole networks on a real GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from multipliers._record import exact_lut
from objectives.emulation import _factory, _int8, make_kernel
from objectives.emulation._precision import FLOAT32_EXACT

from ..conftest import REPO
from .test_emulation import EVO, ZOO, big_layer, check_against_reference, fast_methods, large_error_lut, read_evo


@pytest.fixture()
def int8_everywhere(monkeypatch):
    """Layers prepared from here on take the int8 GEMM on the CPU too (kernels are rebuilt)."""
    monkeypatch.setattr(_int8, "BACKEND", "int8")
    _factory._make_cached.cache_clear()
    yield
    _factory._make_cached.cache_clear()


@pytest.fixture()
def int8_calls(monkeypatch):
    """Counts the int8 GEMM's calls, to be sure the path ran."""
    calls = []
    original = _int8.int8_conv2d

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(_int8, "int8_conv2d", counted)
    return calls


def _int8_methods(lut: np.ndarray, signed: bool) -> list[str]:
    return [m for m in fast_methods(lut, signed) if m != "gather"] or ["auto"]


@pytest.mark.parametrize("design", ZOO, ids=[m.name for m in ZOO])
def test_int8_gemm_path_is_bit_exact_for_every_zoo_design(int8_everywhere, int8_calls, design):
    lut = np.asarray(design.lut)
    methods = _int8_methods(lut, design.signed)
    check_against_reference(lut, design.signed, methods, seed=len(design.name))
    if any(make_kernel(lut, design.signed, m).method != "gather" for m in methods):
        assert int8_calls, "the int8 GEMM never ran"


@pytest.mark.parametrize("table", EVO, ids=[t[0].split("/")[-1] for t in EVO])
def test_int8_gemm_path_is_bit_exact_for_every_evoapprox_table(int8_everywhere, table):
    relative, signed = table
    lut = read_evo(relative, signed)
    check_against_reference(lut, signed, _int8_methods(lut, signed), seed=len(relative))


@pytest.mark.parametrize("signed", [False, True])
def test_int8_gemm_limbs_beyond_float32(int8_everywhere, int8_calls, signed):
    """Sums beyond 2^24 (float64 recombination), and unsigned codes centred on both sides."""
    value = -128 if signed else 255
    x, w = big_layer(signed, value, value)
    kernel = make_kernel(exact_lut(signed), signed, "exact")
    prepared = kernel.prepare_weight(w)
    y = kernel.linear(x, prepared)
    assert torch.equal(y, x.double() @ w.double().T)
    assert abs(float(y[0, 0])) > FLOAT32_EXACT and int8_calls


def test_int8_plan_splits_wide_factors_into_limbs(int8_everywhere, int8_calls):
    """A factor spanning more than 255 values needs two int8 limbs on each side; the sums stay exact."""
    from objectives.emulation import Factorisation, LowRankKernel

    values = np.arange(256)
    u = (values * 37 - 4000)[None, :]  # spans 9435: two activation limbs
    v = (values * 131 - 17000)[None, :]  # two weight limbs
    lut = u.T @ v
    kernel = LowRankKernel(lut, False, Factorisation(u, v), plus_exact=False)
    gen = torch.Generator().manual_seed(4)
    x = torch.randint(0, 256, (5, 40), generator=gen).float()
    w = torch.randint(0, 256, (6, 40), generator=gen).float()
    prepared = kernel.prepare_weight(w)
    plan = prepared.data["int8"]
    assert len(plan.act_tables) == 2 and plan.v_limbs == 2
    ref = make_kernel(lut, False, "reference")
    assert torch.equal(kernel.linear(x, prepared), ref.linear(x, ref.prepare_weight(w)))


def test_int8_plan_refuses_sums_beyond_int32():
    """A layer whose column sums could reach 2^31 keeps the floating-point path (no plan)."""
    from objectives.emulation._stacked import StackedGemm

    values = np.arange(256) - 128
    gemm = StackedGemm(values[None, :], values[None, :], signed=True)
    w_codes = torch.zeros((2, 140_000, 1, 1), dtype=torch.int64)  # K * 128 * 128 passes 2^31
    w_codes[:, 1::2] = 255
    assert _int8.prepare_int8(gemm.u, gemm.v, True, w_codes) is None
    assert _int8.prepare_int8(gemm.u, gemm.v, True, w_codes[:, :100_000]) is not None


def test_cuda_auto_takes_every_factorisation_up_to_rank_16():
    """On CUDA, a table of 6 or 10 stacked channels goes low-rank (int8 GEMM), a full-rank one to the LUT kernel."""
    by_name = {m.name: m for m in ZOO}
    for name, channels in (("bam_s_hbl2_vbl7", 6), ("etm_s_m3", 10)):
        lut = np.asarray(by_name[name].lut)
        assert _factory.choose_method(lut, True) == "gather"
        assert _factory.choose_method(lut, True, torch.device("cuda", 0)) == "lowrank"
    assert _factory.choose_method(np.asarray(by_name["mitchell_s_w5"].lut), True, "cuda") == "gather"


_TRITON_SCRIPT = r"""
import json, sys
import numpy as np, torch
from multipliers.families import FAMILIES
from objectives.emulation import _triton_lut, make_kernel
import tests.objectives.test_emulation as T
calls = []
original = _triton_lut.lut_conv2d
_triton_lut.lut_conv2d = lambda *a, **k: calls.append(1) or original(*a, **k)
checked = []
names = json.loads(sys.argv[1])
for design in (m for family in FAMILIES for m in family.designs() if m.name in names):
    T.check_against_reference(np.asarray(design.lut), design.signed, ["gather"], seed=2)
    checked.append(design.name)
plans = []
for signed in (False, True):
    value = -128 if signed else 255
    x, w = T.big_layer(signed, value, value)  # sums beyond 2^24: float64 results
    lut = np.asarray(next(m for f in FAMILIES for m in f.designs(signed=signed) if m.name.startswith("mitchell")).lut)
    kernel, ref = make_kernel(lut, signed, "gather"), make_kernel(lut, signed, "reference")
    prepared = kernel.prepare_weight(w)
    plans.append(prepared.data["lut_plan"] is not None)
    assert torch.equal(kernel.linear(x, prepared), ref.linear(x, ref.prepare_weight(w))), signed
    wide = T.large_error_lut(signed)  # entries spanning more than 16 bits: a 32-bit table
    kernel, ref = make_kernel(wide, signed, "gather"), make_kernel(wide, signed, "reference")
    prepared = kernel.prepare_weight(w)
    plans.append(prepared.data["lut_plan"].table.dtype == torch.int32)
    assert torch.equal(kernel.linear(x, prepared), ref.linear(x, ref.prepare_weight(w))), ("wide", signed)
# the int8 GEMM as Triton's implicit-GEMM convolution, and whole int8 layers fused (quantise, GEMM, requantise)
from objectives.emulation import _factory, _int8, _triton_int8
from objectives.quantize import quantize
from torch.utils.data import TensorDataset
torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 16, 3, stride=2, padding=1, dilation=2),
    torch.nn.ReLU(), torch.nn.Conv2d(16, 8, 1), torch.nn.Flatten(), torch.nn.Linear(8 * 4 * 4, 10)).eval()
calib = TensorDataset(torch.randn(32, 3, 9, 9), torch.zeros(32, dtype=torch.long))
net = quantize(model, calib, (3, 9, 9), "int8")
x = torch.randn(3, 3, 9, 9)
fused_names = ["exact_s", "optrunc_s_k2_kw3", "roba_s"]
unfused_names = ["drum_s_k4", "kulkarni_s_cols4"]
want = {}
for name in fused_names + unfused_names:
    net.set_assignment({layer: name for layer in net.layers})
    want[name] = net(x)
_int8.BACKEND = "int8"
_factory._make_cached.cache_clear()
fused, implicit = [], []
original_fused, original_implicit = _int8.fused_forward, _triton_int8.implicit_int_mm
_int8.fused_forward = lambda *a, **k: (lambda out: fused.append(out is not None) or out)(original_fused(*a, **k))
_triton_int8.implicit_int_mm = lambda *a, **k: implicit.append(1) or original_implicit(*a, **k)
for name in fused_names + unfused_names:
    net.set_assignment({layer: name for layer in net.layers})
    assert torch.equal(net(x), want[name]), name
    checked.append(name)
print(json.dumps({"checked": checked, "calls": len(calls), "plans": plans, "fused": sum(fused), "implicit": len(implicit)}))
"""


def test_triton_kernels_are_bit_exact_in_the_interpreter():
    """The Triton kernels on CPU tensors (their interpreter). The LUT kernel against the reference kernel:
    full-rank and low-rank tables, every conv case (grouped ones take the bag path), linear layers, int32 sums
    beyond 2^24. The int8 implicit-GEMM convolution and the fused int8 layer (quantise, pad, map, GEMM,
    requantise in two kernels) against the CPU's logits: padding, stride, dilation, 1x1 and linear layers."""
    pytest.importorskip("triton", reason="this torch build ships no Triton (CPU-only wheels)")
    names = ["mitchell_s_w5", "mbm_u_w6", "etm_u_m3", "trunc_s_t4", "exact_u"]
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, "-c", _TRITON_SCRIPT, json.dumps(names)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    fused, unfused = ["exact_s", "optrunc_s_k2_kw3", "roba_s"], ["drum_s_k4", "kulkarni_s_cols4"]
    assert sorted(result["checked"]) == sorted(names + fused + unfused)
    assert result["calls"] >= 4 * len(names)  # four of the five conv cases and the linear case ran in Triton
    assert all(result["plans"])
    assert result["fused"] == 4 * len(fused)  # every layer of the fusable designs ran fused
    assert result["implicit"] >= 4 * len(unfused)  # the others through the implicit-GEMM kernel


def test_quantized_network_to_cpu_is_a_no_op_and_cuda_is_refused_without_it(digits_nets):
    from objectives.device import DeviceError

    net = digits_nets["int8"]
    assert net.device == torch.device("cpu")
    assert net.to("cpu") is net
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA"):
            net.to("cuda")
        assert net.device == torch.device("cpu")


def test_resolve_device():
    from objectives.device import DeviceError, resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == (torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu"))
    assert resolve_device(None) == resolve_device("auto")
    for bad in ("gpu", "cuda:x", "cpu:1", "auto:0", ""):
        if bad == "":
            continue
        with pytest.raises(DeviceError, match="unknown device"):
            resolve_device(bad)
    if not torch.cuda.is_available():
        for missing in ("cuda", "cuda:3"):
            with pytest.raises(DeviceError, match="CUDA"):
                resolve_device(missing)


def test_resolve_device_names_the_missing_gpu(monkeypatch):
    from objectives.device import DeviceError, resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(DeviceError, match=r"has 2 CUDA device\(s\).*cuda:0, cuda:1"):
        resolve_device("cuda:3")

"""On a CUDA GPU, every network gives exactly the CPU's logits: every design, path, scheme and configuration.

The CPU paths are bit-exact against the reference kernel (test_emulation.py, test_emulated_network.py),
so comparing the GPU's logits with the CPU's compares them with the LUT itself. Covered: every
zoo design and every EvoApprox table, through every kernel path that takes it (``auto``, which on
CUDA means the int8 tensor-core GEMM or the Triton LUT kernel, and ``exact``/``lowrank``/``gather``/
``reference`` by name), int8 and uint8, with each compensation mode and with tuned weights; the
published ResNet-20 on CIFAR-10 images; a network moved back and forth; and evaluate()'s per-image
hits. These tests skip on machines without CUDA (CI has none); the closing note of the GPU work
records a run on an H200.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (these tests need a GPU)")

from .test_emulation import EVO_DIRS, fast_methods  # noqa: E402


def _designs(signed: bool, shared: bool = True) -> list:
    """Every zoo design of one signedness and, when the shared data is there, every EvoApprox table."""
    from multipliers import builtin_designs
    from multipliers.importing import import_designs

    from ..conftest import shared_data_dir

    found = [m for m in builtin_designs() if m.signed == signed]
    for folder, folder_signed in EVO_DIRS.items():
        path = shared_data_dir() / folder
        if shared and folder_signed == signed and path.is_dir():
            found += import_designs(path)
    return found


def _images(data, n: int) -> torch.Tensor:
    return torch.stack([data.evaluation[i][0] for i in np.linspace(0, len(data.evaluation) - 1, n).astype(int)])


@pytest.fixture(scope="module")
def digits_pairs(digits):
    """(CPU net, CUDA net) of the quantised digits CNN per scheme: quantised once, one copy moved."""
    import copy

    from objectives.quantize import quantize

    network, data = digits
    pairs = {}
    for scheme in ("int8", "uint8"):
        cpu = quantize(network.model, data.calibration, network.input_shape, scheme)
        cuda = copy.deepcopy(cpu).to("cuda")
        assert cuda.device.type == "cuda" and cpu.device.type == "cpu"
        pairs[scheme] = (cpu, cuda)
    return pairs


def _assert_same(cpu_net, cuda_net, mapping, x, what, **kwargs) -> None:
    cpu_net.set_assignment(mapping, **kwargs)
    want = cpu_net(x)
    cuda_net.set_assignment(mapping, **kwargs)
    got = cuda_net(x)
    assert got.device.type == "cuda"
    assert torch.equal(got.cpu(), want), what


@pytest.mark.parametrize("scheme", ["int8", "uint8"])
def test_every_design_and_path_gives_the_cpu_logits(digits, digits_pairs, scheme):
    _, data = digits
    cpu, cuda = digits_pairs[scheme]
    x = _images(data, 96)
    designs = _designs(scheme == "int8")
    assert len(designs) >= 40
    paths_seen = set()
    for multiplier in designs:
        mapping = {layer: multiplier for layer in cpu.layers}
        cpu.set_assignment(mapping)
        want = cpu(x)
        lut = np.asarray(multiplier.lut)
        methods = fast_methods(lut, multiplier.signed) + ["reference"]
        if multiplier.is_exact:
            methods.append("exact")
        for method in methods:
            cuda.set_assignment(mapping, method=method)
            assert torch.equal(cuda(x).cpu(), want), (multiplier.name, method)
            for name in cuda.layers:
                prepared = cuda.layer(name).arithmetic.prepared
                paths_seen.add((prepared.method, "int8" in prepared.data and prepared.data["int8"] is not None,
                                prepared.data.get("lut_plan") is not None))
    cpu.reset()
    cuda.reset()
    assert ("lowrank", True, False) in paths_seen and ("exact", True, False) in paths_seen  # the int8 GEMM ran
    assert ("gather", False, True) in paths_seen  # the Triton LUT kernel ran


@pytest.mark.parametrize("scheme", ["int8", "uint8"])
def test_compensation_and_weight_tuning_give_the_cpu_logits(digits, digits_pairs, scheme):
    _, data = digits
    cpu, cuda = digits_pairs[scheme]
    x = _images(data, 96)
    s = "s" if scheme == "int8" else "u"
    picks = [f"mitchell_{s}_w5", f"drum_{s}_k4", f"trunc_{s}_t4", f"perf_{s}_s0_m3", f"etm_{s}_m3"]
    try:
        for tuned in (False, True):
            cpu.weight_tuning = cuda.weight_tuning = tuned
            for mode in ("none", "bias", "affine", "threshold"):
                for design in picks:
                    mapping = {layer: design for layer in cpu.layers}
                    _assert_same(cpu, cuda, mapping, x, (design, mode, tuned), compensation=mode)
                    for name in cpu.layers:  # the compensation itself is the same to the bit
                        assert torch.equal(cuda.layer(name).requant_bias.cpu(), cpu.layer(name).requant_bias)
                        assert torch.equal(cuda.layer(name).requant_scale.cpu(), cpu.layer(name).requant_scale)
            mixed = {layer: picks[i % len(picks)] for i, layer in enumerate(cpu.layers)}
            modes = {layer: ("none", "bias", "affine")[i % 3] for i, layer in enumerate(cpu.layers)}
            _assert_same(cpu, cuda, mixed, x, ("mixed", tuned), compensation=modes)
    finally:
        cpu.weight_tuning = cuda.weight_tuning = False
        cpu.reset()
        cuda.reset()


@pytest.mark.parametrize("scheme", ["int8", "uint8"])
def test_resnet20_gives_the_cpu_logits_and_hits(resnet20, scheme):
    """The published ResNet-20: each family's representative, the affine compensation with tuned weights,
    a network quantised for CUDA directly, evaluate()'s accuracy and per-image hits, and the network moved back."""
    from objectives.evaluate import evaluate
    from objectives.quantize import quantize

    network, data = resnet20
    cpu = quantize(network.model, data.calibration, network.input_shape, scheme)
    cuda = quantize(network.model, data.calibration, network.input_shape, scheme, device="cuda")
    x = _images(data, 32)
    s = "s" if scheme == "int8" else "u"
    cycle = [f"drum_{s}_k4", f"mitchell_{s}_w7", f"trunc_{s}_t8", f"exact_{s}", f"bam_{s}_hbl2_vbl7",
             f"etm_{s}_m3", f"mbm_{s}_w6", f"kulkarni_{s}_cols4", f"roba_{s}", f"optrunc_{s}_k2_kw3"]
    for design in cycle:
        _assert_same(cpu, cuda, {layer: design for layer in cpu.layers}, x, design)
    mixed = {layer: cycle[i % len(cycle)] for i, layer in enumerate(cpu.layers)}
    cpu.weight_tuning = cuda.weight_tuning = True
    _assert_same(cpu, cuda, mixed, x, "mixed, affine, tuned", compensation="affine")
    want, got = evaluate(cpu, data, limit=300, progress=False), evaluate(cuda, data, limit=300, progress=False)
    assert (got.top1, got.top5, got.hits) == (want.top1, want.top5, want.hits)
    cuda.to("cpu")  # and back: the same network again
    assert cuda.device.type == "cpu"
    assert torch.equal(cuda(x), cpu(x))


def test_injection_gives_the_cpu_logits(digits, digits_pairs):
    from objectives.injection import ErrorSpec

    _, data = digits
    cpu, cuda = digits_pairs["int8"]
    x = _images(data, 64)
    spec = {layer: ErrorSpec(0.01, 0.05, relative=True) for layer in cpu.layers}
    try:
        cpu.set_injection(spec, seed=3)
        cuda.set_injection(spec, seed=3)
        assert torch.equal(cuda(x).cpu(), cpu(x))
    finally:
        cpu.reset()
        cuda.reset()


def test_surrogate_is_the_same_on_cuda(digits):
    """Operand statistics, sensitivities and injection calibration: the surrogate's tables are identical."""
    from objectives.distortion.operands import collect_operands
    from objectives.distortion.sensitivity import calibrate_by_injection, linearised_sensitivities
    from objectives.quantize import quantize

    network, data = digits
    nets = [quantize(network.model, data.calibration, network.input_shape, "int8", device=d) for d in ("cpu", "cuda")]
    ops = [collect_operands(net, seed=0) for net in nets]
    for name in ops[0]:
        for a, b in zip(ops[0][name], ops[1][name]):
            assert np.array_equal(a.column_histograms, b.column_histograms)
            assert a.output_energy == b.output_energy
            assert np.array_equal(a.feature_cov, b.feature_cov)
    sens = [linearised_sensitivities(net) for net in nets]
    energy = {name: sum(op.output_energy for op in ops[0][name]) for name in ops[0]}
    for net, s in zip(nets, sens):
        calibrate_by_injection(net, s, energy, seed=1)
    for name in sens[0]:
        assert np.array_equal(sens[0][name].gram_bias, sens[1][name].gram_bias)
        assert sens[0][name].factor == sens[1][name].factor


@pytest.mark.parametrize("scheme", ["int8", "uint8"])
def test_transformer_layers_give_the_cpu_sums(scheme):
    """A transformer block (attention's products of two activations as emulated GEMMs): on the same operand codes,
    every layer's exact integer sums on CUDA are the CPU's, for every design through every path; and the surrogate's
    product statistics are identical."""
    import copy

    from objectives.data import digits_split
    from objectives.distortion.operands import collect_operands
    from objectives.kernels import get_kernel
    from objectives.quantize import quantize

    from .test_quantized_attention import MATMULS, TinyTransformer

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = TinyTransformer().eval()
    data = digits_split(64)
    cpu = quantize(model, data.calibration, (1, 8, 8), scheme)
    cuda = copy.deepcopy(cpu).to("cuda")
    names = list(cpu.layers)
    with cpu.capture(names) as records:
        cpu(_images(data, 32))
    codes = {name: cpu.layer(name).join_codes(records[name]) for name in names}
    on_cuda = {name: (type(c)(*(t.cuda() for t in c)) if isinstance(c, tuple) else c.cuda()) for name, c in codes.items()}
    for multiplier in _designs(scheme == "int8"):
        for method in fast_methods(np.asarray(multiplier.lut), multiplier.signed):
            for name in names:
                products = cpu.layers[name].kind == "matmul"
                want = cpu.layer(name).products(
                    codes[name], cpu.layer(name).arithmetic_for(get_kernel(multiplier.lut, multiplier.signed, method,
                                                                           "cpu", products)))
                got = cuda.layer(name).products(
                    on_cuda[name], cuda.layer(name).arithmetic_for(get_kernel(multiplier.lut, multiplier.signed, method,
                                                                              cuda.device, products)))
                assert got.device.type == "cuda" and torch.equal(got.cpu(), want), (multiplier.name, method, name)
    ops = [collect_operands(net, seed=0, progress=False) for net in (cpu, cuda)]
    for name in MATMULS:
        a, b = ops[0][name][0], ops[1][name][0]
        assert np.array_equal(a.pairs, b.pairs)


@pytest.mark.xfail(strict=False, reason="softmax, LayerNorm and GELU between the GEMMs are float operations of each "
                   "device's own: on an H200 one design's logits differed from the CPU's (README, On a GPU)")
def test_transformer_logits_on_cuda():
    import copy

    from objectives.data import digits_split
    from objectives.quantize import quantize

    from .test_quantized_attention import TinyTransformer

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = TinyTransformer().eval()
    data = digits_split(64)
    cpu = quantize(model, data.calibration, (1, 8, 8), "int8")
    cuda = copy.deepcopy(cpu).to("cuda")
    x = _images(data, 64)
    for design in ("exact_s", "trunc_s_t6", "bam_s_hbl1_vbl3", "mitchell_s_w5", "drum_s_k4"):
        _assert_same(cpu, cuda, {layer: design for layer in cpu.layers}, x, design)

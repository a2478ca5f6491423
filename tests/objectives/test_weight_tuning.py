"""Weight tuning: the map's objective, the tuned network's bit-exact behaviour, compensation and surrogate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from multipliers import Multiplier, exact_lut, get, operand_values
from objectives.compensation import expected_error
from objectives.kernels import get_kernel
from objectives.qlayers import Arithmetic
from objectives.weight_tuning import apply_weight_map, tuned_error_table, tuned_weight_map


def _moments(lut: np.ndarray, signed: bool, p: np.ndarray, weight_map: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per original weight, the mean and mean square of the tuned error under p(a)."""
    error = tuned_error_table(lut, signed, weight_map).astype(np.float64)
    return p @ error, p @ error**2


def _activations(signed: bool, seed: int = 0) -> np.ndarray:
    """Counts shaped like post-ReLU codes: many zeros, a decaying tail of small positive values."""
    rng = np.random.default_rng(seed)
    counts = np.zeros(256)
    start = 128 if signed else 0
    counts[start : start + 100] = np.exp(-np.arange(100) / 12.0) * rng.uniform(0.5, 1.5, 100)
    counts[start] += 5.0
    return counts


@pytest.mark.parametrize("signed", [True, False])
def test_exact_design_keeps_every_weight(signed):
    identity = np.arange(256)
    for counts in (_activations(signed), np.zeros(256)):
        assert np.array_equal(tuned_weight_map(exact_lut(signed), signed, counts), identity)
        assert np.array_equal(tuned_weight_map(exact_lut(signed), signed, counts, np.ones(256), k=64), identity)


@pytest.mark.parametrize("signed", [True, False])
def test_a_design_that_shifts_the_weight_is_undone(signed):
    # column j of this table multiplies by the weight value of column j + 3: tuning stores w - 3 for w
    exact = exact_lut(signed)
    lut = exact[:, np.minimum(np.arange(256) + 3, 255)]
    weight_map = tuned_weight_map(lut, signed, _activations(signed))
    assert np.array_equal(weight_map[3:253], np.arange(0, 250))
    assert not tuned_error_table(lut, signed, weight_map)[:, 3:253].any()


@pytest.mark.parametrize("name", ["perf_s_s0_m3", "optrunc_s_k2", "trunc_s_t8", "etm_s_m3", "mitchell_s_w7"])
def test_no_weight_gets_worse_and_the_layer_objective_falls(name):
    m = get(name)
    counts = _activations(True)
    p = 0.9999 * counts / counts.sum() + 1e-4 / 256  # as the tuning weighs the activations
    identity = np.arange(256)
    _, untuned = _moments(m.lut, True, p, identity)
    mse_map = tuned_weight_map(m.lut, True, counts)
    _, tuned = _moments(m.lut, True, p, mse_map)
    assert np.all(tuned <= untuned + 1e-6 * np.maximum(untuned, 1.0))
    assert tuned.sum() < 0.9 * untuned.sum() or name == "mitchell_s_w7"
    # with the bias term of a K-deep accumulation the layer's objective is lower still
    rng = np.random.default_rng(1)
    q = np.zeros(256)
    q[128 - 60 : 128 + 61] = np.exp(-np.abs(np.arange(-60, 61)) / 15.0) * rng.uniform(0.5, 1.5, 121)
    q /= q.sum()
    k = 144

    def objective(weight_map):
        first, second = _moments(m.lut, True, p, weight_map)
        return q @ second + (k - 1) * (q @ first) ** 2

    k_map = tuned_weight_map(m.lut, True, counts, q, k)
    assert objective(k_map) <= objective(mse_map) + 1e-9 * objective(mse_map)
    assert objective(k_map) <= objective(identity)
    # compensated (the mean error is removed anyway): no weight's error variance gets worse
    first, second = _moments(m.lut, True, p, identity)
    first_c, second_c = _moments(m.lut, True, p, tuned_weight_map(m.lut, True, counts, q, k, compensated=True))
    variance, variance_c = second - first**2, second_c - first_c**2
    assert np.all(variance_c <= variance + 1e-6 * np.maximum(variance, 1.0))


def test_apply_weight_map_replaces_values():
    weight_map = np.arange(256)
    weight_map[128 + 5] = 128 + 8
    codes = np.array([[5, -3], [0, 5]])
    assert apply_weight_map(codes, weight_map, True).tolist() == [[8, -3], [0, 8]]
    unsigned = np.arange(256)
    unsigned[200] = 4
    assert apply_weight_map(np.array([200, 7]), unsigned, False).tolist() == [4, 7]


@pytest.fixture()
def tuned(digits_net):
    """The digits network with weight tuning on (off again afterwards)."""
    digits_net.weight_tuning = True
    yield digits_net
    digits_net.weight_tuning = False


@pytest.mark.parametrize("digits_net", ["int8", "uint8"], indirect=True)
def test_tuned_layer_is_bit_exact_against_the_lut_with_remapped_weights(tuned, digits):
    _, data = digits
    signed = tuned.scheme == "int8"
    design = get("perf_s_s0_m3" if signed else "trunc_u_t8")
    x = data.evaluation.tensors[0][:32]
    for name in tuned.layers:
        weight_map = tuned.weight_map(name, design)
        assert weight_map is not None and (weight_map != np.arange(256)).any()
        out = tuned.gemm_outputs(name, x, design)
        layer = tuned.layer(name)
        # the reference kernel over the table lut[:, map] with the layer's original weights
        effective = Arithmetic(get_kernel(design.lut[:, weight_map], signed, "reference"), layer.weight_codes)
        assert torch.equal(out.emulated, layer.products(out.codes, effective))
    assert tuned.weight_map("conv1", get("exact_s" if signed else "exact_u")) is None


@pytest.mark.parametrize("digits_net", ["int8"], indirect=True)
def test_tuned_weights_reach_the_network_and_its_compensation(tuned, digits):
    from objectives.evaluate import evaluate

    _, data = digits
    design = get("perf_s_s0_m3")
    layers = list(tuned.layers)
    tuned.set_assignment({name: design for name in layers}, compensation="bias")
    for name in layers:  # the bias compensation removes the tuned design's expected error
        layer = tuned.layer(name)
        expected = expected_error(
            tuned_error_table(design.lut, True, tuned.weight_map(name, design)),
            tuned.histograms[name].activation_per_channel, layer.lut_index(layer.weight_codes).numpy(),
            layer.groups if isinstance(layer, torch.nn.Conv2d) else 1,
        )
        assert np.allclose(layer.offset.numpy(), -expected)
        tuned_weights = apply_weight_map(layer.weight_codes.numpy(), tuned.weight_map(name, design), True)
        assert np.array_equal(tuned.operand_weights(name, design).numpy(), tuned_weights)
    # uncompensated, perforating the weights' low bits costs the digits network about 28 points; tuned, about 0.2
    tuned.set_assignment({name: design for name in layers})
    with_tuning = evaluate(tuned, data, progress=False).top1
    tuned.weight_tuning = False
    tuned.set_assignment({name: design for name in layers})
    without = evaluate(tuned, data, progress=False).top1
    assert with_tuning > without + 10.0


@pytest.mark.parametrize("digits_net", ["int8"], indirect=True)
def test_surrogate_sees_the_tuned_errors(tuned):
    from objectives.distortion.surrogate import NetworkSurrogate, design_set_key, tuning_key

    designs = [get("exact_s"), get("perf_s_s0_m3"), get("optrunc_s_k2")]
    with_tuning = NetworkSurrogate.build(tuned, designs, "bias", progress=False)
    tuned.weight_tuning = False
    without = NetworkSurrogate.build(tuned, designs, "bias", progress=False)
    assert design_set_key(designs, "bias", tuning_key(tuned)) != design_set_key(designs, "bias", "tuned weights")
    for j in (1, 2):  # less predicted distortion in every layer, most where the weights' low bits are perforated
        assert np.all(with_tuning.distortion["weight-aware"][:, j] <= 1.01 * without.distortion["weight-aware"][:, j])
    assert with_tuning.distortion["weight-aware"][:, 1].sum() < 0.5 * without.distortion["weight-aware"][:, 1].sum()
    assert np.all(with_tuning.table.contributions[:, 0] == 0)


def test_tuned_operands_are_in_the_operand_range():
    for name, signed in (("perf_s_s0_m3", True), ("trunc_u_t8", False)):
        weight_map = tuned_weight_map(get(name).lut, signed, _activations(signed))
        values = operand_values(signed)
        assert weight_map.min() >= 0 and weight_map.max() <= 255
        assert set(values[weight_map]) <= set(values)
        # a made-up design: exact for even weights only; odd weights go to a neighbour
        lut = exact_lut(signed).copy()
        lut[:, 1::2] = lut[:, 0::2]
        m = Multiplier("even_only", "test", signed, lut)
        weight_map = tuned_weight_map(m.lut, signed, _activations(signed))
        assert np.all(np.abs(values[weight_map] - values) <= 1)

"""Compensation: bias and affine corrections reduce a biased design's distortion on a layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from objectives.compensation import AffineFit, expected_error


def _distortion(net, layer_name: str, x: torch.Tensor) -> float:
    layer = net.layer(layer_name)
    out = net.gemm_outputs(layer_name, x)
    zero = layer.zero_point_terms(out.codes) if net.scheme == "uint8" else 0.0
    exact = out.exact - zero
    shape = (1, -1, 1, 1)
    corrected = (out.emulated - zero) * layer.gain.view(shape) + layer.offset.view(shape)
    return float((corrected - exact).norm() / exact.norm())


@pytest.mark.parametrize("digits_net", ["int8", "uint8"], indirect=True)
def test_compensation_reduces_distortion_of_column_truncation(digits_net, digits):
    _, data = digits
    x = data.evaluation.tensors[0][:64]  # held-out images, not the calibration ones
    design = "trunc_s_t8" if digits_net.scheme == "int8" else "trunc_u_t8"
    found = {}
    for mode in ("none", "bias", "affine"):
        digits_net.set_assignment({"conv2": design}, compensation=mode)
        found[mode] = _distortion(digits_net, "conv2", x)
    assert found["bias"] < 0.5 * found["none"]
    assert found["affine"] < found["bias"]


def test_expected_error_is_the_mean_accumulated_error():
    rng = np.random.default_rng(0)
    errors = rng.integers(-50, 50, size=(256, 256))
    hist = rng.integers(0, 10, size=(3, 256))
    weights = rng.integers(0, 256, size=(4, 3, 2, 2))
    p = hist / hist.sum(1, keepdims=True)
    expected = np.array([sum((p[c] * errors[:, weights[o, c, i, j]]).sum() for c in range(3) for i in range(2) for j in range(2)) for o in range(4)])
    np.testing.assert_allclose(expected_error(errors, hist, weights), expected)


def test_affine_fit_recovers_a_linear_relation():
    fit = AffineFit()
    torch.manual_seed(0)
    for _ in range(3):
        exact = torch.randn(50, 2, 4, 4, dtype=torch.float64) * 1e4 + 3e5
        gain = torch.tensor([0.9, 1.2], dtype=torch.float64).view(1, 2, 1, 1)
        approx = exact * gain - 700.0
        fit.update(approx, exact)
    g, h = fit.result()
    torch.testing.assert_close(g, 1 / torch.tensor([0.9, 1.2], dtype=torch.float64))
    torch.testing.assert_close(h, 700.0 / torch.tensor([0.9, 1.2], dtype=torch.float64), rtol=1e-6, atol=1e-3)


@pytest.mark.parametrize("digits_net", ["int8"], indirect=True)
def test_statistics_see_the_exact_network_whatever_is_assigned(digits_net, digits):
    _, data = digits
    x = data.evaluation.tensors[0][:16]
    reference = digits_net.gemm_outputs("conv3", x)
    digits_net.set_assignment({name: "trunc_s_t8" for name in digits_net.layers}, compensation="bias")
    seen = digits_net.gemm_outputs("conv3", x)
    assert torch.equal(seen.codes, reference.codes) and torch.equal(seen.exact, reference.exact)
    assert not torch.equal(seen.emulated, reference.emulated)
    assert torch.all(digits_net.layer("conv3").offset != 0)  # the compensation is back in place


def test_affine_fit_corrects_scale_without_shrinking_noise():
    """With noise on top of a scale error, the correction undoes the scale (E[corrected | C] = C)."""
    fit = AffineFit()
    gen = torch.Generator().manual_seed(0)
    exact = torch.randn(2000, 1, 8, 8, dtype=torch.float64, generator=gen) * 1e3
    approx = 0.9 * exact + 50.0 + torch.randn(exact.shape, dtype=torch.float64, generator=gen) * 1e3
    fit.update(approx, exact)
    gain, offset = fit.result()
    assert abs(float(gain) - 1 / 0.9) < 0.01
    assert abs(float(offset) + 50.0 / 0.9) < 5.0


def test_threshold_offset_removes_the_error_at_the_zero_crossing():
    """``threshold``: minus the regression's error at the given exact value; a constant error is just removed."""
    fit = AffineFit()
    gen = torch.Generator().manual_seed(1)
    exact = torch.randn(500, 2, 4, 4, dtype=torch.float64, generator=gen) * 1e3 + 2e3
    scale_error = torch.tensor([0.9, 1.0], dtype=torch.float64).view(1, 2, 1, 1)
    fit.update(exact * scale_error + 50.0, exact)  # channel 0: dC = -0.1 C + 50; channel 1: dC = 50
    threshold = torch.tensor([-300.0, 700.0], dtype=torch.float64)
    offset = fit.threshold_offset(threshold)
    torch.testing.assert_close(offset, torch.tensor([-(0.1 * 300.0 + 50.0), -50.0], dtype=torch.float64))


@pytest.mark.parametrize("digits_net", ["int8", "uint8"], indirect=True)
def test_threshold_mode_is_an_offset_that_leaves_constant_errors_to_bias(digits_net, digits):
    """Gain 1 and an offset per channel; for column truncation (error nearly independent of C) close to bias."""
    _, data = digits
    x = data.evaluation.tensors[0][:64]
    design = "trunc_s_t8" if digits_net.scheme == "int8" else "trunc_u_t8"
    found = {}
    for mode in ("none", "bias", "threshold"):
        digits_net.set_assignment({"conv2": design}, compensation=mode)
        found[mode] = _distortion(digits_net, "conv2", x)
    layer = digits_net.layer("conv2")
    assert torch.all(layer.gain == 1) and torch.all(torch.isfinite(layer.offset)) and torch.any(layer.offset != 0)
    digits_net.reset()
    assert found["threshold"] < 0.5 * found["none"]


def test_constants_fitted_for_several_layers_at_once_equal_those_fitted_one_layer_at_a_time(digits):
    """fit_compensation fits every layer of a mapping in one calibration pass; each layer's fit sees the exact
    network, so its gain and offset are bit-identical to a fit of that layer alone, and assigning any of them later
    runs no further pass."""
    from objectives.errors import AssignmentError
    from objectives.quantize import quantize

    network, data = digits
    design = {"conv1": "trunc_s_t8", "conv2": "bam_s_hbl4_vbl10", "conv3": "trunc_s_t10"}
    together = quantize(network.model, data.calibration, network.input_shape, "int8")
    alone = quantize(network.model, data.calibration, network.input_shape, "int8")
    passes = []
    together._run_calibration = lambda what, run=together._run_calibration: (passes.append(what), run(what))[1]
    together.fit_compensation(design, "affine")
    assert passes == ["affine fit"]
    for layer, name in design.items():
        alone.set_assignment({layer: name}, compensation="affine")
        together.set_assignment({layer: name}, compensation="affine")
        for attribute in ("gain", "offset"):
            assert torch.equal(getattr(together.layer(layer), attribute), getattr(alone.layer(layer), attribute))
        assert not torch.all(together.layer(layer).gain == 1)
    assert passes == ["affine fit"]  # every later assignment reused the constants
    together.fit_compensation(design, "bias")  # nothing to fit for bias
    assert passes == ["affine fit"]
    with pytest.raises(AssignmentError, match="unknown compensation"):
        together.fit_compensation(design, "gain")

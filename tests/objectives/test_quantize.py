"""Quantisation: BN folding, accuracy of the exact int8/uint8 networks, zero points and padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from objectives.evaluate import evaluate
from objectives.folding import fold_batchnorm
from objectives.qlayers import LayerQuant, QuantConv2d, QuantLinear


def test_batchnorm_folding_preserves_float_outputs(digits, resnet20):
    for network, data in (digits, resnet20):
        x = torch.stack([data.calibration[i][0] for i in range(16)])
        folded = fold_batchnorm(network.model)
        assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
        assert any(isinstance(m, nn.BatchNorm2d) for m in network.model.modules())  # original untouched
        with torch.no_grad():
            torch.testing.assert_close(folded(x), network.model(x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("scheme", ["int8", "uint8"])
def test_exact_quantised_digits_stays_close_to_float(digits, digits_nets, scheme):
    network, data = digits
    float_acc = evaluate(network.model, data, progress=False).top1
    quant_acc = evaluate(digits_nets[scheme], data, progress=False).top1
    assert abs(quant_acc - float_acc) <= 1.0


def test_exact_int8_resnet20_stays_close_to_float(resnet20, resnet20_nets):
    network, data = resnet20
    x = torch.stack([data.calibration[i][0] for i in range(32)])
    with torch.no_grad():
        ref = network.model(x)
    for net in resnet20_nets.values():
        out = net(x)
        agree = (out.argmax(1) == ref.argmax(1)).float().mean()
        assert agree >= 0.9
        assert float((out - ref).norm() / ref.norm()) < 0.1


def _random_conv(scheme: str, groups: int = 1, padding: int = 1, stride: int = 1) -> QuantConv2d:
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, padding=padding, stride=stride, groups=groups, bias=True)
    from objectives.calibration import weight_quant

    w_scale, w_zero = weight_quant(conv.weight, scheme)
    zero = 0 if scheme == "int8" else 37
    return QuantConv2d.from_float(conv, LayerQuant(scheme, 0.05, zero, w_scale, w_zero))


def _direct_accumulator(layer: QuantConv2d, codes: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """sum_k f(a, w) - zero-point terms, by explicit loops over output positions (numpy)."""
    offset = 128 if layer.quant.scheme == "int8" else 0
    w = layer.weight_codes.numpy().astype(np.int64)
    zw = layer.quant.weight_zero.numpy()
    za = layer.quant.input_zero
    o, cg, kh, kw = w.shape
    n, c, h, wd = codes.shape
    s = layer.stride[0]
    ho, wo = (h - kh) // s + 1, (wd - kw) // s + 1
    out = np.zeros((n, o, ho, wo), dtype=np.int64)
    for j in range(o):
        g = j // (o // layer.groups)
        for y in range(ho):
            for x in range(wo):
                a = codes[:, g * cg : (g + 1) * cg, y * s : y * s + kh, x * s : x * s + kw].astype(np.int64)
                products = lut[a + offset, w[j][None] + offset]
                # sum (a - za)(w - zw) with the raw-code products through the LUT:
                cross = zw[j] * a.sum((1, 2, 3)) + za * w[j].sum() - a[0].size * za * zw[j]
                out[:, j, y, x] = products.sum((1, 2, 3)) - cross
    return out


@pytest.mark.parametrize("scheme", ["int8", "uint8"])
@pytest.mark.parametrize("groups,stride", [(1, 1), (2, 2)])
def test_accumulator_matches_direct_computation(scheme, groups, stride):
    from multipliers import get

    layer = _random_conv(scheme, groups, stride=stride)
    lo, hi = (-128, 127) if scheme == "int8" else (0, 255)
    x = torch.randn(2, 4, 6, 6) * 3
    codes = layer.pad(layer.quantize_input(x))
    multiplier = get("mitchell_s_w7" if scheme == "int8" else "mitchell_u_w7")
    for lut in (None, multiplier.lut):
        if lut is not None:
            from objectives.kernels import get_kernel
            from objectives.qlayers import Arithmetic

            layer.arithmetic = Arithmetic(get_kernel(lut, scheme == "int8", "reference"), layer.weight_codes)
        table = lut if lut is not None else np.multiply.outer(np.arange(lo, hi + 1), np.arange(lo, hi + 1))
        expected = _direct_accumulator(layer, codes.numpy(), np.asarray(table, dtype=np.int64))
        got = layer.accumulate(codes).numpy()
        assert np.array_equal(got, expected.astype(np.float64))


def test_uint8_exact_accumulator_equals_integer_product_of_centred_codes():
    layer = _random_conv("uint8")
    codes = layer.pad(layer.quantize_input(torch.randn(3, 4, 5, 5)))
    a = codes.double() - layer.quant.input_zero
    w = layer.weight_codes.double() - layer.quant.weight_zero.double().view(-1, 1, 1, 1)
    expected = torch.nn.functional.conv2d(a, w)
    assert torch.equal(layer.accumulate(codes), expected)


@pytest.mark.parametrize("scheme", ["int8", "uint8"])
def test_padding_uses_the_zero_point_code(scheme):
    layer = _random_conv(scheme)
    x = torch.randn(1, 4, 5, 5)
    codes = layer.pad(layer.quantize_input(x))
    assert codes.shape[-2:] == (7, 7)
    border = torch.cat([codes[..., 0, :].flatten(), codes[..., -1, :].flatten(), codes[..., 0].flatten(), codes[..., -1].flatten()])
    assert torch.all(border == layer.quant.input_zero)
    assert layer.quantize_input(torch.zeros(1, 4, 2, 2)).eq(layer.quant.input_zero).all()  # float 0 -> zero point


@pytest.mark.parametrize("scheme", ["int8", "uint8"])
def test_quantised_linear_matches_float_within_quantisation_error(scheme):
    from objectives.calibration import weight_quant

    torch.manual_seed(1)
    linear = nn.Linear(32, 5)
    w_scale, w_zero = weight_quant(linear.weight, scheme)
    zero = 0 if scheme == "int8" else 128
    layer = QuantLinear.from_float(linear, LayerQuant(scheme, 4.0 / 127, zero, w_scale, w_zero))
    x = torch.randn(8, 32)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), linear(x), atol=0.05, rtol=0.05)
    codes = layer.weight_codes
    assert codes.min() >= (-128 if scheme == "int8" else 0) and codes.max() <= (127 if scheme == "int8" else 255)


@pytest.mark.parametrize("groups,stride,dilation", [(1, 1, 1), (2, 2, 1), (1, 1, 2), (2, 3, 2)])
def test_window_sums_are_the_per_group_sums_over_every_receptive_field(groups, stride, dilation):
    torch.manual_seed(1)
    conv = nn.Conv2d(4, 6, 3, stride=stride, dilation=dilation, groups=groups)
    from objectives.calibration import weight_quant

    layer = QuantConv2d.from_float(conv, LayerQuant("uint8", 0.05, 37, *weight_quant(conv.weight, "uint8")))
    codes = torch.randint(0, 256, (2, 4, 11, 9)).float()
    per_group = codes.double().view(2, groups, 4 // groups, 11, 9).sum(2)
    ones = torch.ones(groups, 1, 3, 3, dtype=torch.float64)
    expected = nn.functional.conv2d(per_group, ones, stride=stride, dilation=dilation, groups=groups)
    got = layer.window_sums(codes)
    assert got.dtype == torch.float64 and torch.equal(got, expected)
    # channels-last codes (as the emulated layers pass them on) give the same sums
    assert torch.equal(layer.window_sums(codes.contiguous(memory_format=torch.channels_last)), expected)

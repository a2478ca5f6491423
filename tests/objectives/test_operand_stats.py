"""Operand histograms: counts add up to the layer's products, match im2col, and use LUT indexing."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.mark.parametrize("digits_net", ["int8", "uint8"], indirect=True)
def test_histograms_sum_to_counts(digits_net):
    images = len(digits_net.calibration)
    for name, info in digits_net.layers.items():
        h = digits_net.histograms[name]
        assert h.images == images
        assert h.activation.shape == (256,) and h.weight.shape == (256,)
        assert h.activation_per_channel.shape == (info.in_channels, 256)
        assert h.activation.sum() == images * info.m * info.k  # groups == 1: one count per im2col entry
        assert h.weight.sum() == info.n * info.k
        taps = info.kernel_size[0] * info.kernel_size[1]
        assert np.all(h.activation_per_channel.sum(1) == images * info.m * taps)


@pytest.mark.parametrize("digits_net", ["int8", "uint8"], indirect=True)
def test_per_tap_histograms_match_im2col_columns(digits_net):
    x = torch.stack([digits_net.calibration[i][0] for i in range(len(digits_net.calibration))])
    out = digits_net.gemm_outputs("conv2", x)
    layer = digits_net.layer("conv2")
    cols = torch.nn.functional.unfold(layer.lut_index(out.codes).double(), 3).long()  # (N, K, L)
    expected = np.stack([np.bincount(cols[:, k].reshape(-1).numpy(), minlength=256) for k in range(cols.shape[1])])
    assert np.array_equal(digits_net.histograms["conv2"].activation_per_tap.reshape(-1, 256), expected)
    zero_bin = digits_net.layer("conv2").quant.input_zero + (128 if digits_net.scheme == "int8" else 0)
    assert expected[0, zero_bin] > 0  # padding is counted with the zero-point code
    weights = np.bincount(layer.lut_index(layer.weight_codes).reshape(-1).numpy(), minlength=256)
    assert np.array_equal(digits_net.histograms["conv2"].weight, weights)
    assert np.array_equal(digits_net.weight_codes("conv2"), layer.weight_codes.numpy())

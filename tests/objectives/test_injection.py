"""Synthetic error injection: the injected sums have the requested mean and spread."""

from __future__ import annotations

import math

import pytest
import torch

from objectives.injection import ErrorSpec, product_rms


@pytest.mark.parametrize("digits_net", ["int8"], indirect=True)
@pytest.mark.parametrize("relative", [False, True])
def test_injected_sum_has_requested_mean_and_std(digits_net, digits, relative):
    _, data = digits
    x = data.evaluation.tensors[0][:64]
    name = "conv2"
    k = digits_net.layers[name].k
    spec = ErrorSpec(mean=0.5, std=3.0, relative=relative) if relative else ErrorSpec(mean=20.0, std=150.0)
    unit = 1.0
    if relative:
        h = digits_net.histograms[name]
        unit = product_rms(h.activation, h.weight, "int8")
    layer = digits_net.layer(name)
    with digits_net.capture([name]) as records:
        digits_net(x)
    codes = records[name][0]
    exact = layer.accumulate(codes)
    digits_net.set_injection({name: spec}, seed=3)
    noisy = layer.accumulate(codes)
    delta = (noisy - exact).flatten()
    n = delta.numel()
    mean, std = k * spec.mean * unit, math.sqrt(k) * spec.std * unit
    assert abs(float(delta.mean()) - mean) < 5 * std / math.sqrt(n)
    assert abs(float(delta.std()) / std - 1) < 5 * math.sqrt(2 / n)
    digits_net.set_injection({name: spec}, seed=3)
    assert torch.equal(layer.accumulate(codes), noisy)  # seeded: reproducible
    digits_net.set_injection({})
    assert torch.equal(layer.accumulate(codes), exact)


def test_error_spec_is_validated():
    with pytest.raises(ValueError):
        ErrorSpec(mean=0.0, std=-1.0)

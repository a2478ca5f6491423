"""Bit-exactness of emulated networks: every fast kernel path gives the reference kernel's logits exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch



def designs(signed: bool) -> list:
    """Every built-in zoo design of one signedness."""
    from multipliers import builtin_designs

    return [m for m in builtin_designs() if m.signed == signed]


def _batch(data, n: int) -> torch.Tensor:
    return torch.stack([data.evaluation[i][0] for i in np.linspace(0, len(data.evaluation) - 1, n).astype(int)])


def _logits(net, mapping, method: str, x: torch.Tensor) -> torch.Tensor:
    net.set_assignment(mapping, method=method)
    return net(x)


@pytest.mark.parametrize("digits_net", ["int8", "uint8"], indirect=True)
def test_every_zoo_design_is_bit_exact_on_the_digits_cnn(digits, digits_net):
    _, data = digits
    x = _batch(data, 8)
    signed = digits_net.scheme == "int8"
    exact = digits_net(x)
    checked = 0
    for multiplier in designs(signed):
        mapping = {layer: multiplier for layer in digits_net.layers}
        fast = _logits(digits_net, mapping, "auto", x)
        reference = _logits(digits_net, mapping, "reference", x)
        assert torch.equal(fast, reference), multiplier.name
        if multiplier.is_exact:
            assert torch.equal(fast, exact)
        checked += 1
    assert checked >= 40


@pytest.mark.parametrize("scheme", ["int8", "uint8"])
def test_resnet20_logits_identical_for_every_kernel_path(resnet20, resnet20_nets, scheme):
    from objectives.emulation import choose_method

    _, data = resnet20
    net = resnet20_nets[scheme]
    s = "s" if scheme == "int8" else "u"
    cycle = [f"drum_{s}_k4", f"mitchell_{s}_w7", f"trunc_{s}_t8", f"exact_{s}"]
    mapping = {layer: cycle[i % len(cycle)] for i, layer in enumerate(net.layers)}
    x = _batch(data, 2)
    try:
        fast = _logits(net, mapping, "auto", x)
        paths = {net.layer(name).arithmetic.kernel.method for name in net.layers}
        assert paths == {"exact", "lowrank", "gather"}
        reference = _logits(net, mapping, "reference", x)
        assert torch.equal(fast, reference)
        exact = _logits(net, {}, "auto", x)
        assert not torch.equal(fast, exact)  # the designs do change the result
    finally:
        net.reset()
    from multipliers import get

    assert choose_method(get(cycle[1]).lut, scheme == "int8") == "gather"


@pytest.mark.parametrize("digits_net", ["int8", "uint8"], indirect=True)
def test_layer_sums_are_lut_sums_on_random_inputs(digits_net):
    """Every product equals its LUT entry: the layer's sums against an explicit numpy gather."""
    from multipliers import get

    s = "s" if digits_net.scheme == "int8" else "u"
    layer = digits_net.layer("conv2")
    rng = np.random.default_rng(0)
    lo, hi = (-128, 127) if s == "s" else (0, 255)
    codes = torch.from_numpy(rng.integers(lo, hi + 1, size=(2, 16, 10, 10)).astype(np.float32))
    cols = torch.nn.functional.unfold(codes, 3).long().numpy()  # (N, K, L)
    w = layer.weight_codes.reshape(32, -1).long().numpy()
    off = 128 if s == "s" else 0
    for name in (f"mitchell_{s}_w7", f"drum_{s}_k4", f"etm_{s}_m3"):
        multiplier = get(name)
        digits_net.set_assignment({"conv2": multiplier})
        got = layer.products(codes).reshape(2, 32, -1).numpy()
        expected = multiplier.lut.astype(np.int64)[cols[:, None] + off, w[None, :, :, None] + off].sum(2)
        assert np.array_equal(got, expected), name

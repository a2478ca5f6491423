"""Quantised transformers: attention's products of two activations as emulated GEMMs, bit-exact for every family,
with per-head compensation and the distortion surrogate of both operands; digits-vit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from multipliers import get
from multipliers.families import FAMILIES
from objectives.compensation import expected_product_error
from objectives.qmatmul import QuantMatmul

from .test_emulation import reference_matmul


class TinyTransformer(nn.Module):
    """2x2 patches of the 8x8 digits, one pre-norm encoder block (nn.MultiheadAttention, 2 heads), a linear head."""

    def __init__(self) -> None:
        super().__init__()
        from objectives.networks.digits_vit import EncoderBlock

        self.patch = nn.Conv2d(1, 16, 2, stride=2)
        self.block = EncoderBlock(16, 2, 32)
        self.head = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.block(self.patch(x).flatten(2).transpose(1, 2)).mean(1))


@pytest.fixture(scope="module")
def tiny():
    """The tiny transformer (random weights), quantised per scheme on 64 calibration digits, and 32 test digits."""
    from objectives.data import digits_split
    from objectives.quantize import quantize

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = TinyTransformer().eval()
    data = digits_split(64)
    nets = {s: quantize(model, data.calibration, (1, 8, 8), s, name="tiny") for s in ("int8", "uint8")}
    images = torch.stack([data.evaluation[i][0] for i in range(32)])
    return model, data, nets, images


MATMULS = ["block.self_attention.qk", "block.self_attention.av"]


def test_every_gemm_of_the_block_is_a_layer(tiny):
    model, _, nets, images = tiny
    net = nets["int8"]
    assert list(net.layers) == ["patch", "block.self_attention.in_proj", *MATMULS, "block.self_attention.out_proj",
                                "block.mlp.0", "block.mlp.2", "head"]
    qk = net.layers[MATMULS[0]]
    assert (qk.kind, qk.heads, qk.m, qk.k, qk.n) == ("matmul", 2, 2 * 16, 8, 16)
    for name in MATMULS:
        layer = net.layer(name)
        assert isinstance(layer, QuantMatmul) and layer.heads == 2
    # the softmax output (second product's first operand) is never negative: int8 codes 0..127, uint8 zero point 0
    assert nets["uint8"].layer(MATMULS[1]).quant.first_zero == 0
    with net.capture([MATMULS[1]]) as records:
        net(images)
    assert float(records[MATMULS[1]][0].first.min()) >= 0
    with torch.no_grad():
        want = model(images)
    for scheme in ("int8", "uint8"):  # exact integer arithmetic stays close to float
        got = nets[scheme](images)
        assert float((got - want).norm() / want.norm()) < 0.05, scheme


@pytest.mark.parametrize("scheme", ["int8", "uint8"])
def test_attention_products_are_bit_exact_for_every_family(tiny, scheme):
    """Every product of Q K^T and softmax(.) V is the LUT entry (first operand: row), summed exactly; the output is
    the requantised exact sum, with the uint8 zero-point terms removed exactly."""
    _, _, nets, images = tiny
    net = nets[scheme]
    signed = scheme == "int8"
    for family in FAMILIES:
        designs = [m for m in family.designs() if m.signed == signed]
        design = designs[len(designs) // 2]
        net.set_assignment({name: design for name in MATMULS})
        outputs = {}
        hooks = [net.layer(n).register_forward_hook(lambda m, i, o, n=n: outputs.__setitem__(n, o)) for n in MATMULS]
        try:
            with net.capture(MATMULS) as records:
                net(images[:8])
        finally:
            for hook in hooks:
                hook.remove()
        for name in MATMULS:
            layer = net.layer(name)
            codes = layer.join_codes(records[name])
            want = reference_matmul(np.asarray(design.lut), signed, codes.first, codes.second)
            assert torch.equal(layer.arithmetic.sums(codes.first, codes.second).double(), want), (family.name, name)
            q = layer.quant
            k = codes.first.shape[-1]
            zero_terms = (codes.first.double().sum(-1, keepdim=True) * q.second_zero
                          + codes.second.double().sum(-2, keepdim=True) * q.first_zero - k * q.first_zero * q.second_zero)
            assert torch.equal(outputs[name], layer.requantize(want - zero_terms)), (family.name, name)
    net.reset()


def test_bias_and_affine_compensation_per_head(tiny):
    _, data, nets, _ = tiny
    net = nets["int8"]
    name = MATMULS[1]
    design = "trunc_s_t6"
    calibration = torch.stack([data.calibration[i][0] for i in range(len(data.calibration))])
    out = net.gemm_outputs(name, calibration, design)
    error = (out.emulated - out.exact).transpose(0, 1).reshape(2, -1)  # (heads, outputs)
    hist = net.histograms[name]
    assert hist.pairs.shape == (2, 256, 256) and hist.outputs.tolist() == [error.shape[1]] * 2
    assert hist.pairs.sum() == 2 * error.shape[1] * net.layers[name].k
    expected = expected_product_error(get(design).error_table, hist.pairs, hist.outputs)
    assert np.allclose(expected, error.mean(1).numpy(), rtol=1e-9)  # exact: the pairs are every product's operands
    net.set_assignment({name: design}, compensation="bias")
    assert torch.allclose(net.layer(name).offset, -torch.from_numpy(expected))
    net.set_assignment({name: design}, compensation="affine")
    assert net.layer(name).gain.shape == (2,) and float((net.layer(name).gain - 1).abs().max()) > 0
    net.reset()
    assert float(net.layer(name).offset.abs().max()) == 0


def test_injection_histograms_and_moving(tiny):
    from objectives.injection import ErrorSpec

    _, _, nets, images = tiny
    net = nets["uint8"]
    exact = net(images)
    net.set_injection({MATMULS[0]: ErrorSpec(std=0.1, relative=True)}, seed=1)
    assert not torch.equal(net(images), exact)
    net.reset()
    assert torch.equal(net.to("cpu")(images), exact)  # moving to its own device changes nothing
    hist = net.histograms[MATMULS[0]]
    assert hist.activation.sum() == hist.weight.sum()  # Q and K^T of one head have equal sizes


def test_surrogate_predicts_product_distortion(tiny):
    """The operand-aware level of the products of two activations against measured ||dC||_F."""
    from multipliers import Zoo
    from objectives.distortion.operands import collect_operands
    from objectives.distortion.validation import compare_distortion, summarise

    _, _, nets, images = tiny
    zoo = Zoo.default()
    for scheme, names in (("int8", ("exact_s", "mitchell_s_w7", "trunc_s_t6", "drum_s_k4", "kulkarni_s_cols4")),
                          ("uint8", ("exact_u", "mitchell_u_w7", "trunc_u_t6", "drum_u_k4", "etm_u_m4"))):
        net = nets[scheme]
        operands = collect_operands(net, progress=False)
        records = compare_distortion(net, operands, images, [zoo[n] for n in names], progress=False)
        matmul = summarise(records, "matmul")
        assert matmul["weight-aware"]["median_abs_rel_error"] < 0.10, (scheme, matmul)
        assert matmul["uniform"]["median_abs_rel_error"] > 2 * matmul["weight-aware"]["median_abs_rel_error"]
        linear = summarise(records, "linear")
        assert linear["weight-aware"]["median_abs_rel_error"] < 0.10, (scheme, linear)


def test_surrogate_builds_with_products_and_compensation(tiny):
    from multipliers import Zoo
    from objectives.distortion import NetworkSurrogate

    _, _, nets, _ = tiny
    zoo = Zoo.default()
    designs = [zoo[n] for n in ("exact_s", "trunc_s_t6", "mitchell_s_w7")]
    surrogates = NetworkSurrogate.build_many(nets["int8"], designs, ("none", "bias", "affine"), progress=False)
    rows = [surrogates["none"].layer_names.index(n) for n in MATMULS]
    for compensation, surrogate in surrogates.items():
        contributions = surrogate.table.contributions[rows]
        assert np.all(contributions[:, 0] == 0) and np.all(contributions[:, 1:] > 0), compensation
    none, bias = (surrogates[c].table.contributions[rows, 1] for c in ("none", "bias"))
    # truncation's error is mostly a bias: in softmax(.) V compensation removes most of it; in Q K^T a bias per head
    # shifts every score of a softmax alike, which it ignores, so there the residual is all that counts either way
    assert bias[1] < 0.1 * none[1]
    assert bias[0] == pytest.approx(none[0], rel=0.1)


def test_digits_vit_accuracy_float_and_exact_int8(capsys):
    """The acceptance figures: `dse eval --network digits-vit --float` >= 97, exact int8 within 1 point."""
    import json

    from dse.cli import main

    assert main(["eval", "--network", "digits-vit", "--float", "--json"]) == 0
    float_top1 = json.loads(capsys.readouterr().out)["top1"]
    assert main(["eval", "--network", "digits-vit", "--multiplier", "exact_s", "--json"]) == 0
    exact_top1 = json.loads(capsys.readouterr().out)["top1"]
    assert float_top1 >= 97.0 and abs(exact_top1 - float_top1) <= 1.0

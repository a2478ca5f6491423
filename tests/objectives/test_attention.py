"""Every GEMM of a transformer as a module: attention decomposed, functional products routed, layers listed."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from objectives.attention import DecomposedAttention, Matmul, ScaledDotProductAttention
from objectives.errors import ObjectiveInputError
from objectives.gemms import explicit_gemms
from objectives.layers import gemm_layers


# -- the float twins compute what torch computes -----------------------------------------------------------
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("options", [{}, {"bias": False}, {"add_bias_kv": True}, {"add_zero_attn": True},
                                     {"kdim": 6, "vdim": 5}], ids=["plain", "no-bias", "bias-kv", "zero-attn", "kdim"])
def test_decomposed_attention_matches_multihead_attention(batch_first, options):
    torch.manual_seed(0)
    mha = nn.MultiheadAttention(8, 2, batch_first=batch_first, **options).eval()
    ours = DecomposedAttention(mha).eval()
    b, length, source = 3, 4, 5

    def make(n: int, dim: int = 8) -> torch.Tensor:
        return torch.randn(b, n, dim) if batch_first else torch.randn(n, b, dim)

    if "kdim" in options:
        q, k, v = make(length), make(source, 6), make(source, 5)
    else:
        q = k = v = make(length)
    keys = k.shape[1] if batch_first else k.shape[0]
    mask = torch.rand(q.shape[1] if batch_first else q.shape[0], keys) > 0.7
    mask[:, 0] = False
    padding = torch.zeros(b, keys, dtype=torch.bool)
    padding[:, -1] = True
    for kwargs in ({}, {"attn_mask": mask}, {"key_padding_mask": padding}, {"attn_mask": torch.randn(mask.shape)},
                   {"need_weights": True, "average_attn_weights": False}, {"need_weights": False}):
        with torch.no_grad():
            want, want_w = mha(q, k, v, **kwargs)
            got, got_w = ours(q, k, v, **kwargs)
        assert torch.allclose(got, want, atol=1e-5), kwargs
        assert (want_w is None) == (got_w is None) and (want_w is None or torch.allclose(got_w, want_w, atol=1e-5))


def test_decomposed_attention_cross_and_unbatched_inputs():
    torch.manual_seed(1)
    mha = nn.MultiheadAttention(8, 4, batch_first=True).eval()
    ours = DecomposedAttention(mha)
    q, kv = torch.randn(2, 3, 8), torch.randn(2, 5, 8)
    with torch.no_grad():
        assert torch.allclose(ours(q, kv, kv)[0], mha(q, kv, kv)[0], atol=1e-5)
        assert torch.allclose(ours(q[0], kv[0], kv[0])[0], mha(q[0], kv[0], kv[0])[0], atol=1e-5)
        assert torch.allclose(ours(q, q, q, is_causal=True, attn_mask=None)[0],
                              mha(q, q, q, attn_mask=nn.Transformer.generate_square_subsequent_mask(3))[0], atol=1e-5)


@pytest.mark.parametrize("kwargs", [{}, {"is_causal": True}, {"scale": 0.3}, {"attn_mask": "bool"}, {"attn_mask": "float"}])
def test_scaled_dot_product_attention_matches_torch(kwargs):
    torch.manual_seed(2)
    q, k, v = torch.randn(2, 3, 4, 8), torch.randn(2, 3, 6, 8), torch.randn(2, 3, 6, 5)
    if kwargs.get("attn_mask") == "bool":
        kwargs = {"attn_mask": torch.rand(4, 6) > 0.3}
        kwargs["attn_mask"][:, 0] = True
    elif kwargs.get("attn_mask") == "float":
        kwargs = {"attn_mask": torch.randn(4, 6)}
    assert torch.allclose(ScaledDotProductAttention()(q, k, v, **kwargs), F.scaled_dot_product_attention(q, k, v, **kwargs),
                          atol=1e-5)


# -- functional products become modules -----------------------------------------------------------------
class FunctionalAttention(nn.Module):
    """Attention written with @, torch.bmm, torch.matmul and F.scaled_dot_product_attention, plus an einsum."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(8, 24)
        self.mix = nn.Parameter(torch.randn(8, 8) / 3)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)  # (N, L, 8)
        scores = torch.softmax(q @ k.transpose(1, 2), dim=-1)
        y = torch.bmm(scores, v)
        y = y + F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        y = torch.einsum("nld,de->nle", y, self.mix)  # a multiplication the tool leaves float
        y = torch.matmul(y, self.mix)  # a product with a parameter: a GEMM all the same
        return self.head(y.mean(1))


def test_functional_products_become_routed_modules(caplog):
    torch.manual_seed(3)
    model = FunctionalAttention().eval()
    x = torch.randn(2, 5, 8)
    want = model(x)
    with caplog.at_level(logging.WARNING, logger="objectives.gemms"):
        converted = explicit_gemms(model, (5, 8))
    assert "torch.einsum" in caplog.text and "not approximated" in caplog.text
    assert isinstance(converted.matmul0, Matmul) and isinstance(converted.matmul1, Matmul)
    assert isinstance(converted.sdpa2, ScaledDotProductAttention) and isinstance(converted.matmul3, Matmul)
    seen = []
    handles = [m.register_forward_hook(lambda mod, i, o, n=n: seen.append(n)) for n, m in converted.named_modules()
               if isinstance(m, Matmul)]
    with torch.no_grad():
        assert torch.allclose(converted(x), want, atol=1e-6)
    for h in handles:
        h.remove()
    assert seen == ["matmul0", "matmul1", "sdpa2.qk", "sdpa2.av", "matmul3"]
    layers = gemm_layers(converted, (5, 8))
    assert list(layers) == ["qkv", "matmul0", "matmul1", "sdpa2.qk", "sdpa2.av", "matmul3", "head"]
    assert layers["matmul0"].kind == "matmul" and (layers["matmul0"].m, layers["matmul0"].k, layers["matmul0"].n) == (5, 8, 5)
    assert layers["sdpa2.qk"].heads == 1 and layers["matmul3"].macs == 5 * 8 * 8
    with torch.no_grad():  # routing leaves nothing behind: the module still runs after an error inside it
        with pytest.raises(RuntimeError):
            converted(torch.randn(2, 5, 7))
        assert torch.allclose(converted(x), want, atol=1e-6)


def test_vision_transformer_gemms_and_macs():
    """torchvision's ViT: patch conv, per block the packed projection, Q K^T, softmax(.) V, the output projection and
    the MLP, and the head (ViT-B/16 in `dse layers`: 17,563,828,224 MACs)."""
    from torchvision.models import VisionTransformer

    vit = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=4, hidden_dim=32, mlp_dim=64,
                            num_classes=10)
    layers = gemm_layers(vit, (3, 32, 32))
    tokens, d, heads = 17, 32, 4
    block = tokens * d * 3 * d + 2 * heads * tokens * (d // heads) * tokens + tokens * d * d + 2 * tokens * d * 64
    assert sum(i.macs for i in layers.values()) == 16 * 3 * 64 * d + 2 * block + d * 10
    qk = layers["encoder.layers.encoder_layer_0.self_attention.qk"]
    assert (qk.kind, qk.heads, qk.m, qk.k, qk.n) == ("matmul", heads, heads * tokens, d // heads, tokens)
    assert layers["encoder.layers.encoder_layer_1.self_attention.in_proj"].n == 3 * d
    assert [i.kind for i in layers.values()].count("matmul") == 4
    assert any(isinstance(m, nn.MultiheadAttention) for m in vit.modules())  # measured on a copy: the model is left as it was


def test_a_model_without_gemms_is_refused():
    class Scale(nn.Module):
        def forward(self, x):
            return x * 2

    with pytest.raises(ObjectiveInputError, match="no layer the tool can approximate"):
        gemm_layers(Scale(), (3,))


@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_encoder_layers_take_the_decomposed_attention(norm_first):
    """nn.TransformerEncoder reads its attention's attributes for a fused fast path that would bypass the modules."""
    import copy

    torch.manual_seed(4)
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True, norm_first=norm_first)
    model = nn.Sequential(nn.TransformerEncoder(layer, 2, enable_nested_tensor=False), nn.Linear(16, 3)).eval()
    x = torch.randn(4, 5, 16)
    with torch.no_grad():
        want = model(x)
    converted = explicit_gemms(copy.deepcopy(model), (5, 16))
    seen = []
    for name, module in converted.named_modules():
        if isinstance(module, Matmul):
            module.register_forward_hook(lambda m, i, o, name=name: seen.append(name))
    with torch.no_grad():
        assert torch.allclose(converted(x), want, atol=1e-5)
    assert seen == [f"0.layers.{i}.self_attn.{p}" for i in range(2) for p in ("qk", "av")]

"""Attention with every GEMM a module: the float twins that quantisation swaps for emulated layers.

``nn.MultiheadAttention`` computes its input projection, Q K^T, softmax(.) V and its output projection
inside one functional call (its ``out_proj`` module is never called), so none of its GEMMs would meet
a multiplier. :class:`DecomposedAttention` computes the same function (eval mode) from modules:
``in_proj`` (the packed Q/K/V projection, one ``nn.Linear`` of 3E outputs; ``q_proj``/``k_proj``/
``v_proj`` when key and value dimensions differ), ``qk`` and ``av`` (:class:`Matmul`, the products of
two activations) and ``out_proj``. Scaling, masks, softmax and head reshapes stay float, as in an
accelerator. :class:`ScaledDotProductAttention` does the same for ``F.scaled_dot_product_attention``.

A :class:`Matmul`'s first operand is the LUT's row operand, its second the column operand; the
attention products keep their heads in dimension 1, (batch, heads, rows, columns).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Matmul(nn.Module):
    """``torch.matmul(a, b)`` as a module: a GEMM whose operands are both activations."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.matmul(a, b)


def _float_mask(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """A boolean mask (True: attend) or an additive float mask as an additive float mask."""
    if mask is None or mask.is_floating_point():
        return mask
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, float("-inf"))


class ScaledDotProductAttention(nn.Module):
    """``F.scaled_dot_product_attention`` (eval mode: no dropout) with Q K^T and softmax(.) V as modules."""

    def __init__(self) -> None:
        super().__init__()
        self.qk = Matmul()
        self.av = Matmul()

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attn_mask: torch.Tensor | None = None,
                dropout_p: float = 0.0, is_causal: bool = False, scale: float | None = None,
                enable_gqa: bool = False) -> torch.Tensor:
        if enable_gqa and key.dim() >= 3 and key.shape[-3] != query.shape[-3]:
            repeat = query.shape[-3] // key.shape[-3]
            key, value = key.repeat_interleave(repeat, dim=-3), value.repeat_interleave(repeat, dim=-3)
        scores = self.qk(query, key.transpose(-2, -1))
        scores = scores * (scale if scale is not None else 1.0 / math.sqrt(query.shape[-1]))
        if is_causal:
            rows, cols = scores.shape[-2:]
            causal = torch.ones(rows, cols, dtype=torch.bool, device=scores.device).tril()
            scores = scores.masked_fill(~causal, float("-inf"))
        mask = _float_mask(attn_mask, scores.dtype)
        if mask is not None:
            scores = scores + mask
        return self.av(torch.softmax(scores, dim=-1), value)


class DecomposedAttention(nn.Module):
    """``nn.MultiheadAttention`` (eval mode) with its four GEMMs as modules; same arguments and results.

    Self-attention (query, key and value the same tensor) projects once through the packed ``in_proj``;
    otherwise each input goes through it and keeps its third of the outputs (``dse layers`` counts one
    call). Dropout is left out (inference).
    """

    def __init__(self, mha: nn.MultiheadAttention) -> None:
        super().__init__()
        e, h = mha.embed_dim, mha.num_heads
        self.embed_dim, self.num_heads, self.head_dim = e, h, e // h
        self.batch_first = mha.batch_first
        self.add_zero_attn = mha.add_zero_attn
        self.packed = bool(mha._qkv_same_embed_dim)
        bias = mha.in_proj_bias
        with torch.no_grad():
            if self.packed:
                self.in_proj = nn.Linear(e, 3 * e, bias=bias is not None)
                self.in_proj.weight.copy_(mha.in_proj_weight)
                if bias is not None:
                    self.in_proj.bias.copy_(bias)
            else:
                for index, (name, weight) in enumerate(
                    (("q_proj", mha.q_proj_weight), ("k_proj", mha.k_proj_weight), ("v_proj", mha.v_proj_weight))
                ):
                    linear = nn.Linear(weight.shape[1], e, bias=bias is not None)
                    linear.weight.copy_(weight)
                    if bias is not None:
                        linear.bias.copy_(bias[index * e : (index + 1) * e])
                    setattr(self, name, linear)
        self.qk = Matmul()
        self.av = Matmul()
        self.out_proj = nn.Linear(e, e, bias=mha.out_proj.bias is not None)
        self.out_proj.load_state_dict(mha.out_proj.state_dict())
        self.bias_k = None if mha.bias_k is None else nn.Parameter(mha.bias_k.detach().clone())
        self.bias_v = None if mha.bias_v is None else nn.Parameter(mha.bias_v.detach().clone())

    #: Read by ``nn.TransformerEncoderLayer`` and ``nn.TransformerEncoder``: False keeps them off their fused fast
    #: path, which would compute the attention from the weights directly and bypass these modules.
    _qkv_same_embed_dim = False

    @property
    def in_proj_bias(self) -> torch.Tensor | None:
        """The packed Q/K/V bias, as ``nn.MultiheadAttention`` has it (read by the transformer layers' checks)."""
        if self.packed:
            return self.in_proj.bias
        biases = [self.q_proj.bias, self.k_proj.bias, self.v_proj.bias]
        return None if biases[0] is None else torch.cat(biases)

    def _project(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, ...]:
        e = self.embed_dim
        if not self.packed:
            return self.q_proj(query), self.k_proj(key), self.v_proj(value)
        if query is key and key is value:
            return self.in_proj(query).split(e, dim=-1)
        return tuple(self.in_proj(x)[..., i * e : (i + 1) * e] for i, x in enumerate((query, key, value)))

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                key_padding_mask: torch.Tensor | None = None, need_weights: bool = True,
                attn_mask: torch.Tensor | None = None, average_attn_weights: bool = True,
                is_causal: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        unbatched = query.dim() == 2
        same = query is key and key is value
        if unbatched:
            query, key, value = (t.unsqueeze(0 if self.batch_first else 1) for t in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        if not self.batch_first:
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        if same:
            key = value = query
        q, k, v = self._project(query, key, value)  # (B, L, E), (B, S, E), (B, S, E)
        b, length, e = q.shape
        # nn.MultiheadAttention's boolean masks mark the positions NOT attended
        mask = _float_mask(None if attn_mask is None else _attend(attn_mask), q.dtype)
        if mask is None and is_causal:
            mask = _float_mask(torch.ones(length, k.shape[1], dtype=torch.bool, device=q.device).tril(), q.dtype)
        padding = _float_mask(None if key_padding_mask is None else _attend(key_padding_mask), q.dtype)
        if self.bias_k is not None:
            k = torch.cat([k, self.bias_k.expand(b, 1, e)], dim=1)
            v = torch.cat([v, self.bias_v.expand(b, 1, e)], dim=1)
            mask = None if mask is None else F.pad(mask, (0, 1))
            padding = None if padding is None else F.pad(padding, (0, 1))
        heads = lambda t: t.reshape(b, t.shape[1], self.num_heads, self.head_dim).transpose(1, 2)  # noqa: E731
        q, k, v = heads(q), heads(k), heads(v)  # (B, H, L, d)
        if self.add_zero_attn:
            k = torch.cat([k, k.new_zeros(b, self.num_heads, 1, self.head_dim)], dim=2)
            v = torch.cat([v, v.new_zeros(b, self.num_heads, 1, self.head_dim)], dim=2)
            mask = None if mask is None else F.pad(mask, (0, 1))
            padding = None if padding is None else F.pad(padding, (0, 1))
        scores = self.qk(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim))  # (B, H, L, S)
        if mask is not None:
            scores = scores + (mask.view(b, self.num_heads, length, -1) if mask.dim() == 3 else mask)
        if padding is not None:
            scores = scores + padding.view(b, 1, 1, -1)
        weights = torch.softmax(scores, dim=-1)
        out = self.out_proj(self.av(weights, v).transpose(1, 2).reshape(b, length, e))  # (B, L, E)
        if not self.batch_first:
            out = out.transpose(0, 1)
        if unbatched:
            out = out.squeeze(0 if self.batch_first else 1)
        if not need_weights:
            return out, None
        weights = weights.mean(dim=1) if average_attn_weights else weights
        return out, weights.squeeze(0) if unbatched else weights


def _attend(mask: torch.Tensor) -> torch.Tensor:
    """nn.MultiheadAttention's mask (boolean True: not attended; float: added) in this module's convention."""
    return mask if mask.is_floating_point() else ~mask

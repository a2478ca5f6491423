"""Batch-norm folding: each BatchNorm2d that only follows a conv is merged into that conv's weight and bias."""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn

logger = logging.getLogger(__name__)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode) with conv->BN pairs folded; folded BNs become ``nn.Identity``.

    Pairs are found by tracing the model with ``torch.fx`` (a BN whose input is a conv output
    used nowhere else); models that cannot be traced fall back to adjacent modules of
    ``nn.Sequential`` containers. BNs without a preceding conv stay as they are (still exact).
    """
    model = copy.deepcopy(model).eval()
    pairs = _traced_pairs(model)
    if pairs is None:
        pairs = _sequential_pairs(model)
    modules = dict(model.named_modules())
    for conv_name, bn_name in pairs:
        _fold_into(modules[conv_name], modules[bn_name])
        _replace(model, bn_name, nn.Identity())
    logger.debug("folded %d batch norms", len(pairs))
    return model


def _fold_into(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Fold ``bn`` into ``conv`` in place (float64 arithmetic, stored back in the conv's dtype)."""
    with torch.no_grad():
        std = torch.sqrt(bn.running_var.double() + bn.eps)
        gamma = bn.weight.double() if bn.weight is not None else torch.ones_like(std)
        beta = bn.bias.double() if bn.bias is not None else torch.zeros_like(std)
        factor = gamma / std
        weight = conv.weight.double() * factor.view(-1, 1, 1, 1)
        bias = conv.bias.double() if conv.bias is not None else torch.zeros_like(std)
        bias = (bias - bn.running_mean.double()) * factor + beta
        dtype = conv.weight.dtype
        conv.weight.copy_(weight.to(dtype))
        conv.bias = nn.Parameter(bias.to(dtype))


def _traced_pairs(model: nn.Module) -> list[tuple[str, str]] | None:
    try:
        from torch import fx

        graph = fx.symbolic_trace(model).graph
    except Exception as error:  # tracing fails on data-dependent control flow
        logger.info("fx tracing failed (%s); folding only inside nn.Sequential", error)
        return None
    modules = dict(model.named_modules())
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules.get(node.target), nn.BatchNorm2d):
            continue
        src = node.args[0] if node.args else None
        if (
            getattr(src, "op", None) == "call_module"
            and isinstance(modules.get(src.target), nn.Conv2d)
            and len(src.users) == 1
            and modules[src.target].out_channels == modules[node.target].num_features
        ):
            pairs.append((src.target, node.target))
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    return [(c, b) for c, b in pairs if calls[c] == 1 and calls[b] == 1]  # shared modules stay unfolded


def _sequential_pairs(model: nn.Module) -> list[tuple[str, str]]:
    pairs = []
    for name, module in model.named_modules():
        if isinstance(module, nn.Sequential):
            children = list(module.named_children())
            for (a, ma), (b, mb) in zip(children, children[1:]):
                if isinstance(ma, nn.Conv2d) and isinstance(mb, nn.BatchNorm2d):
                    prefix = f"{name}." if name else ""
                    pairs.append((prefix + a, prefix + b))
    return pairs


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    """Swap the submodule called ``name`` (dotted path) for ``new``."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)

"""GEMM view of a network's conv/linear layers: M per image, K, N and MACs (conv as im2col)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class LayerInfo:
    """One conv/linear layer as a GEMM ``C (M x N) = A (M x K) W (K x N)`` per image.

    ``m`` = output positions per image (Ho*Wo, 1 for linear), ``k`` = C_in/groups*kh*kw,
    ``n`` = C_out, ``macs`` = m*k*n per image.
    """

    name: str
    kind: str
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    groups: int
    input_hw: tuple[int, int]
    output_hw: tuple[int, int]
    m: int
    k: int
    n: int

    @property
    def macs(self) -> int:
        """Multiply-accumulates per image."""
        return self.m * self.k * self.n

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready record (with ``macs``)."""
        return {**asdict(self), "macs": self.macs}


def gemm_layers(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, LayerInfo]:
    """Every Conv2d/Linear of ``model`` (module name -> info, in execution order), from one dummy forward."""
    found: dict[str, LayerInfo] = {}
    handles = []

    def hook(name: str):
        def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            if name not in found:
                found[name] = _info(name, module, inputs[0], output)

        return record

    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            handles.append(module.register_forward_hook(hook(name)))
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *input_shape))
    finally:
        for handle in handles:
            handle.remove()
    return found


def _info(name: str, module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> LayerInfo:
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return LayerInfo(
            name, "conv", module.in_channels, module.out_channels, (kh, kw), tuple(module.stride), module.groups,
            tuple(x.shape[-2:]), tuple(y.shape[-2:]), int(y.shape[-2] * y.shape[-1]),
            module.in_channels // module.groups * kh * kw, module.out_channels,
        )
    rows = int(x.numel() // x.shape[-1] // x.shape[0]) if x.dim() > 1 else 1
    return LayerInfo(
        name, "linear", module.in_features, module.out_features, (1, 1), (1, 1), 1, (1, 1), (1, 1),
        rows, module.in_features, module.out_features,
    )

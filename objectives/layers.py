"""GEMM view of a network's layers: M per image, K, N and MACs (conv as im2col).

Kinds: ``conv`` (``nn.Conv2d``), ``linear`` (``nn.Linear``, also the projections of attention) and
``matmul`` (a product of two activations: attention's Q K^T and softmax(.) V, ``torch.matmul``,
``torch.bmm``, ``@``, ``F.scaled_dot_product_attention``; see :mod:`objectives.gemms`).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class LayerInfo:
    """One layer as a GEMM ``C (M x N) = A (M x K) W (K x N)`` per image.

    ``m`` = output positions per image (Ho*Wo; for linear the rows of its input per image, 1 for a plain
    vector), ``k`` = C_in/groups*kh*kw, ``n`` = C_out, ``macs`` = m*k*n per image. A ``matmul`` (both
    operands activations, the second in the place of W) has ``m`` = the rows of all its matrices per image
    (heads x rows), and ``heads`` = the size of its dimension 1 when it multiplies (batch, heads, rows, K)
    by (batch, heads, K, N) (1 otherwise, and for conv and linear layers).
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
    heads: int = 1

    @property
    def macs(self) -> int:
        """Multiply-accumulates per image."""
        return self.m * self.k * self.n

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready record (with ``macs``)."""
        return {**asdict(self), "macs": self.macs}


def gemm_layers(model: nn.Module, input_shape: tuple[int, ...]) -> dict[str, LayerInfo]:
    """Every GEMM layer of ``model`` (module name -> info, in execution order), from one dummy forward.

    A model whose GEMMs are not all modules yet (``nn.MultiheadAttention``, products called as functions)
    is measured on a converted copy (:func:`objectives.gemms.explicit_gemms`), whose module names the
    result uses. A model with none raises :class:`~objectives.errors.ObjectiveInputError`.
    """
    from .attention import Matmul
    from .gemms import MARK, explicit_gemms

    if not getattr(model, MARK, False):
        model = explicit_gemms(copy.deepcopy(model), input_shape)
    found: dict[str, LayerInfo] = {}
    handles = []

    def hook(name: str):
        def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            if name not in found:
                found[name] = _info(name, module, inputs, output)

        return record

    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear, Matmul)) or getattr(module, "kind", None) == "matmul":
            handles.append(module.register_forward_hook(hook(name)))
    training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *input_shape))
    finally:
        model.train(training)
        for handle in handles:
            handle.remove()
    if not found:
        from .errors import ObjectiveInputError

        raise ObjectiveInputError(
            f"{type(model).__name__} has no layer the tool can approximate (nn.Conv2d, nn.Linear, nn.MultiheadAttention, "
            "torch.matmul / torch.bmm / @ / F.scaled_dot_product_attention on activations)"
        )
    return found


def _info(name: str, module: nn.Module, inputs: tuple, y: torch.Tensor) -> LayerInfo:
    x = inputs[0]
    if isinstance(module, nn.Conv2d):
        kh, kw = module.kernel_size
        return LayerInfo(
            name, "conv", module.in_channels, module.out_channels, (kh, kw), tuple(module.stride), module.groups,
            tuple(x.shape[-2:]), tuple(y.shape[-2:]), int(y.shape[-2] * y.shape[-1]),
            module.in_channels // module.groups * kh * kw, module.out_channels,
        )
    if isinstance(module, nn.Linear):
        rows = int(x.numel() // x.shape[-1] // x.shape[0]) if x.dim() > 1 else 1
        return LayerInfo(
            name, "linear", module.in_features, module.out_features, (1, 1), (1, 1), 1, (1, 1), (1, 1),
            rows, module.in_features, module.out_features,
        )
    k, n = int(inputs[0].shape[-1]), int(y.shape[-1])
    heads = int(y.shape[1]) if y.dim() >= 4 else 1
    rows = int(y.numel() // n)  # the dummy forward has one image
    return LayerInfo(name, "matmul", k, n, (1, 1), (1, 1), 1, (1, 1), (1, 1), rows, k, n, heads)

"""Post-training quantisation: fold batch norms, make every GEMM a module, calibrate ranges, swap the GEMM
layers (conv, linear, products of two activations) for quantised twins."""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
from torch import nn

from .calibration import RangeObserver, activation_quant, weight_quant
from .errors import ObjectiveInputError
from .folding import fold_batchnorm
from .gemms import explicit_gemms
from .layers import gemm_layers
from .qlayers import SCHEMES, LayerQuant, QuantConv2d, QuantLinear
from .qmatmul import MatmulQuant, QuantMatmul
from .qnetwork import QuantizedNetwork

logger = logging.getLogger(__name__)


def quantize(
    model: nn.Module,
    calibration: Any,
    input_shape: tuple[int, ...],
    scheme: str = "int8",
    calibrator: str = "mse",
    batch_size: int = 128,
    name: str = "",
    device: Any = None,
) -> QuantizedNetwork:
    """Quantise a float ``model`` with the ``calibration`` data set of (image, label) pairs, for ``device``
    (default: the CPU).

    ``int8``: symmetric signed activations (per tensor) and weights (per output channel);
    ``uint8``: asymmetric unsigned codes with zero points for both. The float model is not changed.
    The ranges are calibrated with the float model on the CPU wherever the network will run: float
    convolutions differ in their last bits between devices (and libraries), the ranges they give
    must not, so the quantised network, and every result of it, is the same on every device.
    """
    if scheme not in SCHEMES:
        raise ObjectiveInputError(f"unknown scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    start = time.perf_counter()
    folded = explicit_gemms(fold_batchnorm(model).cpu(), input_shape)
    layers = gemm_layers(folded, input_shape)
    observers = _observe_inputs(folded, layers, calibration, batch_size)
    quantised = _convert(folded, layers, observers, scheme, calibrator)
    net = QuantizedNetwork(quantised, folded, scheme, layers, calibration, batch_size, name)
    if device is not None:
        net.to(device)
    logger.info("quantised %s (%s, %d layers) in %.1f s", name or "model", scheme, len(layers), time.perf_counter() - start)
    return net


def _observe_inputs(model: nn.Module, layers: dict, calibration: Any, batch_size: int) -> dict[str, list[RangeObserver]]:
    """Run the float model on the calibration data, recording the range and a sample of each layer's input
    (both operands of a product of two activations)."""
    from .evaluate import batches

    observers = {
        name: [RangeObserver(seed=i)] + ([RangeObserver(seed=i + 100_003)] if info.kind == "matmul" else [])
        for i, (name, info) in enumerate(layers.items())
    }

    def record(inputs: tuple, observed: list[RangeObserver]) -> None:
        for observer, x in zip(observed, inputs):
            observer.update(x)

    handles = [
        model.get_submodule(name).register_forward_pre_hook(lambda mod, inputs, obs=obs: record(inputs, obs))
        for name, obs in observers.items()
    ]
    try:
        with torch.no_grad():
            for x, _ in batches(calibration, batch_size, progress=False, desc="calibration"):
                model(x)
    finally:
        for handle in handles:
            handle.remove()
    return observers


def _convert(folded: nn.Module, layers: dict, observers: dict, scheme: str, calibrator: str) -> nn.Module:
    """A copy of ``folded`` with every GEMM layer swapped for its quantised twin."""
    import copy

    from .folding import _replace

    model = copy.deepcopy(folded)
    for name, info in layers.items():
        module = model.get_submodule(name)
        scale, zero = activation_quant(observers[name][0], scheme, calibrator)
        if info.kind == "matmul":
            second_scale, second_zero = activation_quant(observers[name][1], scheme, calibrator)
            quant = MatmulQuant(scheme, scale, zero, second_scale, second_zero)
            _replace(model, name, QuantMatmul.from_float(module, quant, info.heads))
            continue
        w_scale, w_zero = weight_quant(module.weight, scheme)
        quant = LayerQuant(scheme, scale, zero, w_scale, w_zero)
        twin = QuantConv2d if isinstance(module, nn.Conv2d) else QuantLinear
        _replace(model, name, twin.from_float(module, quant))
    return model.eval()

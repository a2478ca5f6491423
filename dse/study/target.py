"""The study's target: the network, its data, its quantised twin and the layers the search assigns.

This module is the only place the study code calls the inference engine (``objectives``); a worker
process builds the same target from the same study config and keeps it for its later tasks.
"""

from __future__ import annotations

import base64
import contextlib
import difflib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Mapping, Union

from ..errors import UserError

if TYPE_CHECKING:
    from multipliers import Multiplier
    from objectives.hardware_cost import LayerShape

    from .config import StudyConfig

logger = logging.getLogger(__name__)

#: Targets built in this process, by study digest and device (worker processes reuse theirs).
_BUILT: dict[str, "Target"] = {}


@dataclass
class Target:
    """A quantised network ready for assignments, with its layers and candidate designs."""

    config: "StudyConfig"
    network: Any
    data: Any
    qnet: Any
    layers: list["LayerShape"]  # every conv/linear layer, network order
    approximated: list[str]  # the layers the search assigns
    multipliers: list["Multiplier"]  # candidates, exact first

    def layer_info(self, name: str) -> Any:
        """The inference engine's record of one layer (GEMM dims, kernel, stride ...)."""
        return self.qnet.layers[name]

    def evaluate(
        self, assignment: Mapping[str, str], compensation: "Compensation", images: int | None, progress: bool = False,
        held_out: bool = False, dataset: Any = None,
    ) -> dict[str, Any]:
        """Top-1/top-5 of an assignment (layer -> design name; others exact) on ``images`` test images (0 or None:
        all), or with ``held_out`` on the test images those leave out, or on ``dataset`` when given, and ``hits``:
        every image's top-1 hit, packed bits in base64 (for the paired drop's standard error)."""
        from objectives.evaluate import evaluate

        by_name = {m.name: m for m in self.multipliers}
        if dataset is not None:
            data, limit = dataset, None
        else:
            data, limit = (self.data.held_out(images or None), None) if held_out else (self.data, images or None)
        with objective_errors():
            apply_assignment(self.qnet, {k: by_name[v] for k, v in assignment.items()}, compensation)
            result = evaluate(self.qnet, data, limit, self.config.data.batch_size, progress=progress)
        return {**result.as_dict(), "hits": base64.b64encode(result.hits).decode("ascii")}

    def margins(self, images: int | None, seed: int = 0) -> Any:
        """The exact network's margin curve (:mod:`objectives.distortion.drop_model`) on the ``images`` test images
        a confirmation measures (0 or None: all)."""
        from objectives.distortion.drop_model import margins_on

        with objective_errors():
            return margins_on(self.qnet, self.data.limited(images or None), seed)

    def held_out_images(self, images: int | None) -> int:
        """How many test images a confirmation on ``images`` of them (0 or None: all) leaves out."""
        return len(self.data.held_out(images or None))

    def corrections(self, assignment: Mapping[str, str], compensation: "Compensation") -> dict[str, dict[str, list[float]]]:
        """Per layer, the compensation applied per output channel: accumulator gain and offset."""
        by_name = {m.name: m for m in self.multipliers}
        with objective_errors():
            apply_assignment(self.qnet, {k: by_name[v] for k, v in assignment.items()}, compensation)
        out = {}
        for name in assignment:
            layer = self.qnet.layer(name)
            out[name] = {
                "gain": [float(v) for v in layer.gain.tolist()],
                "offset": [float(v) for v in layer.offset.tolist()],
            }
        return out

    def weight_maps(self, assignment: Mapping[str, str], compensation: "Compensation") -> dict[str, list[int]]:
        """Per layer whose weights are tuned to its design: the operand stored for each weight value, in
        operand-value order (int8: -128..127, uint8: 0..255); empty without weight tuning."""
        from multipliers import operand_values

        by_name = {m.name: m for m in self.multipliers}
        values = operand_values(self.qnet.scheme == "int8")
        out = {}
        for layer, design in assignment.items():
            weight_map = self.qnet.weight_map(layer, by_name[design], layer_compensation(compensation, layer))
            if weight_map is not None:
                out[layer] = [int(v) for v in values[weight_map]]
        return out


#: One compensation mode for every layer, or one per layer (``{layer: mode}``, compensation searched).
Compensation = Union[str, Mapping[str, str]]


def layer_compensation(compensation: Compensation, layer: str) -> str:
    """The compensation mode of one layer ("searched" alone, as the exact baseline's, means none)."""
    if isinstance(compensation, str):
        return "none" if compensation == "searched" else compensation
    return compensation.get(layer, "none")


def apply_assignment(qnet: Any, mapping: Mapping[str, "Multiplier"], compensation: Compensation) -> None:
    """Give the quantised network its designs and each layer its compensation (one mode, or one per layer)."""
    if isinstance(compensation, str):
        qnet.set_assignment(mapping, compensation=layer_compensation(compensation, ""))
    else:
        qnet.set_assignment(mapping, compensation={k: layer_compensation(compensation, k) for k in mapping})


@contextlib.contextmanager
def objective_errors() -> Iterator[None]:
    """Turn the inference engine's input errors into one-line user errors."""
    from objectives.errors import ObjectiveInputError

    try:
        yield
    except ObjectiveInputError as error:
        raise UserError(str(error)) from None


def study_device(config: "StudyConfig") -> Any:
    """The torch device of the study's ``run.device``; one that is unknown or not on this machine is a one-line
    user error naming the study file and what the machine has."""
    from objectives.device import DeviceError, resolve_device

    try:
        return resolve_device(config.run.device)
    except DeviceError as error:
        raise UserError(f"{config.path}: run.device: {error}") from None


def build_target(config: "StudyConfig", multipliers: list["Multiplier"] | None = None) -> Target:
    """Load the network and data, quantise on the study's device (``run.device``), check the layer names of the
    study file (cached per process)."""
    device = study_device(config)
    key = f"{config.digest()}@{device}"  # run.device is left out of the digest: it changes no result
    if key in _BUILT:
        return _BUILT[key]
    from objectives.data import load_data
    from objectives.hardware_cost import LayerShape
    from objectives.networks import get_network
    from objectives.quantize import quantize

    from .candidates import select_multipliers

    multipliers = multipliers if multipliers is not None else select_multipliers(config)
    section = config.data
    with objective_errors():
        network = get_network(config.network.name, config.network.weights or None, options=config.network.options())
        data = load_data(
            network, section.test or None, download=section.download, calibration_size=section.calibration_images,
            calibration_path=section.calibration or None, cache_folder=config.data_cache or None,
        )
        qnet = quantize(
            network.model, data.calibration, network.input_shape, config.quantization.scheme,
            batch_size=section.batch_size, name=network.name, device=device,
        )
        qnet.weight_tuning = config.compensation.tune_weights
    names = list(qnet.layers)
    where = str(config.path)
    for key_name, listed in (("network.layers", config.network.layers), ("network.exact", config.network.exact)):
        _check_layers(listed, names, f"{where}: {key_name}")
    approximated = [n for n in names if (not config.network.layers or n in config.network.layers)]
    approximated = [n for n in approximated if n not in config.network.exact]
    if not approximated:
        raise UserError(f"{where}: network.layers and network.exact leave no layer to approximate")
    for group in config.grouping.groups:
        _check_layers(group, approximated, f"{where}: grouping.groups")
    layers = [LayerShape(n, qnet.layers[n].m, qnet.layers[n].k, qnet.layers[n].n) for n in names]
    target = Target(config, network, data, qnet, layers, approximated, multipliers)
    _BUILT[key] = target
    return target


def _check_layers(listed: Any, names: list[str], where: str) -> None:
    for layer in listed:
        if layer not in names:
            close = difflib.get_close_matches(layer, names, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UserError(f"{where}: no layer {layer!r} to approximate{hint} (layers: {', '.join(names)})")

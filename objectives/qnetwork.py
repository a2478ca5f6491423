"""``QuantizedNetwork``: an int8/uint8 network whose layers take per-layer multipliers, injection and compensation."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .assignment import resolve_assignment
from .compensation import MODES, AffineFit, expected_error, expected_product_error
from .errors import AssignmentError
from .injection import ErrorSpec, GaussianInjection, product_rms
from .kernels import get_kernel
from .layers import LayerInfo
from .operand_stats import HistogramObserver, MatmulHistogramObserver, OperandHistograms
from .weight_tuning import apply_weight_map, tuned_error_table, tuned_weight_map

logger = logging.getLogger(__name__)


@dataclass
class GemmOutputs:
    """One layer on one batch: its padded input codes and the exact and emulated sums of LUT products."""

    codes: torch.Tensor
    exact: torch.Tensor
    emulated: torch.Tensor


class QuantizedNetwork:
    """A quantised model (exact by default) plus everything studies need about its layers.

    ``layers``: name -> :class:`LayerInfo` (GEMM dims per image). ``histograms``: name ->
    :class:`OperandHistograms` on the calibration images. Call it like a model: ``net(x)``.
    ``weight_tuning``: when true, every layer with an approximate design stores its weights tuned to
    that design (:mod:`objectives.weight_tuning`); exact layers keep theirs.
    """

    def __init__(
        self, model: nn.Module, float_model: nn.Module, scheme: str, layers: Mapping[str, LayerInfo],
        calibration: Any, batch_size: int = 128, name: str = "",
    ) -> None:
        self.model = model.eval()
        self.float_model = float_model.eval()
        self.scheme = scheme
        self.layers = dict(layers)
        self.calibration = calibration
        self.batch_size = batch_size
        self.name = name
        self.assignment: dict[str, Any] = {}
        self.compensation: str | dict[str, str] = "none"
        self.injection: dict[str, ErrorSpec] = {}
        self.method = "auto"
        self._histograms: dict[str, OperandHistograms] | None = None
        self._affine_cache: dict[tuple[str, str, bool], AffineFit] = {}
        self.weight_tuning = False
        self._weight_maps: dict[tuple[str, str, bool], np.ndarray] = {}
        self._injection_seed = 0
        from .device import module_device

        self._device = module_device(model)

    # -- running ----------------------------------------------------------------------------------
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.model(x.to(self.device, non_blocking=True))

    @property
    def device(self) -> torch.device:
        """Where the network runs (every layer's state is there)."""
        return self._device

    def to(self, device: "torch.device | str") -> "QuantizedNetwork":
        """Move the network, with every piece of layer state (weight codes, scales, biases, compensation,
        prepared kernels, injection), to ``device``; returns ``self``. Results are bit-identical on every device."""
        from .device import resolve_device

        device = resolve_device(device)
        if device == self._device:
            return self
        self.model.to(device)
        self.float_model.to(device)
        self._device = device
        for name in self.layers:
            self.layer(name).move_quant_state()
        assignment, compensation, injection = dict(self.assignment), self.compensation, dict(self.injection)
        self.set_assignment(assignment, compensation, self.method)
        self.set_injection(injection, self._injection_seed)
        return self

    def layer(self, name: str) -> Any:
        """The quantised module called ``name`` (:class:`~objectives.qlayers.QuantLayer` or
        :class:`~objectives.qmatmul.QuantMatmul`)."""
        if name not in self.layers:
            raise AssignmentError(f"unknown layer {name!r}; layers: {', '.join(self.layers)}")
        return self.model.get_submodule(name)

    def weight_codes(self, name: str) -> np.ndarray:
        """The layer's weight operands (int64 values as the LUT sees them), (O, C/g, kh, kw) or (O, K)."""
        return self.layer(name).weight_codes.cpu().numpy().astype(np.int64)

    def weight_map(self, name: str, multiplier: Any, compensation: str | None = None) -> np.ndarray | None:
        """Layer ``name``'s weights tuned to ``multiplier`` under ``compensation`` (default: the layer's current
        mode) as a map over LUT indices, (256,); None without weight tuning or for an exact design."""
        if not self.weight_tuning or multiplier is None or multiplier.is_exact or self.layers[name].kind == "matmul":
            return None
        compensated = self._mode(name, compensation) != "none"
        key = (name, multiplier.lut_sha256, compensated)
        if key not in self._weight_maps:
            hist = self.histograms[name]
            self._weight_maps[key] = tuned_weight_map(
                multiplier.lut, self.scheme == "int8", hist.activation, hist.weight, self.layers[name].k, compensated)
        return self._weight_maps[key]

    def operand_weights(self, name: str, multiplier: Any, compensation: str | None = None) -> torch.Tensor | None:
        """The weight operands ``multiplier`` multiplies in layer ``name``: its tuned weights, or the layer's own
        (None for a product of two activations)."""
        layer = self.layer(name)
        if self.layers[name].kind == "matmul":
            return None  # both operands are activations
        weight_map = self.weight_map(name, multiplier, compensation)
        if weight_map is None:
            return layer.weight_codes
        tuned = apply_weight_map(layer.weight_codes.cpu().numpy(), weight_map, self.scheme == "int8")
        return torch.from_numpy(tuned).to(device=layer.weight_codes.device, dtype=layer.weight_codes.dtype)

    def error_table(self, name: str, multiplier: Any, compensation: str | None = None) -> np.ndarray:
        """``multiplier``'s error in layer ``name`` per (activation, original weight), int64 (256, 256)."""
        weight_map = self.weight_map(name, multiplier, compensation)
        if weight_map is None:
            return multiplier.error_table
        return tuned_error_table(multiplier.lut, self.scheme == "int8", weight_map)

    def _mode(self, name: str, compensation: str | None) -> str:
        if compensation is not None:
            return compensation
        current = self.compensation
        return current if isinstance(current, str) else current.get(name, "none")

    @property
    def histograms(self) -> dict[str, OperandHistograms]:
        """Per layer operand histograms on the calibration images (computed once, with exact arithmetic)."""
        if self._histograms is None:
            observers = {
                name: MatmulHistogramObserver(info.heads) if info.kind == "matmul"
                else HistogramObserver(info.in_channels, info.kernel_size[0] * info.kernel_size[1])
                for name, info in self.layers.items()
            }
            with self._exact(), self._observing(observers):
                self._run_calibration("histograms")
            self._histograms = {name: obs.result(self.layer(name)) for name, obs in observers.items()}
        return self._histograms

    # -- configuration ------------------------------------------------------------------------------
    def set_assignment(
        self, mapping: Mapping[str, Any], compensation: str | Mapping[str, str] = "none", method: str = "auto",
        imports: Sequence[str] = (),
    ) -> None:
        """Give layers multipliers (names or Multiplier records); others exact; optional compensation, one
        mode for every layer or ``{layer: mode}`` (layers left out: none)."""
        modes = self._modes(compensation)
        resolved = resolve_assignment(mapping, self.layers, self.scheme, imports)
        self._fit_compensation(resolved, modes, method)
        for name in self.layers:
            layer = self.layer(name)
            multiplier = resolved.get(name)
            if multiplier is None or multiplier.is_exact:
                layer.arithmetic = layer.exact_arithmetic()
                layer.set_correction(None, None)
                continue
            kernel = self._kernel(name, multiplier, method)
            layer.arithmetic = layer.arithmetic_for(kernel, self.operand_weights(name, multiplier, modes[name]),
                                                    multiplier.name)
            layer.set_correction(*self._correction(name, multiplier, modes[name]))
        stored = compensation if isinstance(compensation, str) else dict(compensation)
        self.assignment, self.compensation, self.method = resolved, stored, method

    def fit_compensation(self, mapping: Mapping[str, Any], compensation: str, method: str = "auto") -> None:
        """Fit now, in one calibration pass, the constants ``compensation`` needs for each layer's design in
        ``mapping`` (none for modes without fitted constants); a later :meth:`set_assignment` of any of them, alone
        or together, reuses them. Each layer's fit sees the exact network, so fitting layers together or one at a
        time gives the same constants."""
        modes = self._modes(compensation)
        self._fit_compensation(resolve_assignment(mapping, self.layers, self.scheme), modes, method)

    def _modes(self, compensation: str | Mapping[str, str]) -> dict[str, str]:
        """Each layer's compensation mode (one for all, or ``{layer: mode}`` with none for layers left out),
        refusing unknown modes."""
        modes = {name: compensation if isinstance(compensation, str) else compensation.get(name, "none")
                 for name in self.layers}
        for mode in sorted(set(modes.values())):
            if mode not in MODES:
                raise AssignmentError(f"unknown compensation {mode!r}; choose one of {', '.join(MODES)}")
        return modes

    def _fit_compensation(self, resolved: Mapping[str, Any], modes: Mapping[str, str], method: str) -> None:
        fitted = {n: m for n, m in resolved.items() if modes[n] in ("affine", "threshold")}
        if fitted:
            self._fit_affine(fitted, modes, method)

    def set_injection(self, mapping: Mapping[str, ErrorSpec], seed: int = 0) -> None:
        """Synthetic errors per layer (layers left out get none); replaces any earlier injection."""
        unknown = [n for n in mapping if n not in self.layers]
        if unknown:
            raise AssignmentError(f"unknown layer {unknown[0]!r}; `dse layers NETWORK` lists them")
        for index, name in enumerate(self.layers):
            layer, spec = self.layer(name), mapping.get(name)
            if spec is None:
                layer.noise = None
                continue
            unit = 1.0
            if spec.relative:
                hist = self.histograms[name]
                unit = product_rms(hist.activation, hist.weight, self.scheme)
            layer.noise = GaussianInjection(self.layers[name].k, spec.mean * unit, spec.std * unit, seed + index)
        self.injection = dict(mapping)
        self._injection_seed = seed

    def reset(self) -> None:
        """Exact multipliers everywhere, no injection, no compensation."""
        self.set_assignment({})
        self.set_injection({})

    # -- inspection (for surrogates) --------------------------------------------------------------
    @contextlib.contextmanager
    def capture(self, names: Sequence[str]) -> Iterator[dict[str, list[torch.Tensor]]]:
        """Record the padded integer input codes of the named layers on every forward inside the block."""
        records: dict[str, list[torch.Tensor]] = {name: [] for name in names}
        observers = {name: (lambda layer, codes, name=name: records[name].append(codes.clone())) for name in names}
        for name in names:
            self.layer(name)
        with self._observing(observers):
            yield records

    def gemm_outputs(self, name: str, images: torch.Tensor, multiplier: Any = None, method: str = "auto") -> GemmOutputs:
        """For ``images`` through the exact network: layer ``name``'s codes, exact and emulated sums.

        Sums are of LUT products of raw operands (the GEMM ``C`` and ``C + dC``; for uint8 before
        the zero-point terms, which are exact); ``multiplier`` defaults to the assigned one.
        """
        layer = self.layer(name)
        with self._exact(), self.capture([name]) as records, torch.no_grad():
            self.model(images.to(self.device))
        codes = layer.join_codes(records[name])
        multiplier = multiplier if multiplier is not None else self.assignment.get(name)
        if isinstance(multiplier, str):
            multiplier = resolve_assignment({name: multiplier}, self.layers, self.scheme)[name]
        with torch.no_grad():
            exact = layer.products(codes, layer.exact_arithmetic())
            emulated = exact if multiplier is None else layer.products(
                codes, layer.arithmetic_for(self._kernel(name, multiplier, method),
                                            self.operand_weights(name, multiplier, self._mode(name, None)))
            )
        return GemmOutputs(codes, exact, emulated)

    # -- internals ------------------------------------------------------------------------------------
    def _kernel(self, name: str, multiplier: Any, method: str) -> Any:
        """The kernel of ``multiplier`` for layer ``name`` on the network's device (``auto`` knows products of two
        activations from layers with weights)."""
        return get_kernel(multiplier.lut, self.scheme == "int8", method, self.device,
                          products=self.layers[name].kind == "matmul")

    def _correction(self, name: str, multiplier: Any, mode: str) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        if mode == "none":
            return None, None
        if mode == "affine":
            return self._affine_cache[self._affine_key(name, multiplier)].result()
        if mode == "threshold":
            fit = self._affine_cache[self._affine_key(name, multiplier)]
            return None, fit.threshold_offset(self.layer(name).zero_crossing())
        layer = self.layer(name)
        if self.layers[name].kind == "matmul":
            hist = self.histograms[name]
            b = expected_product_error(multiplier.error_table, hist.pairs, hist.outputs)
            return None, -torch.from_numpy(b).to(self.device)
        b = expected_error(
            self.error_table(name, multiplier, mode), self.histograms[name].activation_per_channel,
            layer.lut_index(layer.weight_codes).cpu().numpy(), layer.groups if isinstance(layer, nn.Conv2d) else 1,
        )
        return None, -torch.from_numpy(b).to(self.device)

    def _fit_affine(self, resolved: Mapping[str, Any], modes: Mapping[str, str], method: str) -> None:
        """Fit gain/offset per channel for every (layer, design) not fitted before, in one calibration pass."""
        todo = {n: m for n, m in resolved.items()
                if not m.is_exact and self._affine_key(n, m) not in self._affine_cache}
        if not todo:
            return
        fits = {name: AffineFit() for name in todo}
        weights = {name: self.operand_weights(name, m, modes[name]) for name, m in todo.items()}

        def observer(layer: Any, codes: Any, name: str) -> None:
            approx = layer.arithmetic_for(self._kernel(name, todo[name], method), weights[name])
            zero = layer.zero_point_terms(codes) if self.scheme == "uint8" else 0.0
            fits[name].update(layer.products(codes, approx) - zero, layer.products(codes) - zero)

        observers = {name: (lambda layer, codes, name=name: observer(layer, codes, name)) for name in todo}
        with self._exact(), self._observing(observers):
            self._run_calibration("affine fit")
        for name, fit in fits.items():
            self._affine_cache[self._affine_key(name, todo[name])] = fit

    def _affine_key(self, name: str, multiplier: Any) -> tuple[str, str, bool]:
        """Affine and threshold share one fit per (layer, design, weight tuning): both compensate, so both
        see the same tuned weights."""
        return name, multiplier.lut_sha256, self.weight_tuning

    @contextlib.contextmanager
    def _exact(self) -> Iterator[None]:
        """Temporarily exact arithmetic, no noise and no compensation in every layer."""
        saved = {}
        for name in self.layers:
            layer = self.layer(name)
            saved[name] = (layer.arithmetic, layer.noise, layer.gain, layer.offset)
        try:
            for name in self.layers:
                layer = self.layer(name)
                layer.arithmetic = layer.exact_arithmetic()
                layer.noise = None
                layer.set_correction(None, None)
            yield
        finally:
            for name, (arithmetic, noise, gain, offset) in saved.items():
                layer = self.layer(name)
                layer.arithmetic, layer.noise = arithmetic, noise
                layer.set_correction(gain, offset)

    @contextlib.contextmanager
    def _observing(self, observers: Mapping[str, Any]) -> Iterator[None]:
        for name, observer in observers.items():
            self.layer(name).observers.append(observer)
        try:
            yield
        finally:
            for name, observer in observers.items():
                self.layer(name).observers.remove(observer)

    def _run_calibration(self, what: str) -> None:
        from .evaluate import batches

        with torch.no_grad():
            for x, _ in batches(self.calibration, self.batch_size, progress=False, desc=what, device=self.device):
                self.model(x.to(self.device, non_blocking=True))

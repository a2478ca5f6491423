"""Quantised conv/linear layers: the float layer plus what quantisation adds (products of two activations:
:mod:`objectives.qmatmul`).

Every forward follows one template: quantise the input to integer codes (per tensor), pad with
the zero-point code, accumulate through the layer's :class:`Arithmetic` (the one overridable
place: exact, a fast AxM kernel, or the slow reference), add injected error if asked, remove the
zero-point cross terms exactly, then requantise (per-channel scale and bias, which also carry any
compensation). Operand values follow the LUT convention: row = activation, column = weight;
``int8`` feeds values -128..127 to signed tables, ``uint8`` feeds codes 0..255 to unsigned ones.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from .emulation import conv_output_size, window_sums
from .kernels import get_kernel

SCHEMES = ("int8", "uint8")


def code_range(scheme: str) -> tuple[int, int]:
    """Smallest and largest operand value of a scheme."""
    return (-128, 127) if scheme == "int8" else (0, 255)


@dataclass(frozen=True)
class LayerQuant:
    """Quantisation of one layer: input scale/zero point (per tensor) and weight scale/zero point (per channel)."""

    scheme: str
    input_scale: float
    input_zero: int
    weight_scale: torch.Tensor  # (O,) float64
    weight_zero: torch.Tensor  # (O,) int64, zeros for int8


class Arithmetic:
    """Sums of products of integer operands through one kernel (one LUT); weights prepared once."""

    def __init__(self, kernel: Any, weight_codes: torch.Tensor, label: str = "") -> None:
        self.kernel = kernel
        self.prepared = kernel.prepare_weight(weight_codes)
        self.label = label

    def conv2d(self, codes: torch.Tensor, layer: nn.Conv2d) -> torch.Tensor:
        """(N, C, H, W) padded codes -> (N, O, Ho, Wo) float64 exact sums of LUT products."""
        return self.kernel.conv2d(codes, self.prepared, stride=layer.stride, dilation=layer.dilation, groups=layer.groups)

    def linear(self, codes: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
        """(N, K) codes -> (N, O) float64 exact sums of LUT products."""
        return self.kernel.linear(codes, self.prepared)

    def fused(self, x: torch.Tensor, layer: "QuantLayer") -> torch.Tensor | None:
        """The whole layer, float input to requantised output, in fused GPU kernels where they apply (an int8
        layer whose products are one int8 GEMM: :func:`objectives.emulation._int8.fused_forward`), else None."""
        plan = self.prepared.data.get("int8")
        if plan is None or layer.quant.scheme != "int8":
            return None
        from .emulation import _int8

        if isinstance(layer, nn.Conv2d):
            if layer.groups != 1 or layer.padding_mode != "zeros" or x.dim() != 4:
                return None
            left, right, top, bottom = layer._reversed_padding_repeated_twice
            geometry = ((top, bottom, left, right), tuple(layer.stride), tuple(layer.dilation))
        else:
            if x.dim() != 2:
                return None
            x = x.reshape(x.shape[0], x.shape[1], 1, 1)
            geometry = ((0, 0, 0, 0), (1, 1), (1, 1))
        quantisation = (layer.inverse_input_scale, layer._lo, layer._hi)
        x = x if x.dtype == torch.float32 else x.float()
        out = _int8.fused_forward(x, plan, True, geometry, quantisation, (layer._scale32, layer._bias32))
        if out is not None and not isinstance(layer, nn.Conv2d):
            out = out.reshape(out.shape[0], out.shape[1])
        return out

    def sums(self, codes: torch.Tensor, layer: nn.Module) -> torch.Tensor:
        """The layer's own codes (rounded and clamped, so in range by construction) -> exact sums,
        unchecked, float32 where exact there (else float64), possibly a channels-last view."""
        if isinstance(layer, nn.Conv2d):
            return self.kernel.sums(codes, self.prepared, stride=layer.stride, dilation=layer.dilation, groups=layer.groups)
        return self.kernel.linear_sums(codes, self.prepared)


def exact_arithmetic(weight_codes: torch.Tensor, scheme: str) -> Arithmetic:
    """The exact multiplier of a scheme."""
    from multipliers import exact_lut

    signed = scheme == "int8"
    return Arithmetic(get_kernel(exact_lut(signed), signed, device=weight_codes.device), weight_codes, "exact")


class QuantLayer:
    """The quantisation template shared by :class:`QuantConv2d` and :class:`QuantLinear`."""

    quant: LayerQuant
    arithmetic: Arithmetic
    #: Optional ``noise(layer, sums) -> float64`` added to the sums (synthetic error injection).
    noise: Callable[[Any, torch.Tensor], torch.Tensor] | None
    #: Callables ``observer(layer, codes)`` seeing every padded input (statistics, capture).
    observers: list

    def _init_quant(self, quant: LayerQuant) -> None:
        self.quant = quant
        lo, hi = code_range(quant.scheme)
        self._lo, self._hi = lo, hi
        w = self.weight.detach().to(torch.float64)
        shape = (-1,) + (1,) * (w.dim() - 1)
        codes = torch.round(w / quant.weight_scale.view(shape)) + quant.weight_zero.view(shape).to(torch.float64)
        self.register_buffer("weight_codes", codes.clamp(lo, hi).to(torch.int16), persistent=True)
        self.noise = None
        self.observers = []
        self.arithmetic = exact_arithmetic(self.weight_codes, quant.scheme)
        self.set_correction(None, None)

    # -- the template ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.noise is None and not self.observers:  # on GPUs, int8 layers run fused (same values)
            fused = self.arithmetic.fused(x, self)
            if fused is not None:
                return fused
        codes = self.input_codes(x)
        for observer in self.observers:
            observer(self, codes)
        return self.requantize(self.accumulate(codes))

    def input_codes(self, x: torch.Tensor) -> torch.Tensor:
        """Float input -> padded integer codes; same as ``pad(quantize_input(x))``, fewer passes.

        Padding the float input with 0.0 and then quantising gives the zero-point code there.
        """
        return self._quantize_(self.scaled_padded(x, 1.0 / self.quant.input_scale), scaled=True)

    @property
    def inverse_input_scale(self) -> float:
        """``1 / input_scale`` as the float32 that multiplies float32 inputs (what ``torch.mul`` uses)."""
        return float(torch.tensor(1.0 / self.quant.input_scale, dtype=torch.float32))

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        """Float input -> integer codes (float32 tensor holding integers)."""
        return self._quantize_(torch.mul(x.float(), 1.0 / self.quant.input_scale), scaled=True)

    def _quantize_(self, t: torch.Tensor, scaled: bool = False) -> torch.Tensor:
        """Quantise a float32 tensor in place."""
        if not scaled:
            t.mul_(1.0 / self.quant.input_scale)
        t.round_()
        if self.quant.input_zero:
            t.add_(self.quant.input_zero)
        return t.clamp_(self._lo, self._hi)

    def accumulate(self, codes: torch.Tensor) -> torch.Tensor:
        """Exact integer accumulator: LUT-product sums, injected error, zero-point terms removed.

        float64, except that an int8 layer's sums stay float32 when the kernel found them exact
        there (requantisation rounds the accumulator to float32 anyway: same result, two passes fewer).
        """
        return exact_accumulator(self, self.arithmetic.sums(codes, self),
                                 lambda sums: self._remove_zero_point_terms_(sums, codes))

    def products(self, codes: torch.Tensor, arithmetic: Arithmetic | None = None) -> torch.Tensor:
        """Sums over K of LUT products of raw codes, through ``arithmetic`` (default: the layer's)."""
        arithmetic = arithmetic or self.arithmetic
        return arithmetic.conv2d(codes, self) if isinstance(self, nn.Conv2d) else arithmetic.linear(codes, self)

    def requantize(self, acc: torch.Tensor) -> torch.Tensor:
        """Accumulator -> float32 output: per-channel scale and bias (compensation folded in)."""
        shape = (1, -1) + (1,) * (acc.dim() - 2)
        out = acc.float()
        return torch.addcmul(self._bias32.view(shape), out, self._scale32.view(shape), out=out)

    # -- views for statistics and compensation ---------------------------------------------------
    def channel_layout(self, t: torch.Tensor) -> torch.Tensor:
        """An output-shaped tensor as (batch, channels, positions): (N, O, Ho, Wo) or (N, ..., O) -> (N, O, P)."""
        if isinstance(self, nn.Conv2d):
            return t.flatten(2)
        return t.reshape(t.shape[0], -1, t.shape[-1]).transpose(1, 2)

    @staticmethod
    def join_codes(parts: list) -> torch.Tensor:
        """Captured batches of padded input codes as one tensor."""
        return torch.cat(parts)

    def zero_crossing(self) -> torch.Tensor:
        """Per channel, the exact accumulator at which the layer's output is 0: ``-bias / scale`` (float64)."""
        scale = self.quant.input_scale * self.quant.weight_scale
        if self.bias is None:
            return torch.zeros_like(scale)
        return -self.bias.detach().to(torch.float64) / scale

    # -- configuration --------------------------------------------------------------------------
    def exact_arithmetic(self) -> Arithmetic:
        """The exact multiplier of the layer's scheme, with the layer's weights, on its device."""
        return exact_arithmetic(self.weight_codes, self.quant.scheme)

    def arithmetic_for(self, kernel: Any, weights: torch.Tensor | None = None, label: str = "") -> Arithmetic:
        """Arithmetic through ``kernel`` multiplying ``weights`` (default: the layer's own weight codes)."""
        return Arithmetic(kernel, self.weight_codes if weights is None else weights, label)

    def move_quant_state(self) -> None:
        """After the module moved (``.to(device)``): move the quantisation state that is not a buffer with it
        (per-channel scales and zero points, compensation), and give it exact arithmetic there."""
        device = self.weight_codes.device
        self.quant = replace(self.quant, weight_scale=self.quant.weight_scale.to(device),
                             weight_zero=self.quant.weight_zero.to(device))
        self.arithmetic = exact_arithmetic(self.weight_codes, self.quant.scheme)
        self.set_correction(self.gain, self.offset)

    def set_correction(self, gain: torch.Tensor | None, offset: torch.Tensor | None) -> None:
        """Compensation: the accumulator becomes ``gain * acc + offset`` (per channel), folded into requantisation."""
        scale = self.quant.input_scale * self.quant.weight_scale
        bias = self.bias.detach().to(torch.float64) if self.bias is not None else torch.zeros_like(scale)
        gain = torch.ones_like(scale) if gain is None else gain.to(device=scale.device, dtype=torch.float64)
        offset = torch.zeros_like(scale) if offset is None else offset.to(device=scale.device, dtype=torch.float64)
        self.requant_scale = scale * gain
        self.requant_bias = bias + scale * offset
        self._scale32, self._bias32 = self.requant_scale.float(), self.requant_bias.float()
        self.gain, self.offset = gain, offset

    def lut_index(self, values: torch.Tensor) -> torch.Tensor:
        """LUT row/column index of operand values (int64)."""
        return values.long() + (128 if self.quant.scheme == "int8" else 0)

    # -- zero points (uint8) --------------------------------------------------------------------
    def zero_point_terms(self, codes: torch.Tensor) -> torch.Tensor:
        """``sum_k a w - sum_k (a - z_a)(w - z_w) = z_w[n] sum_k a + z_a sum_k w[k, n] - K z_a z_w[n]``."""
        window = self.window_sums(codes)  # (N, groups, ...) or (N, 1)
        per_group = self.weight.shape[0] // window.shape[1]
        window = window.repeat_interleave(per_group, dim=1) if per_group > 1 else window
        shape = (1, -1) + (1,) * (window.dim() - 2)
        zw = self.quant.weight_zero.to(torch.float64).view(shape)
        return window * zw + self._constant_zero_point_terms().view(shape)

    def _remove_zero_point_terms_(self, sums: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """``sums - zero_point_terms(codes)``, computed in place in ``sums``."""
        window = self.window_sums(codes)  # (N, g, ...)
        n, g = window.shape[:2]
        rest = tuple(window.shape[2:])
        grouped = sums.view(n, g, -1, *rest)
        zw = self.quant.weight_zero.to(torch.float64).view((1, g, -1) + (1,) * len(rest))
        grouped.addcmul_(window.unsqueeze(2), zw, value=-1.0)
        return sums.sub_(self._constant_zero_point_terms().view((1, -1) + (1,) * len(rest)))

    def _constant_zero_point_terms(self) -> torch.Tensor:
        """``z_a sum_k w[k, n] - K z_a z_w[n]`` per output channel."""
        za = float(self.quant.input_zero)
        w = self.weight_codes.to(torch.float64).flatten(1)
        return za * w.sum(1) - w.shape[1] * za * self.quant.weight_zero.to(torch.float64)


class QuantConv2d(QuantLayer, nn.Conv2d):
    """A Conv2d with integer arithmetic; its weight and bias stay ordinary parameters."""

    @classmethod
    def from_float(cls, conv: nn.Conv2d, quant: LayerQuant) -> "QuantConv2d":
        """The quantised twin of ``conv`` (same hyper-parameters, same weights)."""
        layer = cls(
            conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
            dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None, padding_mode=conv.padding_mode,
        )
        layer.load_state_dict(conv.state_dict())
        layer._init_quant(quant)
        return layer.eval()

    def pad(self, codes: torch.Tensor) -> torch.Tensor:
        """Pad with the zero-point code (the code of a float zero)."""
        pads = self._reversed_padding_repeated_twice
        if not any(pads):
            return codes
        if self.padding_mode == "zeros":
            return F.pad(codes, pads, mode="constant", value=float(self.quant.input_zero))
        return F.pad(codes, pads, mode=self.padding_mode)

    def scaled_padded(self, x: torch.Tensor, factor: float) -> torch.Tensor:
        """A new float32 tensor ``pad(x) * factor`` (the layer's padding mode).

        Zero padding writes the product straight into the interior of a buffer whose borders are
        zeroed (0 * factor = 0: the same values as padding first), keeping ``x``'s memory format.
        """
        x = x.float()
        pads = self._reversed_padding_repeated_twice
        if not any(pads):
            return torch.mul(x, factor)
        if self.padding_mode != "zeros":
            return F.pad(x, pads, mode=self.padding_mode).mul_(factor)
        left, right, top, bottom = pads
        n, c, h, w = x.shape
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        out = torch.empty((n, c, h + top + bottom, w + left + right), dtype=torch.float32, device=x.device, memory_format=fmt)
        out[:, :, :top].zero_()
        out[:, :, top + h :].zero_()
        out[:, :, top : top + h, :left].zero_()
        out[:, :, top : top + h, left + w :].zero_()
        torch.mul(x, factor, out=out[:, :, top : top + h, left : left + w])
        return out

    def window_sums(self, codes: torch.Tensor) -> torch.Tensor:
        """Sum of the codes in every receptive field, per group: (N, groups, Ho, Wo) float64."""
        out_size = conv_output_size(codes.shape, tuple(self.weight.shape), self.stride, self.dilation, self.groups)
        return window_sums(codes, self.groups, self.kernel_size, self.stride, self.dilation, out_size)


class QuantLinear(QuantLayer, nn.Linear):
    """A Linear layer with integer arithmetic; its weight and bias stay ordinary parameters."""

    @classmethod
    def from_float(cls, linear: nn.Linear, quant: LayerQuant) -> "QuantLinear":
        """The quantised twin of ``linear``."""
        layer = cls(linear.in_features, linear.out_features, bias=linear.bias is not None)
        layer.load_state_dict(linear.state_dict())
        layer._init_quant(quant)
        return layer.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        out = QuantLayer.forward(self, x.reshape(-1, x.shape[-1]))
        return out.reshape(*lead, out.shape[-1])

    def pad(self, codes: torch.Tensor) -> torch.Tensor:
        """Linear layers have no padding."""
        return codes

    def scaled_padded(self, x: torch.Tensor, factor: float) -> torch.Tensor:
        """A new float32 tensor ``x * factor`` (linear layers have no padding)."""
        return torch.mul(x.float(), factor)

    def window_sums(self, codes: torch.Tensor) -> torch.Tensor:
        """Sum of each row's codes: (N, 1) float64."""
        return codes.to(torch.float64).sum(1, keepdim=True)


def exact_accumulator(layer: Any, sums: torch.Tensor, remove_zero_points: Callable[[torch.Tensor], torch.Tensor]
                      ) -> torch.Tensor:
    """A layer's LUT-product sums as its exact accumulator: in float64 with the layer's injected error added and, for
    uint8, its zero-point terms removed (``remove_zero_points``); int8 sums without injection as they are."""
    if layer.noise is None and layer.quant.scheme == "int8":
        return sums
    sums = sums.to(torch.float64)
    if layer.noise is not None:
        sums = sums + layer.noise(layer, sums)
    if layer.quant.scheme == "uint8":
        sums = remove_zero_points(sums)
    return sums

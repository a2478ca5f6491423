"""The quantised product of two activations: attention's Q K^T and softmax(.) V as emulated GEMMs.

The template of :mod:`objectives.qlayers`, with two activation operands and no weight: both operands
are quantised per tensor (scales calibrated like any layer input: int8 symmetric, so a softmax output,
never negative, takes the codes 0..127 and the multiplier's sign bit stays idle; uint8 with zero points,
0 for a softmax output, so it takes all 256 codes), every product is the LUT entry of (first operand:
row, second operand: column), the sums are exact, the zero-point terms are removed exactly, and the
accumulator is requantised with the product of the two scales. Compensation is per head (dimension 1
of a (batch, heads, rows, columns) product; one for any other shape): a gain and an offset folded into
the requantisation, as in conv/linear layers. No weight exists, so there is no weight tuning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Sequence

import torch
from torch import nn

from .kernels import get_kernel
from .qlayers import exact_accumulator


@dataclass(frozen=True)
class MatmulQuant:
    """Per-tensor quantisation of both operands: scale and zero point of each."""

    scheme: str
    first_scale: float
    first_zero: int
    second_scale: float
    second_zero: int


class MatmulCodes(NamedTuple):
    """The integer codes of one product's operands (float32 tensors holding integers), batch dims expanded."""

    first: torch.Tensor  # (..., M, K): LUT rows
    second: torch.Tensor  # (..., K, N): LUT columns

    @property
    def shape(self) -> torch.Size:
        """The first operand's shape (its dimension 0 counts images, like a conv input's)."""
        return self.first.shape

    def clone(self) -> "MatmulCodes":
        return MatmulCodes(self.first.clone(), self.second.clone())

    @staticmethod
    def cat(parts: Sequence["MatmulCodes"]) -> "MatmulCodes":
        """Batches joined along dimension 0."""
        return MatmulCodes(torch.cat([p.first for p in parts]), torch.cat([p.second for p in parts]))


class MatmulArithmetic:
    """Sums of LUT products of two operand matrices through one kernel (nothing to prepare: no weight)."""

    def __init__(self, kernel: Any, label: str = "") -> None:
        self.kernel = kernel
        self.label = label

    def matmul(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Checked operands -> float64 exact sums, (..., M, N)."""
        return self.kernel.matmul(first, second)

    def sums(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """The layer's own codes (in range by construction) -> exact sums, float32 where exact there."""
        return self.kernel.matmul_sums(first, second)


class QuantMatmul(nn.Module):
    """A product of two activations with integer arithmetic (see the module docstring)."""

    kind = "matmul"

    def __init__(self, quant: MatmulQuant, heads: int = 1) -> None:
        super().__init__()
        from .qlayers import code_range

        self.quant = quant
        self.heads = int(heads)
        self._lo, self._hi = code_range(quant.scheme)
        self.noise: Callable[[Any, torch.Tensor], torch.Tensor] | None = None
        self.observers: list = []
        # per-head compensation; buffers, so they move with the module
        self.register_buffer("gain", torch.ones(self.heads, dtype=torch.float64), persistent=False)
        self.register_buffer("offset", torch.zeros(self.heads, dtype=torch.float64), persistent=False)
        self.arithmetic = self.exact_arithmetic()
        self.set_correction(None, None)

    @classmethod
    def from_float(cls, module: nn.Module, quant: MatmulQuant, heads: int = 1) -> "QuantMatmul":
        """The quantised twin of a :class:`~objectives.attention.Matmul`."""
        return cls(quant, heads).eval()

    # -- the template ---------------------------------------------------------------------------
    def forward(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        a = self._quantize(first, self.quant.first_scale, self.quant.first_zero)
        b = self._quantize(second, self.quant.second_scale, self.quant.second_zero)
        batch = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        codes = MatmulCodes(a.expand(*batch, *a.shape[-2:]), b.expand(*batch, *b.shape[-2:]))
        for observer in self.observers:
            observer(self, codes)
        return self.requantize(self.accumulate(codes))

    def _quantize(self, x: torch.Tensor, scale: float, zero: int) -> torch.Tensor:
        t = torch.mul(x.float(), 1.0 / scale).round_()
        if zero:
            t.add_(zero)
        return t.clamp_(self._lo, self._hi)

    def accumulate(self, codes: MatmulCodes) -> torch.Tensor:
        """Exact integer accumulator (..., M, N): LUT-product sums, injected error, zero-point terms removed."""
        return exact_accumulator(self, self.arithmetic.sums(codes.first.contiguous(), codes.second.contiguous()),
                                 lambda sums: sums - self._zero_point_terms(codes))

    def requantize(self, acc: torch.Tensor) -> torch.Tensor:
        """Accumulator -> float32 output: the product of the operand scales, with compensation per head."""
        out = acc.float()
        if self.heads > 1 and out.dim() >= 4 and out.shape[1] == self.heads:
            shape = (1, -1) + (1,) * (out.dim() - 2)
            return torch.addcmul(self._bias32.view(shape), out, self._scale32.view(shape), out=out)
        return out.mul_(self._scale32[0]).add_(self._bias32[0])

    # -- views for statistics and compensation ---------------------------------------------------
    def channel_layout(self, t: torch.Tensor) -> torch.Tensor:
        """An output-shaped tensor (batch, ..., M, N) as (batch, heads, positions): heads are the channels."""
        heads = self.heads if t.dim() >= 4 and t.shape[1] == self.heads else 1
        return t.reshape(t.shape[0], heads, -1)

    def products(self, codes: MatmulCodes, arithmetic: MatmulArithmetic | None = None) -> torch.Tensor:
        """Sums over K of LUT products of raw codes (``arithmetic`` default: the layer's), (batch, heads, M N) float64."""
        arithmetic = arithmetic or self.arithmetic
        return self.channel_layout(arithmetic.matmul(codes.first.contiguous(), codes.second.contiguous()))

    def zero_point_terms(self, codes: MatmulCodes) -> torch.Tensor:
        """``sum_k a b - sum_k (a - z_a)(b - z_b)`` per output, laid out like :meth:`products`."""
        return self.channel_layout(self._zero_point_terms(codes))

    def _zero_point_terms(self, codes: MatmulCodes) -> torch.Tensor:
        za, zb = float(self.quant.first_zero), float(self.quant.second_zero)
        k = codes.first.shape[-1]
        rows = codes.first.to(torch.float64).sum(-1, keepdim=True)  # (..., M, 1)
        cols = codes.second.to(torch.float64).sum(-2, keepdim=True)  # (..., 1, N)
        return rows * zb + cols * za - k * za * zb

    @staticmethod
    def join_codes(parts: Sequence[MatmulCodes]) -> MatmulCodes:
        """Captured batches of codes as one."""
        return MatmulCodes.cat(parts)

    def lut_index(self, values: torch.Tensor) -> torch.Tensor:
        """LUT row/column index of operand values (int64)."""
        return values.long() + (128 if self.quant.scheme == "int8" else 0)

    def zero_crossing(self) -> torch.Tensor:
        """Per head, the accumulator at which the output is 0 (no bias: 0)."""
        return torch.zeros(self.heads, dtype=torch.float64, device=self.gain.device)

    # -- configuration --------------------------------------------------------------------------
    def exact_arithmetic(self) -> MatmulArithmetic:
        """The exact multiplier of the layer's scheme, on its device."""
        from multipliers import exact_lut

        signed = self.quant.scheme == "int8"
        return MatmulArithmetic(get_kernel(exact_lut(signed), signed, device=self.gain.device), "exact")

    def arithmetic_for(self, kernel: Any, weights: Any = None, label: str = "") -> MatmulArithmetic:
        """Arithmetic through ``kernel`` (there are no weights to tune)."""
        return MatmulArithmetic(kernel, label)

    def move_quant_state(self) -> None:
        """After the module moved: exact arithmetic and compensation on the new device."""
        self.arithmetic = self.exact_arithmetic()
        self.set_correction(self.gain, self.offset)

    def set_correction(self, gain: torch.Tensor | None, offset: torch.Tensor | None) -> None:
        """Compensation per head: the accumulator becomes ``gain * acc + offset``, folded into requantisation."""
        device = self.gain.device
        ones = torch.ones(self.heads, dtype=torch.float64, device=device)
        gain = ones if gain is None else gain.to(device=device, dtype=torch.float64).expand(self.heads).clone()
        offset = ones * 0 if offset is None else offset.to(device=device, dtype=torch.float64).expand(self.heads).clone()
        scale = self.quant.first_scale * self.quant.second_scale
        self.requant_scale = scale * gain
        self.requant_bias = scale * offset
        self._scale32, self._bias32 = self.requant_scale.float(), self.requant_bias.float()
        self.gain, self.offset = gain, offset

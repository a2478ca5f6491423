"""The product-kernel abstraction: layers whose every product is read from a multiplier's LUT."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ._operands import check_operands, check_table, conv_output_size, pair, weight_4d

def same_device(a: torch.device, b: torch.device) -> bool:
    """Whether two devices are one (``cuda`` means the current CUDA device, as ``cuda:N`` names it)."""
    if a.type != b.type:
        return False
    if a.index is None or b.index is None:
        current = torch.cuda.current_device() if a.type == "cuda" else 0
        return (a.index if a.index is not None else current) == (b.index if b.index is not None else current)
    return a.index == b.index


#: The paths :func:`make_kernel` knows.
METHODS = ("auto", "exact", "lowrank", "gather", "reference")


@dataclass(eq=False)
class PreparedWeight:
    """A layer's weight as a kernel needs it; opaque to callers, who cache it per layer.

    ``shape`` is the 4-D weight shape (O, C/groups, kh, kw) (a linear weight (O, K) is held as
    (O, K, 1, 1)), ``linear`` whether it came in as 2-D. ``cache`` holds what depends on call
    arguments (the group count) and is filled on first use.
    """

    method: str
    shape: tuple[int, int, int, int]
    linear: bool
    device: torch.device
    data: dict[str, Any] = field(default_factory=dict)
    cache: dict[Any, Any] = field(default_factory=dict)


class ProductKernel(ABC):
    """Conv2d/linear arithmetic with every product looked up in a LUT, summed exactly.

    ``lut[a + off, w + off]`` is the product of activation ``a`` and weight ``w`` with
    ``off = 128`` for signed kernels (operand values -128..127) and 0 for unsigned ones (codes
    0..255). Inputs and weights are torch tensors of integer operand values (any float or int
    dtype). Results are **float64** tensors holding, for every output, exactly
    ``sum lut[a, w]`` over its receptive field (or over K): the values are integers, exact in
    float64 (every path checks its intermediate bounds). Tensors stay on their device.

    Use: ``prepared = kernel.prepare_weight(w)`` once per layer (cache it), then
    ``kernel.conv2d(x, prepared, stride, dilation, groups)`` with ``x`` already padded (there
    is no implicit padding: pad with the operand value your layer pads with, usually 0), or
    ``kernel.linear(x, prepared)``.
    """

    #: The path name: "exact", "lowrank", "gather" or "reference".
    method: str = ""

    def __init__(self, lut: np.ndarray, signed: bool) -> None:
        self._lut = check_table(lut)
        self._signed = bool(signed)
        self._key = (type(self).__name__, self._signed, hashlib.sha256(self._lut.tobytes()).hexdigest())

    @property
    def lut(self) -> np.ndarray:
        """The table (read-only int64 (256, 256))."""
        return self._lut

    @property
    def signed(self) -> bool:
        return self._signed

    def __repr__(self) -> str:
        kind = "signed" if self.signed else "unsigned"
        return f"{type(self).__name__}({kind}{self._describe()})"

    def _describe(self) -> str:
        return ""

    # -- public API ----------------------------------------------------------------------------
    def prepare_weight(self, w: torch.Tensor) -> PreparedWeight:
        """Prepare a conv (O, C/groups, kh, kw) or linear (O, K) weight of operand values."""
        check_operands(w, self.signed, "weight")
        w4, linear = weight_4d(w)
        prepared = PreparedWeight(self.method, tuple(int(s) for s in w4.shape), linear, w.device)  # type: ignore[arg-type]
        prepared.data["key"] = self._key
        self._prepare(w4, prepared)
        return prepared

    def conv2d(
        self,
        x: torch.Tensor,
        prepared: PreparedWeight,
        stride: int | tuple[int, int] = (1, 1),
        dilation: int | tuple[int, int] = (1, 1),
        groups: int = 1,
    ) -> torch.Tensor:
        """(N, C, H, W) padded input -> (N, O, Ho, Wo) float64 sums of LUT products."""
        check_operands(x, self.signed, "input")
        return self.sums(x, prepared, stride, dilation, groups).to(torch.float64)

    def sums(
        self,
        x: torch.Tensor,
        prepared: PreparedWeight,
        stride: int | tuple[int, int] = (1, 1),
        dilation: int | tuple[int, int] = (1, 1),
        groups: int = 1,
    ) -> torch.Tensor:
        """:meth:`conv2d` for operands in range by construction: no value check, the path's own dtype.

        The caller guarantees ``x`` holds integer operand values of the kernel's signedness (a
        quantised layer's codes are rounded and clamped, so they do); values outside break
        exactness silently. The sums are exact integers, in float32 where the layer's bound keeps
        every one below 2^24 and else in float64, possibly a non-contiguous view (e.g. of a
        channels-last result); only shapes are checked.
        """
        self._check_prepared(prepared)
        stride, dilation = pair(stride, "stride"), pair(dilation, "dilation")
        ho, wo = conv_output_size(x.shape, prepared.shape, stride, dilation, int(groups))
        if not same_device(x.device, prepared.device):
            raise ValueError(f"input is on {x.device}, the prepared weight on {prepared.device}")
        if x.shape[0] == 0:
            return torch.zeros((0, prepared.shape[0], ho, wo), dtype=torch.float64, device=x.device)
        return self._conv2d(x, prepared, stride, dilation, int(groups), (ho, wo))

    def linear(self, x: torch.Tensor, prepared: PreparedWeight) -> torch.Tensor:
        """(N, K) input -> (N, O) float64 sums of LUT products."""
        check_operands(x, self.signed, "input")
        return self.linear_sums(x, prepared).to(torch.float64)

    def linear_sums(self, x: torch.Tensor, prepared: PreparedWeight) -> torch.Tensor:
        """:meth:`linear` for operands in range by construction (see :meth:`sums`)."""
        self._check_prepared(prepared)
        if x.dim() != 2 or x.shape[1] != prepared.shape[1] or prepared.shape[2:] != (1, 1):
            raise ValueError(
                f"linear needs input (N, K) and a (O, K) weight; got {tuple(x.shape)} and {prepared.shape}"
            )
        y = self.sums(x.reshape(x.shape[0], x.shape[1], 1, 1), prepared)
        return y.reshape(x.shape[0], prepared.shape[0])

    def matmul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Product of two operand matrices, (..., M, K) x (..., K, N) -> (..., M, N) float64 sums of LUT products.

        Neither operand is a weight: ``a`` is the LUT's row operand, ``b`` its column operand, and both
        change from call to call (attention's Q K^T and softmax(.) V). Leading (batch) dimensions must be
        equal (expand broadcast operands first).
        """
        check_operands(a, self.signed, "first operand")
        check_operands(b, self.signed, "second operand")
        return self.matmul_sums(a, b).to(torch.float64)

    def matmul_sums(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """:meth:`matmul` for operands in range by construction (see :meth:`sums`): float32 where exact there."""
        if a.dim() < 2 or b.dim() < 2 or a.shape[:-2] != b.shape[:-2] or a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul needs operands (..., M, K) and (..., K, N) with equal leading dimensions; "
                             f"got {tuple(a.shape)} and {tuple(b.shape)}")
        if not same_device(a.device, b.device):
            raise ValueError(f"the first operand is on {a.device}, the second on {b.device}")
        batch, (m, k), n = a.shape[:-2], a.shape[-2:], b.shape[-1]
        if a.numel() == 0 or b.numel() == 0:
            return torch.zeros((*batch, m, n), dtype=torch.float64, device=a.device)
        out = self._matmul(a.reshape(-1, m, k), b.reshape(-1, k, n))
        return out.reshape(*batch, m, n)

    def _check_prepared(self, prepared: PreparedWeight) -> None:
        if not isinstance(prepared, PreparedWeight) or prepared.data.get("key") != self._key:
            raise ValueError("the weight was not prepared by this kernel (call kernel.prepare_weight)")

    # -- for implementations -------------------------------------------------------------------
    @abstractmethod
    def _prepare(self, w: torch.Tensor, prepared: PreparedWeight) -> None:
        """Fill ``prepared.data`` for the 4-D weight ``w`` (checked operand values)."""

    @abstractmethod
    def _conv2d(
        self,
        x: torch.Tensor,
        prepared: PreparedWeight,
        stride: tuple[int, int],
        dilation: tuple[int, int],
        groups: int,
        out_size: tuple[int, int],
    ) -> torch.Tensor:
        """The checked conv: padded input, geometry validated; exact sums, float32 (all below 2^24) or float64."""

    @abstractmethod
    def _matmul(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(G, M, K) x (G, K, N) operand values -> (G, M, N) exact sums, float32 (all below 2^24) or float64."""

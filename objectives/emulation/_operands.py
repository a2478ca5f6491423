"""Operand conventions: value ranges, LUT offsets, validation and conv geometry."""

from __future__ import annotations

import numpy as np
import torch

from multipliers._record import LUT_SHAPE


def offset(signed: bool) -> int:
    """LUT index of operand value 0: 128 for signed designs (values -128..127), else 0 (codes 0..255)."""
    return 128 if signed else 0


def value_range(signed: bool) -> tuple[int, int]:
    """Smallest and largest operand value."""
    return (-128, 127) if signed else (0, 255)


def check_table(lut: np.ndarray) -> np.ndarray:
    """A LUT as a read-only int64 (256, 256) array (integers only)."""
    table = np.asarray(lut)
    if table.shape != LUT_SHAPE:
        raise ValueError(f"LUT must have shape {LUT_SHAPE}, got {table.shape}")
    if table.dtype.kind == "f":
        if not (np.all(np.isfinite(table)) and np.all(table == np.round(table))):
            raise ValueError("LUT must hold integers")
    elif table.dtype.kind not in "iub":
        raise ValueError(f"LUT must hold integers, got dtype {table.dtype}")
    if np.abs(table.astype(np.float64)).max() >= 2.0**40:
        raise ValueError("LUT values are too large for an 8x8 multiplier")
    table = table.astype(np.int64)
    table.setflags(write=False)
    return table


def check_operands(t: torch.Tensor, signed: bool, what: str) -> torch.Tensor:
    """Raise ValueError unless ``t`` holds integer operand values of the kernel's signedness."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{what} must be a torch tensor, got {type(t).__name__}")
    if t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{what} must hold integer operand values, got dtype {t.dtype}")
    if t.numel() == 0:
        return t
    lo, hi = value_range(signed)
    t_min, t_max = torch.aminmax(t)
    t_min, t_max = float(t_min), float(t_max)
    if t.is_floating_point() and not torch.equal(t, torch.round(t)):
        raise ValueError(f"{what} must hold integer operand values (got non-integers)")
    if t_min < lo or t_max > hi:
        kind = "signed" if signed else "unsigned"
        raise ValueError(f"{what} holds values {t_min:g}..{t_max:g}, outside the {kind} operand range {lo}..{hi}")
    return t


def codes(t: torch.Tensor, signed: bool, dtype: torch.dtype = torch.int64) -> torch.Tensor:
    """LUT indices (value + offset) of operand values ``t``."""
    out = t.to(dtype)
    return out + offset(signed) if signed else out


def pair(v: int | tuple[int, int] | list[int], what: str) -> tuple[int, int]:
    """``v`` as a pair of positive ints."""
    if isinstance(v, (int, np.integer)):
        p = (int(v), int(v))
    else:
        p = tuple(int(i) for i in v)
    if len(p) != 2 or min(p) < 1:
        raise ValueError(f"{what} must be a positive int or a pair of them, got {v!r}")
    return p  # type: ignore[return-value]


def weight_4d(w: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """A conv (O, C/groups, kh, kw) or linear (O, K) weight as 4-D, and whether it was linear."""
    if w.dim() == 2:
        return w.reshape(w.shape[0], w.shape[1], 1, 1), True
    if w.dim() == 4:
        return w, False
    raise ValueError(f"weight must be (O, C/groups, kh, kw) or (O, K), got shape {tuple(w.shape)}")


def conv_output_size(
    x_shape: torch.Size, w_shape: tuple[int, int, int, int], stride: tuple[int, int], dilation: tuple[int, int], groups: int
) -> tuple[int, int]:
    """Check a conv's shapes (the input is already padded) and return (Ho, Wo)."""
    if len(x_shape) != 4:
        raise ValueError(f"conv2d input must be (N, C, H, W), got shape {tuple(x_shape)}")
    n, c, h, w = x_shape
    o, cg, kh, kw = w_shape
    if groups < 1 or c % groups or o % groups:
        raise ValueError(f"groups={groups} must divide input channels {c} and output channels {o}")
    if c // groups != cg:
        raise ValueError(f"input has {c} channels; with groups={groups} the weight needs {c // groups} per group, has {cg}")
    ho = (h - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"input {h}x{w} is smaller than the (dilated) kernel {kh}x{kw}")
    return ho, wo

"""Exact integer arithmetic in floating point: bounds, limb splitting, IEEE-only settings.

A float32 GEMM/convolution of integer operands is exact when every partial sum is an integer
of magnitude below 2^24, whatever order the backend adds in: any partial sum is bounded by the
sum of the absolute values of all terms, which is what :func:`partial_sum_bound` computes per
output. Where the bound is too large, the weight-side operand is split into limbs
``v = sum_l 2^(b l) v_l`` (:func:`split_limbs`), each limb is a separate output block of the same
GEMM, and the blocks are recombined in float64 (exact below 2^53).

The backend must also do IEEE float32 arithmetic: TF32 (the cuDNN default for convolutions) or
bf16 "fast math" would round, and FFT/Winograd convolution algorithms are not exact either.
:func:`ieee_arithmetic` switches those off for the duration of a call (it touches global torch
flags, so it is not thread safe with concurrent code that changes them).
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

#: Integers of magnitude below this are added exactly in float32.
FLOAT32_EXACT = 1 << 24
#: ... and in float64.
FLOAT64_EXACT = 1 << 53
#: More limbs than this and the GEMM runs in float64 instead (one limb).
MAX_LIMBS = 4

# (module path under torch.backends, attribute) of the new-style precision knobs.
_PRECISION_KNOBS = ("cuda.matmul", "mkldnn.matmul", "mkldnn.conv", "cudnn.conv")


def _knob(path: str):
    obj = torch.backends
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj if hasattr(obj, "fp32_precision") else None


@contextlib.contextmanager
def ieee_arithmetic(device: torch.device) -> Iterator[None]:
    """Run float32 matmuls/convolutions in plain IEEE arithmetic on ``device``.

    Sets every ``fp32_precision`` knob to ``"ieee"`` (legacy ``allow_tf32`` flags on older torch),
    disables cuDNN on CUDA (its heuristics may pick FFT or Winograd algorithms; the native CUDA
    convolution is im2col + cuBLAS GEMM) and NNPACK on CPU (Winograd/FFT too; PyTorch prefers
    oneDNN's direct convolution anyway). Everything is restored on exit.
    """
    saved: list[tuple[object, str, object]] = []

    def set_attr(obj: object, name: str, value: object) -> None:
        saved.append((obj, name, getattr(obj, name)))
        setattr(obj, name, value)

    try:
        knobs = [_knob(p) for p in _PRECISION_KNOBS]
        if any(k is not None for k in knobs):
            for knob in knobs:
                if knob is not None and knob.fp32_precision != "ieee":
                    set_attr(knob, "fp32_precision", "ieee")
        else:  # pragma: no cover - torch without the new precision API
            set_attr(torch.backends.cuda.matmul, "allow_tf32", False)
            set_attr(torch.backends.cudnn, "allow_tf32", False)
        if device.type == "cuda" and torch.backends.cudnn.enabled:
            set_attr(torch.backends.cudnn, "enabled", False)
        nnpack_was = torch._C._get_nnpack_enabled()
        if nnpack_was:
            torch._C._set_nnpack_enabled(False)
        try:
            yield
        finally:
            if nnpack_was:
                torch._C._set_nnpack_enabled(True)
    finally:
        for obj, name, value in reversed(saved):
            setattr(obj, name, value)


def partial_sum_bound(abs_terms: torch.Tensor, reduce_dims: tuple[int, ...]) -> float:
    """Largest, over outputs, sum of absolute term bounds over ``reduce_dims`` (as a float)."""
    if abs_terms.numel() == 0:
        return 0.0
    return float(abs_terms.to(torch.float64).sum(dim=reduce_dims).max())


def split_limbs(values: torch.Tensor, limbs: int) -> tuple[list[torch.Tensor], int]:
    """Split integers (int64 tensor) into ``limbs`` limbs of ``b`` bits: ``v = sum_l 2^(b l) v_l``.

    Lower limbs hold ``v mod 2^b`` (0..2^b-1); the top limb holds the signed rest. Returns the
    limbs (lowest first) and ``b``.
    """
    if limbs == 1:
        return [values], 0
    top = int(values.abs().max()) if values.numel() else 0
    bits = max(top.bit_length(), 1)
    b = -(-bits // limbs)
    out, rest = [], values
    for _ in range(limbs - 1):
        low = torch.remainder(rest, 1 << b)
        out.append(low)
        rest = torch.div(rest - low, 1 << b, rounding_mode="floor")
    out.append(rest)
    return out, b

"""Integer-valued convolution/GEMM in floating point, exact under the bounds of ``_precision``.

On CPU this is ``torch.nn.functional.conv2d`` (oneDNN's direct convolution; NNPACK, which has
Winograd/FFT algorithms, is switched off). Elsewhere it is im2col (``unfold``) and one batched
matmul, which is a plain GEMM on every backend (cuDNN's algorithm heuristics are avoided). Both
run inside :func:`~._precision.ieee_arithmetic`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ._precision import ieee_arithmetic

#: "conv": F.conv2d; "unfold": im2col + matmul; None: "conv" on CPU, "unfold" elsewhere.
VIA: str | None = None


def uses_conv(device: torch.device, via: str | None = None) -> bool:
    """Whether :func:`integer_conv2d` takes ``F.conv2d`` on ``device`` (else im2col + matmul)."""
    return (via or VIA or ("conv" if device.type == "cpu" else "unfold")) == "conv"


def integer_conv2d(
    x: torch.Tensor,
    w: torch.Tensor,
    stride: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    out_size: tuple[int, int],
    via: str | None = None,
) -> torch.Tensor:
    """conv2d (no padding) of float tensors holding integers; (N, O, Ho, Wo) in their dtype."""
    via = via or VIA or ("conv" if x.device.type == "cpu" else "unfold")
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    with ieee_arithmetic(x.device):
        if kh == h and kw == wd and groups == 1:  # one output position: a plain GEMM
            y = F.linear(x.reshape(n, c * h * wd), w.reshape(o, cg * kh * kw))
            return y.reshape(n, o, 1, 1)
        if via == "conv":
            return F.conv2d(x, w, None, stride, 0, dilation, groups)
        if via != "unfold":
            raise ValueError(f"via must be 'conv' or 'unfold', got {via!r}")
        cols = F.unfold(x, (kh, kw), dilation=dilation, stride=stride)  # (N, C kh kw, L)
        cols = cols.reshape(n, groups, cg * kh * kw, -1)
        y = torch.matmul(w.reshape(groups, o // groups, cg * kh * kw), cols)  # (N, g, O/g, L)
        return y.reshape(n, o, *out_size)

"""Receptive-field indices, im2col style, built from a channels-last copy of the input codes.

Within a group the receptive field is flattened as (kernel row i, kernel column j, channel c),
``k = (i kw + j) Cg + c``: channels innermost, so every copy runs over contiguous channels-last
memory (an NCHW-ordered im2col of the same size is many times slower on CPU).
"""

from __future__ import annotations

import torch


def channels_last(x_codes: torch.Tensor, dtype: torch.dtype = torch.int32) -> torch.Tensor:
    """(N, C, H, W) codes -> contiguous (N, H, W, C) of ``dtype``."""
    return x_codes.to(dtype).permute(0, 2, 3, 1).contiguous()


def tap_rows(
    cl: torch.Tensor,
    taps: list[int],
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    out_size: tuple[int, int],
    table_rows: bool = True,
) -> torch.Tensor:
    """Indices of the receptive-field elements of kernel taps ``taps`` (tap = i kw + j).

    ``cl`` is the channels-last (N, H, W, C) int tensor of LUT indices (0..255) of a padded input.
    Returns a contiguous (N, Ho, Wo, groups, len(taps) Cg) tensor of ``cl``'s dtype holding
    ``(grp K + k) * 256 + code`` (the row of a per-layer table stacked by group, K = Cg kh kw)
    with ``table_rows``, else the codes themselves.
    """
    n, _, _, c = cl.shape
    kh, kw = kernel_size
    cg = c // groups
    ho, wo = out_size
    k_total = kh * kw * cg
    sn, sh, sw, sc = cl.stride()
    out = torch.empty((n, ho, wo, groups, len(taps), cg), dtype=cl.dtype, device=cl.device)
    channel = torch.arange(cg, device=cl.device, dtype=cl.dtype)
    group = torch.arange(groups, device=cl.device, dtype=cl.dtype).view(groups, 1)
    for t, tap in enumerate(taps):
        i, j = divmod(tap, kw)
        patch = cl.as_strided(
            (n, ho, wo, groups, cg),
            (sn, sh * stride[0], sw * stride[1], cg * sc, sc),
            cl.storage_offset() + i * dilation[0] * sh + j * dilation[1] * sw,
        )
        if table_rows:
            base = (group * k_total + tap * cg + channel) * 256  # (g, Cg)
            torch.add(patch, base, out=out[:, :, :, :, t, :])
        else:
            out[:, :, :, :, t, :].copy_(patch)
    return out.view(n, ho, wo, groups, len(taps) * cg)


def values_channels_last(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) operand values (any dtype) -> contiguous int32 (N, H, W, C), in one pass."""
    n, c, h, w = x.shape
    return torch.empty((n, h, w, c), dtype=torch.int32, device=x.device).copy_(x.permute(0, 2, 3, 1))


def bag_row_base(kernel_size: tuple[int, int], channels: int, groups: int, offset: int, device: torch.device) -> torch.Tensor:
    """int32 (g, kh, kw, Cg): ``(grp K + (i kw + j) Cg + c) * 256 + offset``, the table row of value 0 there."""
    kh, kw = kernel_size
    cg = channels // groups
    k = torch.arange(groups * kh * kw * cg, dtype=torch.int32, device=device)
    return (k * 256 + offset).view(groups, kh, kw, cg)


def bag_rows(
    cl: torch.Tensor,
    base: torch.Tensor,
    stride: tuple[int, int],
    dilation: tuple[int, int],
    out_size: tuple[int, int],
) -> torch.Tensor:
    """Table rows of every receptive-field element: contiguous int32 (N, Ho, Wo, g, K), one pass.

    ``cl`` is the channels-last int32 (N, H, W, C) of operand values of a padded input, ``base``
    from :func:`bag_row_base`; row = base + value, k = (i kw + j) Cg + c as in the module doc.
    """
    n = cl.shape[0]
    groups, kh, kw, cg = base.shape
    ho, wo = out_size
    sn, sh, sw, sc = cl.stride()
    patches = cl.as_strided(
        (n, ho, wo, groups, kh, kw, cg),
        (sn, sh * stride[0], sw * stride[1], cg * sc, sh * dilation[0], sw * dilation[1], sc),
        cl.storage_offset(),
    )
    out = torch.empty((n, ho, wo, groups, kh, kw, cg), dtype=torch.int32, device=cl.device)
    torch.add(patches, base, out=out)
    return out.view(n, ho, wo, groups, kh * kw * cg)


def window_sums(
    x: torch.Tensor,
    groups: int,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    out_size: tuple[int, int],
) -> torch.Tensor:
    """Sum of the operand values in every receptive field, per group: float64 (N, groups, Ho, Wo).

    ``x`` is a padded (N, C, H, W) tensor of integer values in [-255, 255] (any memory format).
    Channel sums run in float32 where exact (partial sums at most 255 C/groups < 2^24: no
    float64 copy of the input), the kernel taps as strided slice-adds on the small float64 result.
    """
    n, c, h, w = x.shape
    cg = c // groups
    dtype = torch.float32 if x.dtype == torch.float32 and 255 * cg < (1 << 24) else torch.float64
    per_group = x.to(dtype).view(n, groups, cg, h, w).sum(2).to(torch.float64)  # (N, g, H, W)
    (kh, kw), (sh, sw), (dh, dw), (ho, wo) = kernel_size, stride, dilation, out_size
    out = torch.zeros((n, groups, ho, wo), dtype=torch.float64, device=x.device)
    for i in range(kh):
        for j in range(kw):
            out += per_group[:, :, i * dh : i * dh + (ho - 1) * sh + 1 : sh, j * dw : j * dw + (wo - 1) * sw + 1 : sw]
    return out

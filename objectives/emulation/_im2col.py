"""Row indices of per-layer tables, im2col style, built in one strided pass."""

from __future__ import annotations

import torch


def table_rows(
    x_codes: torch.Tensor,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
    groups: int,
    out_size: tuple[int, int],
    dtype: torch.dtype = torch.int32,
) -> torch.Tensor:
    """``rows[n, ho, wo, grp, k] = (grp * K + k) * 256 + code`` for every receptive-field element.

    ``x_codes`` (N, C, H, W) holds LUT indices (0..255) of a padded input. Within a group the
    receptive field is flattened as (kernel row i, kernel column j, channel c), k = (i kw + j) Cg + c:
    channels innermost, so the copy runs over channels-last memory (an NCHW-ordered im2col of
    the same size is many times slower). Returns a contiguous (N, Ho, Wo, groups, K) tensor of
    ``dtype``, K = C/groups * kh * kw.
    """
    n, c, _, _ = x_codes.shape
    kh, kw = kernel_size
    cg = c // groups
    ho, wo = out_size
    channels_last = x_codes.to(dtype).permute(0, 2, 3, 1).contiguous()  # (N, H, W, C)
    sn, sh, sw, sc = channels_last.stride()
    patches = channels_last.as_strided(
        (n, ho, wo, groups, kh, kw, cg),
        (sn, sh * stride[0], sw * stride[1], cg * sc, sh * dilation[0], sw * dilation[1], sc),
    )
    k = kh * kw * cg
    base = (torch.arange(groups * k, device=x_codes.device, dtype=dtype) * 256).view(1, 1, 1, groups, kh, kw, cg)
    out = torch.empty((n, ho, wo, groups, kh, kw, cg), dtype=dtype, device=x_codes.device)
    torch.add(patches, base, out=out)
    return out.view(n, ho, wo, groups, k)

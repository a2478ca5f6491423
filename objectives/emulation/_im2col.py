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
    """``rows[n, grp, ho, wo, k] = k_global * 256 + code`` for every receptive-field element.

    ``x_codes`` (N, C, H, W) holds LUT indices (0..255) of a padded input. ``k_global`` is the
    element's position in the flattened weight (channel, kernel row, kernel column), counted
    across groups, so group ``grp`` reads rows ``grp * K * 256 ...`` of a table stacked by group.
    Returns a contiguous (N, groups, Ho, Wo, K) tensor of ``dtype``, K = C/groups * kh * kw.
    """
    n, c, _, _ = x_codes.shape
    kh, kw = kernel_size
    cg = c // groups
    ho, wo = out_size
    x_codes = x_codes.to(dtype).contiguous()
    sn, sc, sh, sw = x_codes.stride()
    patches = x_codes.as_strided(
        (n, groups, ho, wo, cg, kh, kw),
        (sn, cg * sc, sh * stride[0], sw * stride[1], sc, sh * dilation[0], sw * dilation[1]),
    )
    base = (torch.arange(c * kh * kw, device=x_codes.device, dtype=dtype) * 256).view(1, groups, 1, 1, cg, kh, kw)
    out = torch.empty((n, groups, ho, wo, cg, kh, kw), dtype=dtype, device=x_codes.device)
    torch.add(patches, base, out=out)
    return out.view(n, groups, ho, wo, cg * kh * kw)

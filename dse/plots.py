"""Matplotlib figures, rendered off-screen to PNG bytes (the caller writes them atomically)."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from multipliers import Multiplier


def _figure(width: float = 6.0, height: float = 5.0) -> "Figure":
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def png_bytes(figure: "Figure") -> bytes:
    """Render a figure to PNG bytes."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def error_heatmap(multiplier: "Multiplier") -> bytes:
    """Heat map of a design's error table e(a, w) = LUT - exact, rows the activation operand."""
    import numpy as np
    from matplotlib.colors import SymLogNorm

    errors = multiplier.error_table
    limit = max(1, int(np.abs(errors).max()))
    figure = _figure()
    axes = figure.add_subplot()
    lo, hi = (-128, 127) if multiplier.signed else (0, 255)
    image = axes.imshow(
        errors, origin="lower", cmap="RdBu_r", extent=(lo - 0.5, hi + 0.5, lo - 0.5, hi + 0.5),
        norm=SymLogNorm(linthresh=1.0, vmin=-limit, vmax=limit), interpolation="nearest",
    )
    axes.set_xlabel("weight operand w (column)")
    axes.set_ylabel("activation operand a (row)")
    kind = "signed" if multiplier.signed else "unsigned"
    axes.set_title(f"{multiplier.name} ({multiplier.family}, {kind}): error f(a, w) − a·w")
    figure.colorbar(image, ax=axes, label="error (product units, symmetric log scale)")
    return png_bytes(figure)

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


def distortion_scatter(records, summary) -> bytes:
    """Log-log scatter of predicted vs measured ||dC||_F, one panel per prediction level."""
    import numpy as np

    levels = [level for level in ("uniform", "histogram", "weight-aware") if any(r.level == level for r in records)]
    figure = _figure(4.2 * len(levels), 4.4)
    axes = figure.subplots(1, len(levels), squeeze=False)[0]
    for ax, level in zip(axes, levels):
        rows = [r for r in records if r.level == level and r.measured > 0 and r.predicted > 0]
        measured = np.array([r.measured for r in rows])
        predicted = np.array([r.predicted for r in rows])
        ax.loglog(measured, predicted, ".", ms=3, alpha=0.5)
        lo, hi = min(measured.min(), predicted.min()), max(measured.max(), predicted.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        stats = summary.get(level, {})
        ax.set_title(f"{level}\nmedian |rel err| {100 * stats.get('median_abs_rel_error', float('nan')):.1f}%, "
                     f"Spearman {stats.get('spearman', float('nan')):.3f}", fontsize=9)
        ax.set_xlabel("measured ||dC||_F (bit-exact emulation)")
        ax.set_ylabel("predicted ||dC||_F")
    return png_bytes(figure)


def injection_plots(result) -> tuple[bytes, bytes]:
    """Accuracy over the (bias, std) grid as a heat map, and accuracy against predicted distortion."""
    import numpy as np

    grid = result["grid"]
    means = sorted({r["mean"] for r in grid})
    stds = sorted({r["std"] for r in grid})
    accuracy = np.full((len(means), len(stds)), np.nan)
    for r in grid:
        accuracy[means.index(r["mean"]), stds.index(r["std"])] = r["top1"]
    heat = _figure(5.6, 4.6)
    ax = heat.add_subplot()
    image = ax.imshow(accuracy, origin="lower", cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(stds)), [f"{s:g}" for s in stds])
    ax.set_yticks(range(len(means)), [f"{m:g}" for m in means])
    ax.set_xlabel("error std per product (relative to product RMS)")
    ax.set_ylabel("error mean per product (relative)")
    for i in range(len(means)):
        for j in range(len(stds)):
            ax.text(j, i, f"{accuracy[i, j]:.1f}", ha="center", va="center", fontsize=7, color="w")
    ax.set_title(f"{result['network']}: top-1 (%) under injected errors")
    heat.colorbar(image, ax=ax, label="top-1 (%)")

    scatter = _figure(5.6, 4.4)
    ax = scatter.add_subplot()
    points = [r for r in grid if r["distortion"] > 0]
    share = np.array([r["mean"] ** 2 / (r["mean"] ** 2 + r["std"] ** 2) for r in points])
    sc = ax.scatter([r["distortion"] for r in points], [r["top1"] for r in points], c=share, cmap="coolwarm", vmin=0, vmax=1)
    ax.axhline(result["exact_top1"], color="k", lw=0.8, ls="--", label="exact int8")
    ax.set_xscale("log")
    ax.set_xlabel("predicted network distortion (RMS over layers of ||dC||/||C||)")
    ax.set_ylabel("top-1 (%)")
    ax.legend(loc="lower left")
    scatter.colorbar(sc, ax=ax, label="share of error power in the bias")
    return png_bytes(heat), png_bytes(scatter)

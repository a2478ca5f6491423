"""Plots of a front (PNG bytes): the front itself, the assignment heat map, predicted against measured drop."""

from __future__ import annotations

import re
import textwrap
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..plots import _figure, png_bytes
from .fidelity import prediction_fidelity
from .front import Front

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def front_plot(front: Front) -> bytes:
    """Energy saved against top-1 drop: surrogate front, every measurement, the confirmed front, exact."""
    figure = _figure(7.0, 5.0)
    axes = figure.add_subplot()
    right = 1.5 * max(front.max_drop, 0.1)  # points beyond are drawn at the edge as triangles
    if len(front.surrogate):
        shown = front.surrogate[front.surrogate[:, 1] <= right]
        axes.plot(shown[:, 1], shown[:, 0], ".", color="0.7", ms=3, label="surrogate front (predicted)")
    if front.measured:
        m = np.array([[p.drop, p.energy_saving] for p in front.measured])
        near = m[:, 0] <= right
        axes.plot(m[near, 0], m[near, 1], "o", mfc="none", color="tab:blue", label="measured")
        if (~near).any():
            axes.plot(np.full((~near).sum(), right), m[~near, 1], ">", mfc="none", color="tab:blue",
                      label=f"measured, drop > {right:g}")
    if front.points:
        f = np.array([[p.drop, p.energy_saving] for p in front.points])
        order = np.argsort(f[:, 0])
        axes.step(f[order, 0], f[order, 1], "-", where="post", color="tab:red", lw=1)
        axes.plot(f[:, 0], f[:, 1], "o", color="tab:red", label="confirmed front")
        held = [p for p in front.points if p.held_out_drop is not None]
        if held:  # each point's re-measurement on the held-out images, joined to it
            for p in held:
                axes.plot([p.drop, min(p.held_out_drop, right)], [p.energy_saving] * 2, "-", color="tab:orange", lw=0.8)
            h = np.array([[min(p.held_out_drop, right), p.energy_saving] for p in held])
            axes.plot(h[:, 0], h[:, 1], "D", mfc="none", color="tab:orange",
                      label=f"held out ({front.held_out_images} other images)")
    axes.plot([0], [0], "k*", ms=10, label=f"exact ({front.baseline_top1:.2f}% top-1)")
    axes.axvline(front.max_drop, color="0.5", ls="--", lw=0.8, label=f"max drop {front.max_drop:g}")
    axes.set_xlim(-0.05 * right, 1.04 * right)
    axes.set_xlabel("top-1 drop (points)")
    axes.set_ylabel("multiplier energy saved (%)")
    axes.set_title(f"{front.study}: energy saved against accuracy")
    axes.grid(alpha=0.3)
    handles, labels = axes.get_legend_handles_labels()
    system = np.array([[p.drop, p.system_energy_saving] for p in front.points if p.system_energy_saving is not None])
    if len(system):  # the same points' whole-accelerator saving, on its own scale (a few percent at most)
        twin = axes.twinx()
        order = np.argsort(system[:, 0])
        twin.step(system[order, 0], system[order, 1], "-", where="post", color="tab:green", lw=1)
        line, = twin.plot(system[:, 0], system[:, 1], "s", color="tab:green")
        twin.set_ylim(0, 1.15 * max(float(system[:, 1].max()), 1e-6))
        twin.set_ylabel(f"whole-accelerator energy saved (%), {front.system_accelerator}", color="tab:green")
        twin.tick_params(axis="y", colors="tab:green")
        handles.append(line)
        labels.append(f"confirmed front, system energy ({front.system_accelerator}, right axis)")
    axes.legend(handles, labels, loc="lower right", fontsize=8)
    return png_bytes(figure)


#: Characters per line of a design name in an assignment cell, and the font size (points) they are drawn at.
CELL_LINE_CHARS = 10
CELL_FONT = 5.0


def cell_label(name: str, width: int = CELL_LINE_CHARS) -> str:
    """A design name broken into lines at its underscores, each at most ``width`` characters where the name
    allows (a part longer than that keeps its own line); every character is kept (``optrunc_s_k2_kw3`` ->
    ``optrunc_s\n_k2_kw3``)."""
    parts = [part for part in re.split(r"(?=_)", name) if part]
    lines: list[str] = []
    for part in parts:
        if lines and len(lines[-1]) + len(part) <= width:
            lines[-1] += part
        else:
            lines.append(part)
    return "\n".join(lines)


def assignment_heatmap(front: Front, layers: Sequence[str], design_energy: dict[str, float]) -> bytes:
    """Layers x front points, coloured by the relative energy of each layer's design, names written in."""
    return png_bytes(assignment_figure(front, layers, design_energy))


def assignment_figure(front: Front, layers: Sequence[str], design_energy: dict[str, float]) -> "Figure":
    """The figure of :func:`assignment_heatmap`: each cell is sized to hold its design's whole name."""
    labels = [[cell_label(p.assignment.get(layer, "")) for p in front.points] for layer in layers]
    chars = max((len(line) for row in labels for label in row for line in label.split("\n")), default=1)
    rows = max((label.count("\n") + 1 for row in labels for label in row), default=1)
    # A character of the 5-point font is about 0.6 of its size wide; a line about 1.25 of it tall (72 points an inch).
    cell_width = max(0.9, 1.25 * chars * 0.6 * CELL_FONT / 72.0)
    cell_height = max(0.28, 1.3 * rows * 1.25 * CELL_FONT / 72.0)
    figure = _figure(max(5.0, 2.4 + cell_width * len(front.points)), max(3.0, 1.4 + cell_height * len(layers)))
    axes = figure.add_subplot()
    if not front.points:
        axes.text(0.5, 0.5, "no confirmed points yet", ha="center", va="center")
        return figure
    values = np.array([[design_energy.get(p.assignment.get(layer, ""), 1.0) for p in front.points] for layer in layers])
    image = axes.imshow(values, aspect="auto", cmap="viridis_r", vmin=0.0, vmax=1.0, interpolation="nearest")
    for i, row in enumerate(labels):
        for j, label in enumerate(row):
            axes.text(j, i, label, ha="center", va="center", fontsize=CELL_FONT, color="w", linespacing=1.0)
    axes.set_yticks(range(len(layers)), layers, fontsize=7)
    axes.set_xticks(range(len(front.points)), [f"#{j}\n{p.energy_saving:.0f}%\n{p.drop:.2f}" for j, p in enumerate(front.points)], fontsize=7)
    axes.set_xlabel("front point (energy saved, drop)")
    figure.colorbar(image, ax=axes, label="design energy relative to exact")
    axes.set_title(f"{front.study}: per-layer assignment along the front")
    return figure


def predicted_vs_measured(front: Front) -> bytes:
    """Predicted against measured top-1 drop of every measurement the search predicted."""
    figure = _figure(5.0, 5.0)
    axes = figure.add_subplot()
    shown = [p for p in front.measured if p.predicted_drop is not None]
    pairs = np.array([[p.predicted_drop, p.drop] for p in shown]).reshape(-1, 2)
    if len(pairs):
        roles = [p.role for p in shown]
        for role, marker in (("calibration", "s"), ("candidate", "o")):
            sel = np.array([r == role for r in roles])
            if sel.any():
                axes.plot(pairs[sel, 0], pairs[sel, 1], marker, mfc="none", label=role)
        with_interval = [i for i, p in enumerate(shown) if p.predicted_drop_low is not None and p.predicted_drop_high is not None]
        if with_interval:
            centre = pairs[with_interval, 0]
            low = np.array([shown[i].predicted_drop_low for i in with_interval])
            high = np.array([shown[i].predicted_drop_high for i in with_interval])
            axes.errorbar(centre, pairs[with_interval, 1], xerr=[np.maximum(centre - low, 0), np.maximum(high - centre, 0)],
                          fmt="none", ecolor="0.6", lw=0.8, capsize=2, label="predicted 80% interval")
        hi = max(1.0, float(np.nanmax(pairs)) * 1.05)
        axes.plot([0, hi], [0, hi], "k--", lw=0.8, label="measured = predicted")
        axes.fill_between([0, hi], [-1, hi - 1], [1, hi + 1], color="0.9", zorder=0, label="within 1 point")
        axes.set_xlim(0, hi)
        axes.set_ylim(min(0.0, float(np.nanmin(pairs[:, 1])) - 0.1), hi)
        axes.legend(fontsize=8)
    axes.set_xlabel("predicted top-1 drop (points)")
    axes.set_ylabel("measured top-1 drop (points)")
    record = "\n".join(textwrap.wrap(prediction_fidelity(front).short_text(), 62))  # the figure's width, at 9 pt
    axes.set_title(f"{front.study}: surrogate against real inference\n{record}", fontsize=9)
    axes.grid(alpha=0.3)
    return png_bytes(figure)

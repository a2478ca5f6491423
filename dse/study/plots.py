"""Plots of a front (PNG bytes): the front itself, the assignment heat map, predicted against measured drop."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..plots import _figure, png_bytes
from .front import Front


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
    axes.legend(loc="lower right", fontsize=8)
    return png_bytes(figure)


def assignment_heatmap(front: Front, layers: Sequence[str], design_energy: dict[str, float]) -> bytes:
    """Layers x front points, coloured by the relative energy of each layer's design, names written in."""
    figure = _figure(max(5.0, 1.0 + 0.9 * len(front.points)), max(3.0, 0.8 + 0.28 * len(layers)))
    axes = figure.add_subplot()
    if not front.points:
        axes.text(0.5, 0.5, "no confirmed points yet", ha="center", va="center")
        return png_bytes(figure)
    values = np.array([[design_energy.get(p.assignment.get(layer, ""), 1.0) for p in front.points] for layer in layers])
    image = axes.imshow(values, aspect="auto", cmap="viridis_r", vmin=0.0, vmax=1.0, interpolation="nearest")
    for i, layer in enumerate(layers):
        for j, p in enumerate(front.points):
            name = p.assignment.get(layer, "")
            axes.text(j, i, name.replace("_", "\u200b_")[:18], ha="center", va="center", fontsize=5, color="w")
    axes.set_yticks(range(len(layers)), layers, fontsize=7)
    axes.set_xticks(range(len(front.points)), [f"#{j}\n{p.energy_saving:.0f}%\n{p.drop:.2f}" for j, p in enumerate(front.points)], fontsize=7)
    axes.set_xlabel("front point (energy saved, drop)")
    figure.colorbar(image, ax=axes, label="design energy relative to exact")
    axes.set_title(f"{front.study}: per-layer assignment along the front")
    return png_bytes(figure)


def predicted_vs_measured(front: Front) -> bytes:
    """Predicted against measured top-1 drop of every measurement the search predicted."""
    figure = _figure(5.0, 5.0)
    axes = figure.add_subplot()
    pairs = np.array([[p.predicted_drop, p.drop] for p in front.measured if p.predicted_drop is not None]).reshape(-1, 2)
    if len(pairs):
        roles = [p.role for p in front.measured if p.predicted_drop is not None]
        for role, marker in (("calibration", "s"), ("candidate", "o")):
            sel = np.array([r == role for r in roles])
            if sel.any():
                axes.plot(pairs[sel, 0], pairs[sel, 1], marker, mfc="none", label=role)
        hi = max(1.0, float(np.nanmax(pairs)) * 1.05)
        axes.plot([0, hi], [0, hi], "k--", lw=0.8, label="measured = predicted")
        axes.legend(fontsize=8)
    axes.set_xlabel("predicted top-1 drop (points)")
    axes.set_ylabel("measured top-1 drop (points)")
    axes.set_title(f"{front.study}: surrogate against real inference")
    axes.grid(alpha=0.3)
    return png_bytes(figure)

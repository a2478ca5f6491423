"""The front's plots: the assignment heat map writes every design's whole name inside its cell."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from matplotlib.backends.backend_agg import FigureCanvasAgg
from hypothesis import strategies as st

from dse.study.front import Front, FrontPoint
from dse.study.plots import assignment_figure, assignment_heatmap, cell_label

LAYERS = ["conv1", "layer1.0.conv1", "layer3.2.conv2", "linear"]
#: Names as long as the zoo's and the EvoApprox library's, and longer imported ones.
NAMES = ["optrunc_s_k2_kw3", "optrunc_s_k1_kw3", "exact_s", "perf_s_s0_m4", "mul8u_2p7", "drum_s_k4",
         "imported_design_with_a_long_name", "averyveryverylongnamewithoutunderscores"]


def point(j: int, assignment: dict[str, str]) -> FrontPoint:
    return FrontPoint(60.0 - j, 40.0 - j, 80.0, 99.0, 0.1 * j, None, 2, assignment, "affine", "candidate", f"k{j}", j)


def front_of(assignments: list[dict[str, str]]) -> Front:
    points = [point(j, a) for j, a in enumerate(assignments)]
    return Front("study", 81.0, 5000, 2.0, points, points, np.zeros((0, 2)), [])


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=40))
@settings(max_examples=200, deadline=None)
def test_cell_labels_keep_every_character(name):
    label = cell_label(name)
    assert label.replace("\n", "") == name
    lines = label.split("\n")
    assert all(line for line in lines)
    pieces = [p for p in name.split("_")]
    longest_piece = max(len(p) + 1 for p in pieces)  # a part keeps its leading underscore
    assert max(len(line) for line in lines) <= max(10, longest_piece)


def test_the_name_that_was_cut_is_whole():
    assert cell_label("optrunc_s_k2_kw3") == "optrunc_s\n_k2_kw3"


@pytest.mark.parametrize("points", [1, 3, 9])
def test_every_name_is_whole_and_inside_its_cell(points):
    rng = np.random.default_rng(points)
    assignments = [{layer: NAMES[int(rng.integers(len(NAMES)))] for layer in LAYERS} for _ in range(points)]
    assignments[0] = {layer: NAMES[k % len(NAMES)] for k, layer in enumerate(LAYERS)}
    assignments[-1] = {layer: NAMES[-1 - k] for k, layer in enumerate(LAYERS)}
    front = front_of(assignments)
    figure = assignment_figure(front, LAYERS, {name: 0.5 for name in NAMES})
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    renderer = canvas.get_renderer()
    axes = figure.axes[0]
    texts = {(round(t.get_position()[0]), round(t.get_position()[1])): t for t in axes.texts}
    assert len(texts) == points * len(LAYERS)
    for (j, i), text in texts.items():
        assert text.get_text().replace("\n", "") == assignments[j][LAYERS[i]]
        box = text.get_window_extent(renderer)
        (x0, y0), (x1, y1) = axes.transData.transform([(j - 0.5, i - 0.5), (j + 0.5, i + 0.5)])
        left, right, bottom, top = min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)
        assert left <= box.x0 and box.x1 <= right, (assignments[j][LAYERS[i]], box, (left, right))
        assert bottom <= box.y0 and box.y1 <= top, (assignments[j][LAYERS[i]], box, (bottom, top))


def test_the_heatmap_renders_to_png_with_and_without_points():
    assert assignment_heatmap(front_of([{l: "optrunc_s_k2_kw3" for l in LAYERS}]), LAYERS, {}).startswith(b"\x89PNG")
    assert assignment_heatmap(front_of([]), LAYERS, {}).startswith(b"\x89PNG")

"""The study's own fidelity summary: its predictions against its measurements at small drops."""

from __future__ import annotations

import math

import numpy as np

from dse.study.fidelity import prediction_fidelity
from dse.study.front import Front, FrontPoint
from dse.study.render import front_table


def measured(drop: float, predicted: float | None, low: float | None = None, high: float | None = None) -> FrontPoint:
    return FrontPoint(50.0, 30.0, 80.0 - drop, 99.0, drop, predicted, 2, {"conv1": "d"}, "none", "candidate",
                      f"k{drop}-{predicted}", 1, predicted_drop_low=low, predicted_drop_high=high)


def front_of(points: list[FrontPoint]) -> Front:
    return Front("study", 80.0, 2000, 2.0, points[:1], points, np.zeros((0, 2)), [])


def test_counts_errors_and_coverage_of_the_small_drops_only():
    points = [
        measured(0.2, 0.3, 0.0, 0.5),  # error 0.1, inside
        measured(1.0, 1.6, 1.2, 2.0),  # error 0.6, outside (below the interval)
        measured(2.5, 1.0, 0.5, 3.0),  # error 1.5, inside
        measured(2.9, 2.9),  # error 0, no interval
        measured(5.0, 0.0, 0.0, 0.1),  # measured above 3 points: not counted
        measured(0.1, None),  # calibration point, no prediction: not counted
    ]
    fidelity = prediction_fidelity(front_of(points))
    assert fidelity.count == 4
    assert math.isclose(fidelity.median_error, 0.35)
    assert (fidelity.within_half, fidelity.within_one) == (2, 3)
    assert math.isclose(fidelity.largest_error, 1.5)
    assert (fidelity.with_interval, fidelity.covered) == (3, 2)
    assert math.isclose(fidelity.coverage, 2 / 3)
    assert "4 measured at <= 3 points" in fidelity.text() and "67% inside" in fidelity.text()
    assert prediction_fidelity(front_of(points), up_to=1.0).count == 2


def test_no_prediction_yet_says_so():
    fidelity = prediction_fidelity(front_of([measured(0.1, None)]))
    assert fidelity.count == 0 and fidelity.coverage is None
    assert "no measurement with a prediction" in fidelity.text()


def test_the_front_table_prints_it():
    table = front_table(front_of([measured(0.2, 0.3, 0.0, 0.5), measured(0.4, 1.5)]))
    assert table.splitlines()[-1] == ("surrogate against these measurements: 2 measured at <= 3 points: median "
                                      "|predicted - measured| 0.60, 1 within 0.5 point, 1 within 1, largest 1.10; "
                                      "100% inside the predicted 80% interval")


def test_the_plot_title_line_is_short_and_says_the_same():
    fidelity = prediction_fidelity(front_of([measured(0.2, 0.3, 0.0, 0.5), measured(0.4, 1.5)]))
    assert fidelity.short_text() == "measured ≤ 3 points: 1/2 within 1 point, median |error| 0.60, 100% in interval"
    assert prediction_fidelity(front_of([measured(0.1, None)])).short_text() == "no prediction at ≤ 3 points measured yet"

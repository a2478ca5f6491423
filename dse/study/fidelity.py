"""How well a study's surrogate predicted its own measurements where studies operate (small drops).

Every confirmed candidate carries the drop the surrogate predicted when it was picked, with its
interval; measured on the same images, the pair says whether the study's predictions can be trusted.
:func:`prediction_fidelity` sums that up over the measurements at or below a drop (3 points by
default): the median |predicted - measured|, how many lie within 0.5 and 1 point, the largest error,
and the share whose measured drop fell inside the predicted interval. ``dse run``, ``dse front``,
``dse report`` and ``predicted_vs_measured.png`` print it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .front import Front

#: Measured drops (points) the summary covers by default: where studies pick their points.
SMALL_DROP = 3.0


class Fidelity(NamedTuple):
    """The surrogate's predictions against the measurements at or below ``up_to`` points of drop."""

    up_to: float
    count: int  # measurements with a prediction and a measured drop <= up_to
    median_error: float  # median |predicted - measured|, points (nan when count is 0)
    within_half: int  # |predicted - measured| <= 0.5 point
    within_one: int  # |predicted - measured| <= 1 point
    largest_error: float
    with_interval: int  # of them, how many carry a predicted interval
    covered: int  # measured drop inside the predicted interval

    @property
    def coverage(self) -> float | None:
        """Share of the measurements inside their predicted interval (None: no intervals)."""
        return self.covered / self.with_interval if self.with_interval else None

    def text(self) -> str:
        """One line: ``18 measured at <= 3 points: median |predicted - measured| 0.23, ...``."""
        if not self.count:
            return f"no measurement with a prediction at <= {self.up_to:g} points of drop yet"
        line = (f"{self.count} measured at <= {self.up_to:g} points: median |predicted - measured| "
                f"{self.median_error:.2f}, {self.within_half} within 0.5 point, {self.within_one} within 1, largest "
                f"{self.largest_error:.2f}")
        if self.coverage is not None:
            line += f"; {self.coverage:.0%} inside the predicted 80% interval"
        return line

    def short_text(self) -> str:
        """The same, short enough for a plot title: ``measured ≤ 3 points: 18/18 within 1 point, ...``."""
        if not self.count:
            return f"no prediction at ≤ {self.up_to:g} points measured yet"
        line = (f"measured ≤ {self.up_to:g} points: {self.within_one}/{self.count} within 1 point, median |error| "
                f"{self.median_error:.2f}")
        return line if self.coverage is None else f"{line}, {self.coverage:.0%} in interval"


def prediction_fidelity(front: Front, up_to: float = SMALL_DROP) -> Fidelity:
    """The fidelity of the predictions stored with ``front``'s measurements whose measured drop is <= ``up_to``."""
    shown = [p for p in front.measured if p.predicted_drop is not None and p.drop <= up_to]
    if not shown:
        return Fidelity(up_to, 0, float("nan"), 0, 0, float("nan"), 0, 0)
    error = np.abs(np.array([p.predicted_drop - p.drop for p in shown], dtype=np.float64))
    bounded = [p for p in shown if p.predicted_drop_low is not None and p.predicted_drop_high is not None]
    covered = sum(1 for p in bounded if p.predicted_drop_low <= p.drop <= p.predicted_drop_high)
    return Fidelity(up_to, len(shown), float(np.median(error)), int(np.sum(error <= 0.5)), int(np.sum(error <= 1.0)),
                    float(error.max()), len(bounded), covered)

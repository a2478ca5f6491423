"""The confirmed Pareto front, computed once as data; tables, JSON, CSV and plots only render it.

Every real measurement (calibration points and confirmed candidates) is a point: multiplier energy
saved against measured top-1 drop, with the drop's standard error (the drop is paired: the same
images as the baseline, so its noise comes from the images whose prediction flips). The front is the non-dominated points within the allowed drop,
best energy first. The surrogate's own front (energy saved, drop predicted by the final map) comes
along for the plots. With a system energy model (ZigZag, :mod:`dse.study.energy`) every point also
carries the whole accelerator's energy saved (:func:`with_system_energy`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Mapping, NamedTuple, Sequence

import numpy as np

if TYPE_CHECKING:
    from .confirm import ConfirmStore, Measurement


class FrontPoint(NamedTuple):
    """One measured assignment."""

    energy_saving: float  # multiplier energy saved, percent of all-exact
    mac_saving: float  # whole-MAC energy saved (multiplier + 32-bit add), percent
    top1: float
    top5: float
    drop: float  # measured top-1 drop, points
    predicted_drop: float | None
    distinct: int  # distinct designs used (the exact one included)
    assignment: dict[str, str]
    compensation: str | dict[str, str]  # one mode, or {layer: mode} with compensation searched
    role: str
    key: str
    trial: int
    drop_se: float | None = None  # standard error of the drop (paired, same images), points
    held_out_drop: float | None = None  # the drop re-measured on the held-out test images, points
    held_out_drop_se: float | None = None
    system_energy_saving: float | None = None  # whole-accelerator energy saved (ZigZag), percent
    predicted_drop_low: float | None = None  # the predicted drop's 80% interval
    predicted_drop_high: float | None = None

    def held_out_text(self) -> str:
        """The held-out drop with its standard error, or ``-`` when not measured."""
        if self.held_out_drop is None:
            return "-"
        se = "" if self.held_out_drop_se is None else f" ± {self.held_out_drop_se:.2f}"
        return f"{self.held_out_drop:.2f}{se}"

    def as_dict(self) -> dict:
        """JSON-ready record."""
        return self._asdict()

    def predicted_text(self) -> str:
        """The predicted drop with its interval: ``0.40 [0.20, 0.70]``, or ``-`` without a prediction."""
        if self.predicted_drop is None:
            return "-"
        if self.predicted_drop_low is None or self.predicted_drop_high is None:
            return f"{self.predicted_drop:.2f}"
        low, high = (0.0 if abs(v) < 0.005 else v for v in (self.predicted_drop_low, self.predicted_drop_high))
        return f"{self.predicted_drop:.2f} [{low:.2f}, {high:.2f}]"

    def drop_text(self) -> str:
        """The measured drop with its standard error where known: ``0.40 ± 0.21``."""
        return f"{self.drop:.2f}" if self.drop_se is None else f"{self.drop:.2f} ± {self.drop_se:.2f}"


class Front(NamedTuple):
    """A study's result: the confirmed front and everything its reports show."""

    study: str
    baseline_top1: float
    images: int
    max_drop: float
    points: list[FrontPoint]  # the confirmed front, best energy first
    measured: list[FrontPoint]  # every measurement but the baseline
    surrogate: np.ndarray  # (n, 2): energy saved %, predicted drop (the search's feasible front)
    levels: list[tuple[float, FrontPoint | None]]  # best measured point within each report level
    held_out_images: int = 0  # test images of the held-out re-measurements (0: none made)
    held_out_baseline_top1: float | None = None
    system_accelerator: str = ""  # the accelerator of the points' system_energy_saving ("": none computed)


def with_system_energy(front: Front, saving: Callable[[Mapping[str, str]], float], accelerator: str) -> Front:
    """The front with every point's whole-accelerator energy saved (``saving(assignment)``, percent) filled in."""
    cache: dict[str, float] = {}

    def fill(p: FrontPoint | None) -> FrontPoint | None:
        if p is None:
            return None
        if p.key not in cache:
            cache[p.key] = float(saving(p.assignment))
        return p._replace(system_energy_saving=cache[p.key])

    return front._replace(points=[fill(p) for p in front.points], measured=[fill(p) for p in front.measured],
                          levels=[(level, fill(p)) for level, p in front.levels], system_accelerator=accelerator)


def compensation_label(compensation: str | dict[str, str]) -> str:
    """One mode as is; per-layer modes as "searched: 12 affine, 3 bias" (layers without compensation not counted)."""
    if isinstance(compensation, str):
        return compensation
    counts = {mode: sum(1 for v in compensation.values() if v == mode) for mode in ("affine", "bias")}
    shown = ", ".join(f"{n} {mode}" for mode, n in counts.items() if n)
    return f"searched: {shown or 'none'}"


def non_dominated(F: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of F (all minimised) that no other row dominates (duplicates all kept)."""
    F = np.asarray(F, dtype=np.float64)
    n = len(F)
    if n == 0:
        return np.zeros(0, dtype=bool)
    if F.shape[1] == 2:  # sort by the first objective; keep a row while the second improves
        mask = np.zeros(n, dtype=bool)
        best, last = np.inf, None
        for i in np.lexsort((F[:, 1], F[:, 0])):
            if F[i, 1] < best:
                mask[i], best, last = True, F[i, 1], F[i]
            elif last is not None and np.array_equal(F[i], last):
                mask[i] = True
        return mask
    mask = np.ones(n, dtype=bool)
    for start in range(0, n, 512):
        block = F[start:start + 512]
        le = np.all(F[None, :, :] <= block[:, None, :], axis=2)
        lt = np.any(F[None, :, :] < block[:, None, :], axis=2)
        mask[start:start + 512] = ~np.any(le & lt, axis=1)
    return mask


def to_point(m: "Measurement", baseline: "Measurement") -> FrontPoint:
    """A stored measurement as a front point (drop and its paired standard error against ``baseline``)."""
    from objectives.evaluate import drop_standard_error

    se = drop_standard_error(baseline.hit_bytes(), m.hit_bytes(), m.images) if m.images == baseline.images else None
    return FrontPoint(
        100.0 - m.energy, m.mac_saving, m.top1, m.top5, baseline.top1 - m.top1, m.predicted_drop,
        len(set(m.assignment.values())), dict(m.assignment), m.compensation, m.role, m.key, m.number, se,
        predicted_drop_low=m.predicted_interval[0] if m.predicted_interval else None,
        predicted_drop_high=m.predicted_interval[1] if m.predicted_interval else None,
    )


def compute_front(
    study: str,
    store: "ConfirmStore",
    surrogate: np.ndarray,
    max_drop: float,
    report_drops: Sequence[float],
) -> Front:
    """The confirmed front of a study from its stored measurements (``surrogate``: points for the plots)."""
    from .confirm import BASELINE

    measurements, held = store.by_images()
    baseline = next((m for m in measurements.values() if m.role == BASELINE), None)
    surrogate = np.asarray(surrogate, dtype=np.float64).reshape(-1, 2)
    if baseline is None:
        return Front(study, float("nan"), 0, max_drop, [], [], surrogate, [(d, None) for d in report_drops])
    measured = [to_point(m, baseline) for m in measurements.values() if m.role != BASELINE]
    held_baseline = next((m for m in held.values() if m.role == BASELINE), None)
    if held_baseline is not None:
        again = {m.assignment_key: to_point(m, held_baseline) for m in held.values() if m.role != BASELINE}
        measured = [
            p._replace(held_out_drop=again[p.key].drop, held_out_drop_se=again[p.key].drop_se) if p.key in again else p
            for p in measured
        ]
    measured.sort(key=lambda p: (-p.energy_saving, p.drop))
    within = [p for p in measured if p.drop <= max_drop]
    F = np.array([[-p.energy_saving, p.drop] for p in within]).reshape(-1, 2)
    mask = non_dominated(F)
    points = [p for p, keep in zip(within, mask) if keep]
    levels = []
    for level in report_drops:
        fit = [p for p in measured if p.drop <= level]
        levels.append((level, max(fit, key=lambda p: (p.energy_saving, -p.drop)) if fit else None))
    return Front(
        study, baseline.top1, baseline.images, max_drop, points, measured, surrogate, levels,
        held_baseline.images if held_baseline else 0, held_baseline.top1 if held_baseline else None,
    )

"""The search problem, pymoo style: genotypes (pop, n_genes) in, objectives F and constraints G out.

Objectives, all minimised: multiplier energy in percent of all-exact (whole network), the
surrogate's score as log10 (monotone in the predicted top-1 drop, so the Pareto order is the same,
and independent of the score-to-drop map, which is refitted as real measurements come in: stored
trials never go stale), and optionally the summed relative area of the distinct multipliers. One
constraint keeps the search where it matters: log10 score at most log10 of a cap (the score the
calibrated map puts well beyond the allowed drop). Layers outside the encoding (kept exact) count
in the energy at the exact design's cost.

With compensation searched per layer the surrogate offers every (layer, design) with its best
compensation (:mod:`dse.study.searched`): an assignment's compensations are a function of its
designs (:meth:`AssignmentProblem.compensations`), and a job carries them layer by layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol, Sequence

import numpy as np

from .encoding import COMPENSATION_CHOICES, Encoding

if TYPE_CHECKING:
    from objectives.hardware_cost import EnergyModel


class Surrogate(Protocol):
    """What the search needs of :class:`objectives.distortion.NetworkSurrogate`."""

    layer_names: Sequence[str]
    multiplier_names: Sequence[str]

    def score(self, X: np.ndarray) -> np.ndarray:
        """Raw score (predicted logit error power) of assignments X (pop, L) of multiplier indices."""

    def predict_drop(self, X: np.ndarray) -> np.ndarray:
        """Predicted top-1 drop (points) of assignments X (pop, L) of multiplier indices."""

    def predict_interval(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(low, high): the 80% interval of the predicted drop of assignments X (pop, L)."""

    @property
    def classes(self) -> int:
        """Classes of the network's output."""

    def fit_drop_map(self, X: np.ndarray, measured_drops: np.ndarray, ceiling: float | None = None,
                     images: int | None = None) -> None:
        """Refit the score-to-drop model on real evaluations (on ``images`` images; ``ceiling``: drop to chance)."""


class Evaluation(NamedTuple):
    """A population's decoded assignments, objectives and constraints."""

    X: np.ndarray  # (pop, L) multiplier indices
    C: np.ndarray  # (pop, L) compensation choice indices (COMPENSATION_CHOICES; zeros unless searched)
    F: np.ndarray  # (pop, n_obj)
    G: np.ndarray  # (pop, 1): log10 score - log10 cap (feasible <= 0)


class AssignmentProblem:
    """Energy and surrogate accuracy of per-layer assignments, for whole populations at once."""

    def __init__(
        self, encoding: Encoding, energy: "EnergyModel", surrogate: Surrogate, max_drop: float, area: bool = False
    ) -> None:
        self.encoding = encoding
        self.energy = energy
        self.surrogate = surrogate
        self.max_drop = float(max_drop)
        self.area = area
        self.score_cap = np.inf
        # every layer (the energy model's, network order); layers outside the encoding stay exact
        self.all_layers = [layer.name for layer in energy.layers]
        self._columns = np.array([self.all_layers.index(n) for n in encoding.layer_names])
        energy_names = [m.name for m in energy.multipliers]
        self._to_energy = np.array([energy_names.index(n) for n in encoding.multiplier_names])
        # the surrogate may order layers and designs its own way: map ours onto its indices
        theirs = list(surrogate.layer_names)
        self._surrogate_columns = np.array([theirs.index(n) for n in self.all_layers])
        self._to_surrogate = np.array([list(surrogate.multiplier_names).index(n) for n in encoding.multiplier_names])

    @property
    def objective_names(self) -> list[str]:
        """Names of the columns of F."""
        return ["energy", "log10_score"] + (["area"] if self.area else [])

    @property
    def n_obj(self) -> int:
        """Number of objectives."""
        return len(self.objective_names)

    def expand(self, X: np.ndarray) -> np.ndarray:
        """Assignments over every layer (network order); kept-exact layers get index 0, the exact design."""
        X = np.atleast_2d(np.asarray(X, dtype=np.int64))
        full = np.zeros((len(X), len(self.all_layers)), dtype=np.int64)
        full[:, self._columns] = X
        return full

    def energy_rows(self, X: np.ndarray) -> np.ndarray:
        """Assignments as rows of the energy model (every layer, its design indices)."""
        return self._to_energy[self.expand(X)]

    def _surrogate_rows(self, X: np.ndarray) -> np.ndarray:
        full = self._to_surrogate[self.expand(X)]
        theirs = np.empty_like(full)
        theirs[:, self._surrogate_columns] = full
        return theirs

    def relative_energy(self, X: np.ndarray) -> np.ndarray:
        """Multiplier energy relative to all-exact (whole network), (pop,)."""
        return self.energy.relative_energy(self.energy_rows(X))

    def score(self, X: np.ndarray) -> np.ndarray:
        """The surrogate's raw score (monotone in the predicted drop; needs no fitted map)."""
        return np.asarray(self.surrogate.score(self._surrogate_rows(X)), dtype=np.float64)

    def predict_drop(self, X: np.ndarray) -> np.ndarray:
        """Surrogate drop of assignments (pop, L) in our layer and design order."""
        return np.asarray(self.surrogate.predict_drop(self._surrogate_rows(X)), dtype=np.float64)

    def predict_interval(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(low, high): the 80% interval of the surrogate drop of assignments (pop, L) in our order."""
        low, high = self.surrogate.predict_interval(self._surrogate_rows(X))
        return np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)

    @property
    def searched_compensation(self) -> bool:
        """Whether each layer's compensation follows its design (the surrogate chooses it)."""
        return hasattr(self.surrogate, "compensations")

    def compensations(self, X: np.ndarray) -> np.ndarray:
        """Compensation of every searched layer, (pop, L) indices into COMPENSATION_CHOICES (zeros unless searched)."""
        X = np.atleast_2d(np.asarray(X, dtype=np.int64))
        if not self.searched_compensation:
            return np.zeros_like(X)
        theirs = self.surrogate.compensations(self._surrogate_rows(X))
        return theirs[:, self._surrogate_columns[self._columns]]

    def job_compensation(self, x: np.ndarray, mode: str) -> str | dict[str, str]:
        """A job's compensation: the study's mode, or with compensation searched ``{layer: mode}``."""
        if not self.searched_compensation:
            return mode
        c = self.compensations(np.asarray(x)[None])[0]
        return {layer: COMPENSATION_CHOICES[int(i)] for layer, i in zip(self.encoding.layer_names, c)}

    def fit_drop_map(self, X: np.ndarray, drops: np.ndarray, baseline_top1: float | None = None,
                     images: int | None = None) -> None:
        """Refit the surrogate's drop model on measured drops of assignments in our order, made on ``images``
        images where the exact network scores ``baseline_top1`` (so the drop to chance is known)."""
        ceiling = None if baseline_top1 is None else baseline_top1 - 100.0 / self.surrogate.classes
        self.surrogate.fit_drop_map(self._surrogate_rows(X), np.asarray(drops, dtype=np.float64), ceiling, images)

    def evaluate(self, genotypes: np.ndarray) -> Evaluation:
        """Decode and score a population."""
        X, C = self.encoding.decode(genotypes)
        if self.searched_compensation:
            C = self.compensations(X)
        energy = 100.0 * self.relative_energy(X)
        log_score = log_scores(self.score(X))
        columns = [energy, log_score] + ([self.energy.distinct_area(self.energy_rows(X))] if self.area else [])
        cap = np.log10(self.score_cap) if np.isfinite(self.score_cap) else np.inf
        G = np.where(np.isfinite(cap), log_score - cap, -1.0)
        return Evaluation(X, C, np.stack(columns, axis=1), G[:, None])


#: Scores below this count as this (log10 of 0 is not a number a storage keeps).
SCORE_FLOOR = 1e-30


def log_scores(scores: np.ndarray) -> np.ndarray:
    """log10 of scores, floored at :data:`SCORE_FLOOR`."""
    return np.log10(np.maximum(np.asarray(scores, dtype=np.float64), SCORE_FLOOR))

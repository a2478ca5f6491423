"""The search problem, pymoo style: genotypes (pop, n_genes) in, objectives F and constraints G out.

Objectives, all minimised: multiplier energy in percent of all-exact, predicted top-1 drop in
points, and optionally the summed relative area of the distinct multipliers. One constraint:
predicted drop minus the allowed drop (feasible when <= 0).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol, Sequence

import numpy as np

from .encoding import Encoding

if TYPE_CHECKING:
    from objectives.hardware_cost import EnergyModel


class Surrogate(Protocol):
    """What the search needs of :class:`objectives.distortion.NetworkSurrogate`."""

    layer_names: Sequence[str]
    multiplier_names: Sequence[str]

    def predict_drop(self, X: np.ndarray) -> np.ndarray:
        """Predicted top-1 drop (points) of assignments X (pop, L) of multiplier indices."""

    def fit_drop_map(self, X: np.ndarray, measured_drops: np.ndarray) -> None:
        """Refit the score-to-drop map on real evaluations."""


class Evaluation(NamedTuple):
    """A population's decoded assignments, objectives and constraints."""

    X: np.ndarray  # (pop, L) multiplier indices
    C: np.ndarray  # (pop, L) compensation choice indices
    F: np.ndarray  # (pop, n_obj)
    G: np.ndarray  # (pop, 1): predicted drop - max_drop


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
        # the surrogate may order layers and designs its own way: map ours onto its indices
        self._layer_order = np.array([list(surrogate.layer_names).index(n) for n in encoding.layer_names])
        self._design_index = np.array([list(surrogate.multiplier_names).index(n) for n in encoding.multiplier_names])
        self._inverse_layers = np.argsort(self._layer_order)

    @property
    def objective_names(self) -> list[str]:
        """Names of the columns of F."""
        return ["energy", "predicted_drop"] + (["area"] if self.area else [])

    @property
    def n_obj(self) -> int:
        """Number of objectives."""
        return len(self.objective_names)

    def predict_drop(self, X: np.ndarray, C: np.ndarray | None = None) -> np.ndarray:
        """Surrogate drop of assignments in our layer and design order."""
        X = np.atleast_2d(X)
        theirs = np.empty_like(X)
        theirs[:, self._layer_order] = self._design_index[X]
        if self.encoding.searched_compensation and C is not None:
            comp = np.empty_like(C)
            comp[:, self._layer_order] = C
            return np.asarray(self.surrogate.predict_drop(theirs, compensation=comp), dtype=np.float64)
        return np.asarray(self.surrogate.predict_drop(theirs), dtype=np.float64)

    def fit_drop_map(self, X: np.ndarray, drops: np.ndarray) -> None:
        """Refit the surrogate's map on measured drops of assignments in our order."""
        X = np.atleast_2d(X)
        theirs = np.empty_like(X)
        theirs[:, self._layer_order] = self._design_index[X]
        self.surrogate.fit_drop_map(theirs, np.asarray(drops, dtype=np.float64))

    def evaluate(self, genotypes: np.ndarray) -> Evaluation:
        """Decode and score a population."""
        X, C = self.encoding.decode(genotypes)
        energy = 100.0 * self.energy.relative_energy(X)
        drop = self.predict_drop(X, C)
        columns = [energy, drop] + ([self.energy.distinct_area(X)] if self.area else [])
        return Evaluation(X, C, np.stack(columns, axis=1), (drop - self.max_drop)[:, None])

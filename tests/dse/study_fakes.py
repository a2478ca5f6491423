"""Stand-ins for the study tests: a fake surrogate from the zoo's uniform error statistics, fake layers."""

from __future__ import annotations

import numpy as np

from multipliers import Zoo, error_statistics
from objectives.hardware_cost import LayerShape

LAYERS = [
    LayerShape("conv1", 64, 9, 16),
    LayerShape("conv2", 64, 144, 32),
    LayerShape("conv3", 16, 288, 64),
    LayerShape("fc", 1, 64, 10),
]


def candidates(signed: bool = True, count: int = 12):
    """The exact design plus a spread of truncation/perforation designs, exact first."""
    zoo = Zoo.default()
    pool = [m for m in zoo.select(families=["exact", "trunc", "perf", "bam"], signed=signed) if m.cost().energy < 1.0]
    pool.sort(key=lambda m: -m.cost().energy)
    exact = zoo["exact_s" if signed else "exact_u"]
    step = max(1, len(pool) // (count - 1))
    return [exact] + pool[::step][: count - 1]


class FakeSurrogate:
    """Predicted drop = a saturating function of sum_l K_l^2 bias^2 + K_l var over output scale."""

    def __init__(self, layers, multipliers, gain: float = 1.0) -> None:
        self.layer_names = [layer.name for layer in layers]
        self.multiplier_names = [m.name for m in multipliers]
        stats = error_statistics(multipliers)
        k = np.array([layer.k for layer in layers], dtype=float)[:, None]
        scale = (k * 64.0 * 64.0) ** 2  # typical output magnitude squared
        self.table = (k**2 * stats.mean_error[None] ** 2 + k * stats.error_std[None] ** 2) / scale
        self.gain = gain
        self.fits = 0

    def score(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(X)
        return self.table[np.arange(X.shape[1]), X].sum(axis=1)

    def predict_drop(self, X: np.ndarray) -> np.ndarray:
        return 20.0 * (1.0 - np.exp(-self.gain * 50.0 * self.score(X)))

    def predict_interval(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        drop = self.predict_drop(X)
        return 0.5 * drop, 2.0 * drop

    classes = 10

    def fit_drop_map(self, X: np.ndarray, measured: np.ndarray, ceiling=None, images=None) -> None:
        self.fits += 1


def searched_problem(seed: int = 1, trials: int = 400):
    """A fake-surrogate problem over :data:`LAYERS` and :func:`candidates`, and a random search history of it."""
    from dse.study.encoding import Encoding
    from dse.study.history import SearchHistory
    from dse.study.problem import AssignmentProblem
    from objectives.hardware_cost import EnergyModel

    ms = candidates()
    encoding = Encoding.build([layer.name for layer in LAYERS], [m.name for m in ms])
    problem = AssignmentProblem(encoding, EnergyModel(LAYERS, ms), FakeSurrogate(LAYERS, ms), max_drop=2.0)
    genes = np.random.default_rng(seed).integers(0, encoding.sizes, size=(trials, encoding.n_genes))
    ev = problem.evaluate(genes)
    return problem, SearchHistory(genes, ev.F, ev.G, np.arange(len(genes)), [{} for _ in genes])

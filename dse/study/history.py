"""The search's record in the optuna storage: one trial per surrogate evaluation, read back as arrays.

A trial's parameters are the genes (shown values: multiplier names, slot numbers, compensations),
its values the objectives, its constraint ``drop`` the predicted drop over the limit; engines add
their own system attributes (generation numbers). Engines resume from this record alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

import numpy as np

from .encoding import Encoding
from .storage import completed

if TYPE_CHECKING:
    import optuna

CONSTRAINT = "drop"


class SearchHistory(NamedTuple):
    """Every completed search trial as arrays, in trial-number order."""

    genotypes: np.ndarray  # (n, n_genes)
    F: np.ndarray  # (n, n_obj)
    G: np.ndarray  # (n, 1)
    numbers: np.ndarray  # (n,) trial numbers
    system_attrs: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.numbers)


class SearchRecorder:
    """Reads and appends the search trials of one optuna study."""

    def __init__(self, study: "optuna.Study", encoding: Encoding) -> None:
        from optuna.distributions import CategoricalDistribution

        self.study = study
        self.encoding = encoding
        self.distributions = {gene.name: CategoricalDistribution(gene.choices) for gene in encoding.genes}

    def trials(self) -> list["optuna.trial.FrozenTrial"]:
        """Completed search trials."""
        return completed(self.study)

    def history(self, trials: Sequence["optuna.trial.FrozenTrial"] | None = None) -> SearchHistory:
        """The record as arrays (``trials`` default: all completed ones)."""
        trials = self.trials() if trials is None else list(trials)
        n_obj = len(self.study.directions)
        if not trials:
            return SearchHistory(
                np.zeros((0, self.encoding.n_genes), np.int64), np.zeros((0, n_obj)), np.zeros((0, 1)),
                np.zeros(0, np.int64), [],
            )
        genotypes = np.stack([self.encoding.genotype(t.params) for t in trials])
        F = np.array([t.values for t in trials], dtype=np.float64)
        G = np.array([[t.constraints.get(CONSTRAINT, 0.0)] for t in trials], dtype=np.float64)
        return SearchHistory(genotypes, F, G, np.array([t.number for t in trials]), [dict(t.system_attrs) for t in trials])

    def frozen(self, genotype: np.ndarray, f: np.ndarray, g: float, system_attrs: dict[str, Any]) -> "optuna.trial.FrozenTrial":
        """A completed trial for one evaluated genotype."""
        import optuna

        trial = optuna.trial.create_trial(
            params=self.encoding.params(genotype),
            distributions=self.distributions,
            values=[float(v) for v in f],
            system_attrs={**system_attrs, f"constraints:{CONSTRAINT}": float(g)},
        )
        return trial

    def record(self, trials: Sequence["optuna.trial.FrozenTrial"]) -> None:
        """Append completed trials to the storage."""
        self.study.add_trials(trials)

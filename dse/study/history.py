"""The search's record in the optuna storage: one trial per surrogate evaluation, read back as arrays.

A stored trial holds its values (the objectives), its constraint ``drop`` (predicted drop over the
limit) and one system attribute ``dse`` with its genotype (the gene values) and what the engine
keeps per trial (generation numbers). Engines resume from this record alone. The genes are not
stored as optuna parameters: a relational storage writes and checks each parameter separately,
which would triple the cost of recording thousands of surrogate evaluations. :meth:`as_optuna`
turns stored trials into trials with parameters (gene name -> shown value) for samplers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Sequence

import numpy as np

from .encoding import Encoding
from .storage import completed

if TYPE_CHECKING:
    import optuna

CONSTRAINT = "drop"
RECORD = "dse"
GENOTYPE = "genotype"


class ClaimLost(Exception):
    """This worker's claim on the search was released by another worker: it must stop writing."""


class SearchHistory(NamedTuple):
    """Every completed search trial as arrays, in trial-number order."""

    genotypes: np.ndarray  # (n, n_genes)
    F: np.ndarray  # (n, n_obj)
    G: np.ndarray  # (n, 1)
    numbers: np.ndarray  # (n,) trial numbers
    system_attrs: list[dict[str, Any]]  # each trial's engine attributes (its ``dse`` record)

    def __len__(self) -> int:
        return len(self.numbers)


class SearchRecorder:
    """Reads and appends the search trials of one optuna study."""

    def __init__(self, study: "optuna.Study", encoding: Encoding) -> None:
        from optuna.distributions import CategoricalDistribution

        self.study = study
        self.encoding = encoding
        self.distributions = {gene.name: CategoricalDistribution(gene.choices) for gene in encoding.genes}
        #: Called before each write; returns False when this worker may no longer write (its claim is gone).
        self.guard: Callable[[], bool] | None = None

    def count(self) -> int:
        """How many search trials are completed (cheaper than reading them)."""
        from optuna.trial import TrialState

        return self.study._storage.get_n_trials(self.study._study_id, (TrialState.COMPLETE,))

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
        records = [t.system_attrs[RECORD] for t in trials]
        genotypes = np.array([r[GENOTYPE] for r in records], dtype=np.int64)
        F = np.array([t.values for t in trials], dtype=np.float64)
        G = np.array([[t.constraints.get(CONSTRAINT, 0.0)] for t in trials], dtype=np.float64)
        return SearchHistory(genotypes, F, G, np.array([t.number for t in trials]), records)

    def frozen(self, genotype: np.ndarray, f: Sequence[float], g: float, system_attrs: dict[str, Any]) -> "optuna.trial.FrozenTrial":
        """A completed trial to store for one evaluated genotype."""
        import optuna

        attrs = {k: v for k, v in system_attrs.items() if not k.startswith("constraints") and k != "fixed_params"}
        attrs[GENOTYPE] = [int(v) for v in genotype]
        return optuna.trial.create_trial(
            values=[float(v) for v in f], system_attrs={RECORD: attrs, f"constraints:{CONSTRAINT}": float(g)}
        )

    def as_optuna(
        self, trials: Sequence["optuna.trial.FrozenTrial"], distributions: dict | None = None,
    ) -> list["optuna.trial.FrozenTrial"]:
        """Stored trials with the genes as optuna parameters (for a sampler's working copy; ``distributions``:
        equal ones to use instead of :attr:`distributions`)."""
        import optuna

        return [
            optuna.trial.create_trial(
                params=self.encoding.params(t.system_attrs[RECORD][GENOTYPE]),
                distributions=self.distributions if distributions is None else distributions,
                values=t.values,
                system_attrs={
                    **{k: v for k, v in t.system_attrs[RECORD].items() if k != GENOTYPE},
                    f"constraints:{CONSTRAINT}": t.constraints[CONSTRAINT],
                },
            )
            for t in trials
        ]

    def record(self, trials: Sequence["optuna.trial.FrozenTrial"]) -> None:
        """Append completed trials to the storage (raises :class:`ClaimLost` when the guard says no)."""
        if self.guard is not None and not self.guard():
            raise ClaimLost()
        self.study.add_trials(trials)

"""What every search engine does: evaluate populations on the problem, record each trial, resume from the record."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:
    from ..history import SearchRecorder
    from ..problem import AssignmentProblem

#: Called after each recorded batch with the number of new trials.
Progress = Callable[[int], None]


def derive_seed(seed: int, *keys: int) -> int:
    """A 32-bit seed for one piece of randomness (a trial, a generation) derived from the study seed."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0])


class SearchEngine(abc.ABC):
    """Runs the search up to a budget of surrogate evaluations, all state in the recorder's storage.

    Resuming (a second ``run`` on the same storage, in this or another process) continues where the
    record stops and gives the same trials as an uninterrupted run: every random choice derives
    from the seed and the trial or generation number, never from process state.
    """

    name = "engine"

    def __init__(
        self, problem: "AssignmentProblem", recorder: "SearchRecorder", seed: int, population: int,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.problem = problem
        self.recorder = recorder
        self.seed = seed
        self.population = population
        self.options = dict(options or {})

    @abc.abstractmethod
    def run(self, budget: int, seeds: np.ndarray, progress: Progress | None = None) -> None:
        """Evaluate until ``budget`` trials are recorded; ``seeds`` (n, n_genes) go first."""

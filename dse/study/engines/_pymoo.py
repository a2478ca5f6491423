"""pymoo's NSGA-II over integer genes, one generation at a time, every individual an optuna trial.

Generation ``g`` is bred from the survivors of generation ``g - 1`` with a random generator
seeded from (seed, g), so it depends only on what the storage holds: a resumed run replays the
survivor selection from the stored trials (no evaluations) and continues, finishing a partly
stored generation by regenerating it and evaluating only the missing individuals. Offspring that
were evaluated before are replaced (the budget buys new assignments only). Integer genes use
pymoo's simulated binary crossover and polynomial mutation with rounding repair; multiplier genes
are ordered by energy, so neighbouring values are similar designs.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ...errors import UserError
from ._base import Progress, SearchEngine, derive_seed

logger = logging.getLogger(__name__)

ALGORITHMS = ("NSGA2",)
#: search.options understood by this engine, with defaults (pymoo's NSGA-II defaults).
OPTIONS = {"crossover_prob": 0.9, "crossover_eta": 15.0, "mutation_eta": 20.0, "mutation_prob": None, "n_offsprings": None}
GENERATION = "pymoo:generation"
INDEX = "pymoo:index"
MATING_ATTEMPTS = 20


def check_algorithm(name: str, options: dict[str, Any]) -> None:
    """Raise a UserError for an unknown algorithm or option."""
    if name not in ALGORITHMS:
        raise UserError(f"search.algorithm {name!r} is not supported with engine pymoo; choose one of {', '.join(ALGORITHMS)}")
    for key, value in options.items():
        if key not in OPTIONS:
            raise UserError(f"search.options.{key} is not an option of pymoo {name} (options: {', '.join(OPTIONS)})")
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)
        if key.endswith("_prob") and not (number and 0.0 <= value <= 1.0) and not (key == "mutation_prob" and value is None):
            raise UserError(f"search.options.{key} must be a probability from 0 to 1, got {value!r}")
        if key.endswith("_eta") and not (number and value > 0):
            raise UserError(f"search.options.{key} must be a positive number, got {value!r}")
        if key == "n_offsprings" and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            raise UserError(f"search.options.{key} must be a whole number of at least 1, got {value!r}")


class PymooEngine(SearchEngine):
    """NSGA-II generations from pymoo's mating and survival operators, state in the storage."""

    name = "pymoo"

    def __init__(self, problem, recorder, seed, population, options, algorithm: str = "NSGA2") -> None:
        super().__init__(problem, recorder, seed, population, options)
        check_algorithm(algorithm, self.options)
        self.settings = {**OPTIONS, **self.options}

    def _algorithm(self) -> tuple[Any, Any]:
        from pymoo.algorithms.moo.nsga2 import NSGA2
        from pymoo.core.problem import Problem
        from pymoo.operators.crossover.sbx import SBX
        from pymoo.operators.mutation.pm import PM
        from pymoo.operators.repair.rounding import RoundingRepair
        from pymoo.operators.sampling.rnd import IntegerRandomSampling

        sizes = self.problem.encoding.sizes
        problem = Problem(n_var=len(sizes), n_obj=self.problem.n_obj, n_ieq_constr=1, xl=0, xu=sizes - 1, vtype=int)
        s = self.settings
        algorithm = NSGA2(
            pop_size=self.population,
            n_offsprings=s["n_offsprings"] or self.population,
            sampling=IntegerRandomSampling(),
            crossover=SBX(prob=s["crossover_prob"], eta=s["crossover_eta"], vtype=float, repair=RoundingRepair()),
            mutation=PM(prob=s["mutation_prob"] or 1.0, eta=s["mutation_eta"], vtype=float, repair=RoundingRepair()),
            eliminate_duplicates=True,
        )
        algorithm.setup(problem, seed=self.seed)
        return algorithm, problem

    def run(self, budget: int, seeds: np.ndarray, progress: Progress | None = None) -> None:
        """Run generations until ``budget`` trials are stored."""
        history = self.recorder.history()
        by_generation: dict[int, list[int]] = {}
        for row, attrs in enumerate(history.system_attrs):
            by_generation.setdefault(int(attrs.get(GENERATION, -1)), []).append(row)
        algorithm, problem = self._algorithm()
        seen = {tuple(g) for g in history.genotypes}
        survivors = None
        before, generation = 0, 0  # trials of the generations before this one
        while True:
            rows = sorted(by_generation.get(generation, []), key=lambda r: history.system_attrs[r][INDEX])
            stored = history.genotypes[rows]
            size = min(self.population, budget - before)
            if size <= 0:
                return
            if len(rows) < size:
                planned = self._breed(generation, survivors, algorithm, problem, seeds, seen - {tuple(g) for g in stored}, size)
                if len(planned) <= len(rows):
                    logger.info("pymoo search converged: no new offspring in generation %d", generation)
                    return
                missing = planned[len(rows):]
                evaluation = self.problem.evaluate(missing)
                trials = [
                    self.recorder.frozen(x, f, g, {GENERATION: generation, INDEX: len(rows) + i})
                    for i, (x, f, g) in enumerate(zip(missing, evaluation.F, evaluation.G[:, 0]))
                ]
                self.recorder.record(trials)
                if progress:
                    progress(len(trials))
                seen.update(tuple(x) for x in missing)
                X = np.concatenate([stored, missing])
                F = np.concatenate([history.F[rows], evaluation.F])
                G = np.concatenate([history.G[rows], evaluation.G])
            else:
                X, F, G = stored, history.F[rows], history.G[rows]
            before += len(X)
            survivors = self._survive(generation, survivors, X, F, G, algorithm, problem)
            generation += 1

    def _breed(self, generation, survivors, algorithm, problem, seeds, seen, size) -> np.ndarray:
        """Generation ``generation``'s individuals (deterministic given the survivors and what was seen)."""
        rng = np.random.default_rng(derive_seed(self.seed, generation))
        sizes = self.problem.encoding.sizes
        out: list[tuple[int, ...]] = []
        taken = set(seen)

        def take(rows: np.ndarray) -> None:
            for x in np.asarray(rows, dtype=np.int64):
                key = tuple(int(v) for v in x)
                if key not in taken and len(out) < size:
                    taken.add(key)
                    out.append(key)

        if generation == 0:
            take(seeds)
            for _ in range(MATING_ATTEMPTS):
                if len(out) >= size:
                    break
                take(rng.integers(0, sizes, size=(size, len(sizes))))
        else:
            algorithm.random_state = rng
            for _ in range(MATING_ATTEMPTS):
                if len(out) >= size:
                    break
                off = algorithm.mating.do(problem, survivors, algorithm.n_offsprings, algorithm=algorithm, random_state=rng)
                if len(off):
                    take(np.clip(np.rint(off.get("X")), 0, sizes - 1))
        return np.array(out, dtype=np.int64).reshape(-1, len(sizes))

    def _survive(self, generation, survivors, X, F, G, algorithm, problem):
        """Rank-and-crowding survival of the previous survivors plus this generation."""
        from pymoo.core.population import Population

        pop = Population.new("X", X.astype(np.float64))
        cv = np.maximum(G, 0.0).sum(axis=1)
        pop.set("F", F, "G", G, "CV", cv[:, None])
        if survivors is not None:
            pop = Population.merge(survivors, pop)
        rng = np.random.default_rng(derive_seed(self.seed, generation, 1))
        return algorithm.survival.do(problem, pop, n_survive=self.population, algorithm=algorithm, random_state=rng)

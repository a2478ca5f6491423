"""Optuna samplers by name (``getattr(optuna.samplers, name)``), driven by ask/tell.

The sampler works on an in-memory copy of the stored trials (optuna's relational storages commit
every parameter separately, far too slow for thousands of surrogate evaluations); each batch of
new trials is then appended to the real storage in one go. Trial ``n`` is sampled by a fresh
sampler seeded from (seed, n) (:class:`TrialSeededSampler`), so a resumed search asks exactly what
an uninterrupted one would: samplers keep all other state (NSGA-II generations) in the trials.
"""

from __future__ import annotations

import functools
import inspect
import logging
import warnings
from typing import Any, Callable

import numpy as np

from ...errors import UserError
from ..history import CONSTRAINT
from ._base import Progress, SearchEngine, derive_seed

logger = logging.getLogger(__name__)

#: Samplers of ``optuna.samplers`` that handle several objectives and categorical parameters.
MULTI_OBJECTIVE = ("NSGAIISampler", "NSGAIIISampler", "TPESampler", "RandomSampler", "GPSampler")


def sampler_class(name: str) -> type:
    """The sampler class ``optuna.samplers.<name>``, or a UserError listing the usable ones."""
    import optuna

    cls = getattr(optuna.samplers, name, None)
    if name not in MULTI_OBJECTIVE or cls is None:
        raise UserError(f"search.sampler {name!r} is not a usable optuna sampler; choose one of {', '.join(MULTI_OBJECTIVE)}")
    return cls


def sampler_kwargs(cls: type, options: dict[str, Any], seed: int, population: int) -> dict[str, Any]:
    """Keyword arguments for ``cls``: ``search.options`` checked against its signature, plus seed and population."""
    parameters = inspect.signature(cls.__init__).parameters
    for key in options:
        if key not in parameters or key in ("self", "seed"):
            known = [p for p in parameters if p not in ("self", "seed")]
            raise UserError(f"search.options.{key} is not an option of {cls.__name__} (options: {', '.join(known)})")
    kwargs = dict(options)
    if "seed" in parameters:
        kwargs["seed"] = seed
    if "population_size" in parameters:
        kwargs.setdefault("population_size", population)
    return kwargs


@functools.lru_cache(maxsize=1)
def _fast_categorical() -> type:
    from optuna.distributions import CategoricalDistribution

    class FastCategorical(CategoricalDistribution):
        """A categorical distribution of NaN-free choices; equal to any categorical distribution of equal choices."""

        def __eq__(self, other: object) -> bool:
            if not isinstance(other, CategoricalDistribution):
                return NotImplemented
            return self.choices == other.choices

        __hash__ = CategoricalDistribution.__hash__

    return FastCategorical


def fast_distributions(distributions: dict[str, Any]) -> dict[str, Any]:
    """Equal distributions that compare in C: optuna compares categorical choices element by element in
    Python (NaN-aware), several times per parameter of every trial asked, most of a search's time. Our
    choices are design names and indices, never NaN, so tuple equality is the same test."""
    from optuna.distributions import CategoricalDistribution

    fast = _fast_categorical()
    return {name: fast(d.choices) if type(d) is CategoricalDistribution else d for name, d in distributions.items()}


def _tell(study: Any, trial: Any, values: list[float]) -> None:
    """``study.tell`` without the deep copy of the finished trial it returns (a tenth of a search's time)."""
    try:
        from optuna.study._tell import _tell_with_warning
    except ImportError:  # pragma: no cover - a future optuna moved it
        study.tell(trial, values)
        return
    _tell_with_warning(study=study, trial=trial, value_or_values=values, state=None)


#: optuna's GA samplers keep which trials they have seen, and each generation's members, in these (an exact,
#: incremental cache of a scan over every trial); a fresh sampler per trial would rescan them all, quadratic in
#: the budget, so the state is handed from one trial's sampler to the next.
_GENERATION_CACHE = ("_cached_study_id", "_cached_generation", "_cached_generation_numbers",
                     "_cached_unfinished_numbers", "_cached_unseen_trial_start")


def _carry_generation_cache(source: Any, target: Any) -> None:
    """Copy a GA sampler's generation cache to another sampler of the same search (nothing for other samplers)."""
    if source is target or not all(hasattr(source, a) and hasattr(target, a) for a in _GENERATION_CACHE):
        return
    for attribute in _GENERATION_CACHE:
        value = getattr(source, attribute)
        setattr(target, attribute, list(value) if isinstance(value, list) else value)


def make_sampler(cls: type, kwargs: dict[str, Any]) -> Any:
    """``cls(**kwargs)``, or a UserError when the sampler refuses the options."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-feature warnings
            return cls(**kwargs)
    except (TypeError, ValueError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise UserError(f"search.options do not suit {cls.__name__}: {first}") from None


def _trial_seeded_sampler(factory: Callable[[int], Any], seed: int) -> Any:
    """A sampler that hands each trial to ``factory(derive_seed(seed, trial.number))``."""
    from optuna.samplers import BaseSampler

    class TrialSeededSampler(BaseSampler):
        """Per-trial randomness from (seed, trial number); the search space from one long-lived instance.

        The long-lived instance keeps optuna's incremental search-space cache (a fresh sampler would
        recompute it over every trial, quadratic in the budget); it never draws random numbers.
        """

        def __init__(self) -> None:
            self.base = factory(seed)
            self.current = self.base
            self.space: dict | None = None

        def before_trial(self, study, trial) -> None:
            _carry_generation_cache(self.current, self.base)
            self.current = factory(derive_seed(seed, trial.number))
            _carry_generation_cache(self.base, self.current)
            self.current.before_trial(study, trial)

        def infer_relative_search_space(self, study, trial):
            # The intersection of the finished trials' distributions: empty before the first, then fixed, since
            # every trial of a search is asked with the same distributions. Computed once it is not empty
            # (optuna recomputes and deep-copies it on every ask: most of a long search's time).
            if self.space is None:
                space = self.base.infer_relative_search_space(study, trial)
                if not space:
                    return space
                self.space = space
            return dict(self.space)

        def sample_relative(self, study, trial, search_space):
            return self.current.sample_relative(study, trial, search_space)

        def sample_independent(self, study, trial, param_name, param_distribution):
            return self.current.sample_independent(study, trial, param_name, param_distribution)

        def after_trial(self, study, trial, state, values) -> None:
            self.current.after_trial(study, trial, state, values)

        def reseed_rng(self) -> None:  # randomness comes from the trial numbers only
            return None

    return TrialSeededSampler()


class OptunaEngine(SearchEngine):
    """Ask/tell with an optuna sampler; generational samplers evaluate a whole population at once."""

    name = "optuna"

    def __init__(self, problem, recorder, seed, population, options, sampler: str) -> None:
        super().__init__(problem, recorder, seed, population, options)
        self.cls = sampler_class(sampler)
        self.population = int(self.options.get("population_size", population))

    def _sampler(self, seed: int) -> Any:
        return make_sampler(self.cls, sampler_kwargs(self.cls, self.options, seed, self.population))

    @staticmethod
    def _warm_parent_cache(working: Any, last: Any) -> None:
        """Resuming: cache every generation's parents as the interrupted run had.

        optuna's GA samplers select a generation's parents when its first trial asks (from the
        previous generation's parents as cached, in trial order), hand that trial the parents in
        selection order, and cache them; later trials read the cache back in trial order (which
        changes their random picks). Rebuilding the caches generation by generation, as the
        interrupted run did, gives the resumed trials what they would have had.
        """
        sampler = working.sampler.base
        generation = last.system_attrs.get(sampler._get_generation_key())
        for g in range(1, (generation or 0) + 1):
            sampler.get_parent_population(working, g)

    def run(self, budget: int, seeds: np.ndarray, progress: Progress | None = None) -> None:
        """Ask, evaluate and tell until ``budget`` trials are stored."""
        import optuna
        from optuna.samplers import BaseGASampler

        stored = self.recorder.trials()
        if len(stored) >= budget:
            return
        working = optuna.create_study(
            storage=optuna.storages.InMemoryStorage(), directions=["minimize"] * self.problem.n_obj,
            sampler=_trial_seeded_sampler(self._sampler, self.seed),
        )
        distributions = fast_distributions(self.recorder.distributions)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # experimental-feature and fixed-parameter warnings
            working.add_trials(self.recorder.as_optuna(stored, distributions))
            if issubclass(self.cls, BaseGASampler) and stored:
                self._warm_parent_cache(working, working.get_trials(deepcopy=False)[-1])
            encoding = self.problem.encoding
            done, flushed = len(stored), len(stored)
            while done < budget:
                # one trial at a time: a GA sampler assigns generations from the trials told so far
                if done < len(seeds):
                    working.enqueue_trial(encoding.params(seeds[done]))
                asked = [working.ask(distributions)]
                genotypes = np.stack([encoding.genotype(t.params) for t in asked])
                evaluation = self.problem.evaluate(genotypes)
                for trial, f, g in zip(asked, evaluation.F, evaluation.G[:, 0]):
                    trial.set_constraint(CONSTRAINT, float(g))
                    _tell(working, trial, [float(v) for v in f])
                done += len(asked)
                if done - flushed >= self.population or done >= budget:
                    new = [
                        self.recorder.frozen(encoding.genotype(t.params), t.values, t.constraints[CONSTRAINT], t.system_attrs)
                        for t in working.get_trials(deepcopy=False)[flushed:done]
                    ]
                    self.recorder.record(new)
                    if progress:
                        progress(len(new))
                    flushed = done

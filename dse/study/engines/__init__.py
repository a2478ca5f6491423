"""Search engines over assignments: optuna samplers (ask/tell) and pymoo genetic algorithms.

Both record every evaluated individual as a trial of the study's search storage and resume from it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._base import Progress, SearchEngine, derive_seed

if TYPE_CHECKING:
    from ...study.schema import SearchSection
    from ..history import SearchRecorder
    from ..problem import AssignmentProblem


def check_engine(section: "SearchSection") -> None:
    """Raise a UserError when the engine, sampler/algorithm or its options are unknown."""
    if section.engine == "optuna":
        from ._optuna import make_sampler, sampler_class, sampler_kwargs

        cls = sampler_class(section.sampler)
        # made once here, so that a value the sampler refuses is a mistake in the study file, found before any work
        make_sampler(cls, sampler_kwargs(cls, section.options, seed=0, population=section.population))
    else:
        from ._pymoo import check_algorithm

        check_algorithm(section.algorithm, section.options)


def make_engine(section: "SearchSection", problem: "AssignmentProblem", recorder: "SearchRecorder") -> SearchEngine:
    """The configured engine over ``problem``, recording into ``recorder``."""
    if section.engine == "optuna":
        from ._optuna import OptunaEngine

        return OptunaEngine(problem, recorder, section.seed, section.population, section.options, section.sampler)
    from ._pymoo import PymooEngine

    return PymooEngine(problem, recorder, section.seed, section.population, section.options, section.algorithm)


__all__ = ["Progress", "SearchEngine", "check_engine", "derive_seed", "make_engine"]

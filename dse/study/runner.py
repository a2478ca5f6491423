"""``dse run``: quantise, calibrate the surrogate, search on it, confirm its front with real inference.

Each phase skips what the study folder already holds, so a rerun continues where the last run
stopped and redoes nothing finished: the baseline and every measurement live in the confirm study
(keyed by assignment hash), the search trials in the search study, the surrogate's tables in
``surrogate/``. Everything is checked before the folder is created.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import UserError
from . import phases
from .confirm import BASELINE, CALIBRATION, CANDIDATE, ConfirmStore, Job, measure
from .directory import check_directory, write_directory
from .front import Front, compute_front
from .storage import CONFIRM, SEARCH, open_storage, open_study, storage_description

if TYPE_CHECKING:
    from .config import StudyConfig
    from .problem import AssignmentProblem, Surrogate
    from .target import Target

logger = logging.getLogger(__name__)

#: (target, multipliers, compensation, cache folder, progress) -> surrogate; tests pass a stand-in.
SurrogateFactory = Callable[["Target", list, str, Path, bool], "Surrogate"]


@dataclass
class RunReport:
    """What a run did: its front and the seconds spent in each phase."""

    front: Front
    directory: Path
    timings: dict[str, float] = field(default_factory=dict)
    real_evaluations: int = 0
    surrogate_evaluations: int = 0
    rounds: int = 0


def build_surrogate(target: "Target", multipliers: list, compensation: str, folder: Path, progress: bool = True) -> "Surrogate":
    """The distortion surrogate of the study's design set, loaded from ``folder`` or built and saved there."""
    from objectives.distortion.surrogate import NetworkSurrogate, design_set_key

    cache = folder / design_set_key(multipliers, compensation)
    if (cache / "surrogate.json").is_file():
        return NetworkSurrogate.load(cache)
    surrogate = NetworkSurrogate.build(
        target.qnet, multipliers, compensation=compensation, seed=target.config.search.seed, progress=progress
    )
    surrogate.save(cache)
    return surrogate


def run_study(
    config: "StudyConfig",
    directory: Path,
    progress: bool = True,
    surrogate_factory: SurrogateFactory | None = None,
    target: "Target | None" = None,
) -> RunReport:
    """Run (or continue) a study in ``directory``; returns the confirmed front."""
    from .candidates import select_multipliers
    from .energy import study_energy_model
    from .encoding import Encoding
    from .problem import AssignmentProblem
    from .target import build_target

    timings: dict[str, float] = {}
    clock = time.perf_counter()
    if config.compensation.mode == "searched":
        raise UserError(
            f"{config.path}: compensation.mode = 'searched' is not available yet: the surrogate and the quantised "
            "network take one compensation for all layers; choose none, bias or affine"
        )
    check_directory(config, directory)
    multipliers = target.multipliers if target is not None else select_multipliers(config)
    target = target or build_target(config, multipliers)
    timings["quantise"] = time.perf_counter() - clock
    storage_name = storage_description(config.storage, directory)
    layers = [{**target.layer_info(l.name).as_dict(), "approximated": l.name in target.approximated} for l in target.layers]
    designs = [_design_record(m, config.multipliers.cost_method or None) for m in multipliers]
    write_directory(config, directory, layers, designs, storage_name)
    storage = open_storage(config.storage, directory)
    names = [m.name for m in multipliers]
    store = ConfirmStore(open_study(storage, config.name, CONFIRM, ["energy", "drop"]), target.approximated, names)
    compensation = config.compensation.mode
    n_jobs = config.confirmation.jobs

    # -- baseline ----------------------------------------------------------------------------------
    clock = time.perf_counter()
    exact_job = Job({layer: names[0] for layer in target.approximated}, compensation, BASELINE, 0.0, 100.0, 0.0)
    baseline = measure(config, store, [exact_job], None, 1, "baseline (exact)", progress)[exact_job.key].top1
    timings["baseline"] = time.perf_counter() - clock

    # -- surrogate and its calibration -------------------------------------------------------------
    clock = time.perf_counter()
    energy = study_energy_model(config, target, multipliers, directory, progress)
    encoding = Encoding.build(
        target.approximated, names, config.grouping.groups, config.grouping.max_distinct, compensation == "searched"
    )
    surrogate = (surrogate_factory or build_surrogate)(target, multipliers, compensation, directory / "surrogate", progress)
    problem = AssignmentProblem(encoding, energy, surrogate, config.constraints.max_drop, config.objectives.area)
    timings["surrogate"] = time.perf_counter() - clock
    clock = time.perf_counter()
    path = _greedy(problem)
    _calibrate(config, problem, store, path, baseline, n_jobs, progress)
    problem.score_cap = phases.score_cap(problem, path)
    timings["calibration"] = time.perf_counter() - clock

    # -- search --------------------------------------------------------------------------------------
    clock = time.perf_counter()
    history = _search(config, problem, storage, path, progress)
    timings["search"] = time.perf_counter() - clock

    # -- confirmation ----------------------------------------------------------------------------------
    clock = time.perf_counter()
    rounds = _confirm(config, problem, store, history, baseline, progress)
    timings["confirmation"] = time.perf_counter() - clock

    from .outputs import write_surrogate_front

    write_surrogate_front(directory, phases.surrogate_points(problem, history))
    front = compute_front(
        config.name, store, phases.surrogate_points(problem, history), config.constraints.max_drop,
        config.confirmation.report_drops,
    )
    return RunReport(front, directory, timings, len(store.measurements()), len(history), rounds)


def _greedy(problem: "AssignmentProblem") -> np.ndarray:
    from .seeding import greedy_path

    return greedy_path(problem)


def _calibrate(config, problem, store, path, baseline, n_jobs, progress) -> None:
    """Measure points spread along the greedy path and fit the surrogate's drop map on them."""
    compensation = config.compensation.mode
    points = phases.calibration_points(problem, path, config.surrogate.calibration_points)
    jobs = [phases.make_job(problem, x, compensation, CALIBRATION, None) for x in points]
    measured = measure(config, store, jobs, baseline, n_jobs, "calibration", progress)
    _fit(problem, measured, baseline, 1)


def _fit(problem, measured, baseline, before_round: int) -> None:
    try:
        used = phases.fit_map(problem, measured, baseline, before_round)
    except ValueError as error:
        raise UserError(f"cannot calibrate the surrogate: {error}; raise surrogate.calibration_points") from None
    logger.info("drop map fitted on %d real evaluations", used)


def _confirm(config, problem, store, history, baseline, progress) -> int:
    """Confirmation rounds until the candidate budget is spent or no target finds a new point."""
    front = phases.surrogate_front(problem, history)
    levels = phases.targets(config.constraints.max_drop, config.confirmation.report_drops)
    budget = config.confirmation.candidates
    round_ = 1
    while True:
        measured = store.measurements()
        _fit(problem, measured, baseline, round_)
        earlier = [m for m in measured.values() if m.round < round_]
        spent = sum(1 for m in earlier if m.role == CANDIDATE)
        jobs = phases.round_jobs(
            problem, front, earlier, baseline, levels, budget - spent, config.compensation.mode, round_
        )
        fill = phases.fill_jobs(problem, front, earlier, baseline, budget - spent, config.compensation.mode, round_)
        jobs = (jobs + [j for j in fill if j.key not in {k.key for k in jobs}])[: budget - spent]
        if not jobs:
            return round_ - 1
        measure(config, store, jobs, baseline, config.confirmation.jobs, f"confirmation round {round_}", progress)
        round_ += 1


def _search(config, problem, storage, path, progress):
    """Run the engine up to the budget (continuing stored trials); the whole search record."""
    from tqdm import tqdm

    from .engines import make_engine
    from .history import SearchRecorder
    from .seeding import initial_genotypes

    recorder = SearchRecorder(open_study(storage, config.name, SEARCH, problem.objective_names), problem.encoding)
    near = path[problem.score(path) <= problem.score_cap] if len(path) else path
    seeds = initial_genotypes(problem, config.search.population, near)
    done = len(recorder.trials())
    with tqdm(total=config.search.budget, initial=min(done, config.search.budget), desc="search (surrogate)",
              unit="trial", disable=not progress) as bar:
        make_engine(config.search, problem, recorder).run(config.search.budget, seeds, bar.update)
    return recorder.history()


def _design_record(m: Any, method: str | None) -> dict[str, Any]:
    cost = m.cost(method)
    return {
        "name": m.name, "family": m.family, "params": dict(m.params), "signed": m.signed, "lut_sha256": m.lut_sha256,
        "energy": cost.energy, "area": cost.area, "delay": cost.delay, "cost_method": cost.method, "cost_source": cost.source,
    }

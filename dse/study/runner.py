"""``dse run``: quantise, calibrate the surrogate, search on it, confirm its front with real inference.

Each phase skips what the study folder already holds, so a rerun continues where the last run
stopped and redoes nothing finished: the baseline and every measurement live in the confirm study
(keyed by assignment hash), the search trials in the search study, the surrogate's tables in
``surrogate/``. Everything is checked before the folder is created. Every job (a measurement, the
search) is claimed through the storage first, so workers sharing the storage split the work and a
dead worker's job goes to another (:mod:`dse.study.claims`); every choice between phases is a
deterministic function of the storage, so all workers make the same ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from ..errors import UserError
from . import phases
from .confirm import BASELINE, CALIBRATION, CANDIDATE, ConfirmStore, Job, measure
from .claims import DEFAULT_HEARTBEAT, Claims, Owner
from .directory import check_directory, move_aside, write_directory
from .energy import SYSTEM, SYSTEM_CACHE, study_accelerator, system_table
from .failures import StorageLost
from .fingerprint import check_storage
from .front import Front, FrontPoint, compute_front
from .storage import (
    CLAIMS, CONFIRM, SEARCH, delete_studies, open_storage, open_study, storage_description,
    storage_errors, storage_outside,
)

if TYPE_CHECKING:
    from .config import StudyConfig
    from .problem import AssignmentProblem, Surrogate
    from .target import Target

logger = logging.getLogger(__name__)

#: The claim key of the search (confirmation jobs are claimed by their assignment hash).
SEARCH_JOB = "search"
#: A run that has to continue from the storage more often than this within its storage patience (each time a
#: connection failed in the middle of a write) gives up with one line.
MAX_RESTARTS = 10
#: The exact network's margin curve on the confirmation images (the drop model's), kept in the study folder.
MARGINS_FILE = "margins.npz"

#: (target, multipliers, compensation, cache folder, progress) -> surrogate; tests pass a stand-in.
SurrogateFactory = Callable[["Target", list, str, Path, bool], "Surrogate"]


@dataclass
class RunReport:
    """What a run did: its front and the seconds spent in each phase."""

    front: Front
    directory: Path
    timings: dict[str, float] = field(default_factory=dict)
    real_evaluations: int = 0  # on the confirmation images (baseline, calibration, candidates)
    surrogate_evaluations: int = 0
    rounds: int = 0
    held_out_evaluations: int = 0  # re-measurements on the held-out test images


def build_surrogate(target: "Target", multipliers: list, compensation: str, folder: Path, progress: bool = True) -> "Surrogate":
    """The distortion surrogate of the study's design set and compensation, loaded from ``folder`` or built and saved there."""
    from .searched import build_study_surrogate

    return build_study_surrogate(target, multipliers, compensation, folder, progress)


def run_study(
    config: "StudyConfig",
    directory: Path,
    progress: bool = True,
    surrogate_factory: SurrogateFactory | None = None,
    target: "Target | None" = None,
    *,
    worker: bool = False,
    fresh: bool = False,
    heartbeat: float = DEFAULT_HEARTBEAT,
    patience: float | None = None,
) -> RunReport:
    """Run (or continue) a study in ``directory``; returns the confirmed front.

    ``worker``: one of several processes sharing the study's storage (a journal file or a database);
    ``fresh``: move an earlier study folder aside and delete the study from an external storage first
    (each logged as a warning); ``heartbeat``: seconds between the heartbeats of this worker's claims;
    ``patience``: seconds to wait for a database that stopped answering (default
    :data:`dse.study.resilient.PATIENCE`) before giving up.
    """
    from .candidates import select_multipliers
    from .target import build_target, study_device

    study_device(config)  # first: a device this machine lacks is refused before anything is written or moved
    # decoded images that do not fit in memory live in the study folder (worker processes get the config too)
    config = dataclasses.replace(config, data_cache=str(directory / "decoded"))
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    storage_name = storage_description(config.storage, directory)
    if worker and storage_name.startswith("sqlite"):
        raise UserError(
            "--worker needs a storage several processes share: storage.journal (a file, one machine) or storage.url "
            "(a database server such as postgresql://..., many machines); SQLite serves one process"
        )
    with storage_errors(storage_name):
        if fresh:
            _start_afresh(config, directory, patience)
        check_directory(config, directory)
        multipliers = target.multipliers if target is not None else select_multipliers(config)
        target = target or build_target(config, multipliers)
        timings["quantise"] = time.perf_counter() - clock
        layers = [{**target.layer_info(l.name).as_dict(), "approximated": l.name in target.approximated} for l in target.layers]
        designs = [_design_record(m, config.multipliers.cost_method or None) for m in multipliers]
        # A storage outside the folder may hold this study from another study file: check it before the
        # folder is written. One inside is new with the folder, or was checked with it (check_directory).
        outside = storage_outside(config.storage, directory)
        _warn_if_storage_lost(config, directory)
        zigzag = _system_energy_first(config, target, directory, progress)  # a layer ZigZag refuses: nothing written
        if not outside:
            write_directory(config, directory, layers, designs, storage_name)
        _keep_system_energy(zigzag, directory)
        storage = open_storage(config.storage, directory, patience, longest_pause=heartbeat)
        confirm_study = open_study(storage, config.name, CONFIRM, ["energy", "drop"])
        check_storage(confirm_study, config, storage_name)
        if outside:
            write_directory(config, directory, layers, designs, storage_name)
            _keep_system_energy(zigzag, directory)
        claims = Claims(open_study(storage, config.name, CLAIMS, ["done"]), heartbeat)
        if not worker:
            _check_alone(claims)
        store = ConfirmStore(confirm_study, target.approximated, [m.name for m in multipliers])
        with claims:
            restarts: list[float] = []
            while True:
                try:
                    report = _run_phases(config, directory, target, multipliers, storage, store, claims,
                                         surrogate_factory, progress, timings, worker)
                except StorageLost as lost:  # a write in doubt: continue from what the storage holds, as a rerun
                    now = time.monotonic()
                    # only a database storage (a RetryingStorage, with its outage) raises StorageLost
                    restarts = [t for t in restarts if now - t < storage.outage.patience] + [now]
                    if len(restarts) > MAX_RESTARTS:
                        raise
                    logger.warning("%s; this worker gives up its jobs at hand and continues from what the storage "
                                   "holds", lost)
                    claims.release_mine()
                    continue
                claims.sweep()  # the claims of workers that died here after their last job: none is left behind
                return report


def _system_energy_first(config: StudyConfig, target: "Target", directory: Path, progress: bool) -> Path | None:
    """With ``energy = "system"`` and no ZigZag cache in the study folder yet: ZigZag maps every layer now, into a
    scratch folder, before the study folder is written (so a layer it cannot map is refused with nothing written);
    returns the cache file to keep in the folder (:func:`_keep_system_energy`)."""
    if config.objectives.energy != SYSTEM or (directory / SYSTEM_CACHE).is_file():
        return None
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="dse-zigzag-"))
    try:
        records = [target.layer_info(layer.name).as_dict() for layer in target.layers]
        system_table(study_accelerator(config), records, scratch, progress)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return scratch / SYSTEM_CACHE


def _keep_system_energy(cache: Path | None, directory: Path) -> None:
    """Move ZigZag's results computed before the study folder existed into it."""
    if cache is None or not cache.is_file():
        return
    if not (directory / SYSTEM_CACHE).is_file():
        shutil.copyfile(cache, directory / SYSTEM_CACHE)
    shutil.rmtree(cache.parent, ignore_errors=True)


def _run_phases(config, directory, target, multipliers, storage, store, claims, surrogate_factory, progress,
                timings, worker) -> RunReport:
    """Baseline, surrogate and its calibration, search, confirmation; each continues what the storage holds."""
    from .energy import study_energy_model
    from .encoding import Encoding
    from .problem import AssignmentProblem

    names = [m.name for m in multipliers]
    compensation = config.compensation.mode
    n_jobs = config.confirmation.jobs

    # -- baseline ----------------------------------------------------------------------------------
    clock = time.perf_counter()
    exact_comp = "none" if compensation == "searched" else compensation
    exact_job = Job({layer: names[0] for layer in target.approximated}, exact_comp, BASELINE, 0.0, 100.0, 0.0)
    baseline = measure(config, store, [exact_job], None, 1, "baseline (exact)", progress, claims)[exact_job.key].top1
    timings["baseline"] = time.perf_counter() - clock

    # -- surrogate and its calibration -------------------------------------------------------------
    clock = time.perf_counter()
    with _folder_lock(claims, directory, worker):  # workers sharing the folder build its caches once
        energy = study_energy_model(config, target, multipliers, directory, progress)
        surrogate = (surrogate_factory or build_surrogate)(target, multipliers, compensation, directory / "surrogate",
                                                           progress)
        if hasattr(surrogate, "margins"):  # the drop model's margins on the images its drops are measured on
            surrogate.margins = _confirmation_margins(config, target, directory)
    # compensation searched: the surrogate gives each (layer, design) its best one (dse.study.searched), no genes
    encoding = Encoding.build(target.approximated, names, config.grouping.groups, config.grouping.max_distinct)
    problem = AssignmentProblem(encoding, energy, surrogate, config.constraints.max_drop, config.objectives.area)
    timings["surrogate"] = time.perf_counter() - clock
    clock = time.perf_counter()
    path = _greedy(problem)
    _calibrate(config, problem, store, path, baseline, n_jobs, progress, claims)
    problem.score_cap = phases.score_cap(problem, path)
    timings["calibration"] = time.perf_counter() - clock

    # -- search --------------------------------------------------------------------------------------
    clock = time.perf_counter()
    history = _search(config, problem, storage, path, progress, claims)
    timings["search"] = time.perf_counter() - clock

    # -- confirmation ----------------------------------------------------------------------------------
    clock = time.perf_counter()
    rounds = _confirm(config, problem, store, history, baseline, progress, claims)
    timings["confirmation"] = time.perf_counter() - clock

    from .outputs import write_surrogate_front

    surrogate_points = phases.surrogate_points(problem, history)
    write_surrogate_front(directory, surrogate_points)
    front = compute_front(
        config.name, store, surrogate_points, config.constraints.max_drop, config.confirmation.report_drops
    )
    if config.confirmation.held_out:
        clock = time.perf_counter()
        if _hold_out(config, target, store, front, exact_job, progress, claims):
            front = compute_front(
                config.name, store, surrogate_points, config.constraints.max_drop, config.confirmation.report_drops
            )
            timings["held-out check"] = time.perf_counter() - clock
    measured, held = store.by_images()
    return RunReport(front, directory, timings, len(measured), len(history), rounds, len(held))


def _hold_out(config, target, store, front, exact_job, progress, claims) -> bool:
    """Re-measure the exact network, the confirmed front and the point reported at each level on the test images
    the confirmation left out; False when it used them all."""
    images = config.confirmation.images
    if not target.held_out_images(images):
        logger.info("no held-out check: the confirmation used every test image (confirmation.images = %d)", images)
        return False
    baseline_job = exact_job._replace(held_out=True)
    held = measure(config, store, [baseline_job], None, 1, "held-out check (exact)", progress, claims)
    jobs = [  # a point both on the front and reported at a level is measured once (measure keeps one job per key)
        Job(p.assignment, p.compensation, p.role, p.predicted_drop, 100.0 - p.energy_saving, p.mac_saving,
            held_out=True, predicted_interval=_interval(p))
        for p in [*front.points, *(p for _, p in front.levels if p is not None)]
    ]
    measure(config, store, jobs, held[baseline_job.key].top1, config.confirmation.jobs, "held-out check", progress,
            claims)
    return True


def _interval(p: FrontPoint) -> tuple[float, float] | None:
    if p.predicted_drop_low is None or p.predicted_drop_high is None:
        return None
    return p.predicted_drop_low, p.predicted_drop_high


@contextlib.contextmanager
def _folder_lock(claims: Claims, directory: Path, worker: bool) -> Iterator[None]:
    """Hold the study folder's cache lock: one worker on this machine builds what others then load.

    A run without --worker is alone on this machine (:func:`_check_alone`) and needs no lock.
    """
    if not worker:
        yield
        return
    key = f"folder:{Owner.me().host}:{directory.resolve()}"
    while (claim := claims.claim(key)) is None:
        time.sleep(claims.poll)
    yield
    claims.release(claim)


def _start_afresh(config: "StudyConfig", directory: Path, patience: float | None = None) -> None:
    """--fresh: move the earlier folder aside, delete the study from a storage outside it; logs each step."""
    moved = move_aside(directory)
    if moved is not None:
        logger.warning("--fresh: moved the earlier study folder %s to %s (delete it yourself when done with it)",
                       directory, moved)
    section = config.storage
    if not storage_outside(section, directory):
        return
    deleted = delete_studies(open_storage(section, directory, patience), config.name)
    if deleted:
        logger.warning("--fresh: deleted %s from storage %s", ", ".join(deleted), storage_description(section, directory))


def _warn_if_storage_lost(config: "StudyConfig", directory: Path) -> None:
    """A folder whose study ran before (it has a front) but whose own storage file is gone starts afresh: say so."""
    from .storage import SQLITE_NAME, journal_path

    section = config.storage
    if section.url:
        return
    path = journal_path(section, directory) if section.journal else directory / SQLITE_NAME
    if (directory / "front.json").is_file() and not path.is_file():
        logger.warning("the study's storage %s is gone (the folder holds a front from an earlier run): the study "
                       "starts afresh, its earlier trials and measurements are lost", path)


def _check_alone(claims: Claims) -> None:
    """A run without --worker refuses to share the study with a live run on this machine."""
    others = claims.others_here()
    if others:
        pids = ", ".join(str(o.pid) for o in others)
        raise UserError(
            f"another dse run (process {pids}) is working on this study; wait for it or stop it, "
            "or start every process with --worker (on a journal file or database storage) to share the work"
        )


def _confirmation_margins(config: StudyConfig, target: "Target", directory: Path) -> Any:
    """The exact network's margin curve on the confirmation images: read from the study folder, or measured (one exact
    inference) and kept there; a damaged file is measured again."""
    from objectives.atomic_file import write_atomically
    from objectives.distortion.drop_model import MarginCurve

    path = directory / MARGINS_FILE
    if path.is_file():
        try:
            with np.load(path) as data:
                return MarginCurve(data["sigmas"], data["drops"], int(data["classes"]), data["flips"])
        except Exception as error:  # noqa: BLE001 - numpy and zipfile raise many kinds on damaged files
            # (an older study's file without flip counts too)
            logger.warning("the margin curve in %s is unusable (%s); measuring it again", path, error)
    curve = target.margins(config.confirmation.images, config.search.seed)
    flips = {} if curve.flips is None else {"flips": curve.flips}
    write_atomically(path, lambda f: np.savez(f, sigmas=curve.sigmas, drops=curve.drops, classes=curve.classes, **flips))
    return curve


def _greedy(problem: "AssignmentProblem") -> np.ndarray:
    from .seeding import greedy_path

    return greedy_path(problem)


def _calibrate(config, problem, store, path, baseline, n_jobs, progress, claims) -> None:
    """Measure points spread along the greedy path and fit the surrogate's drop map on them."""
    compensation = config.compensation.mode
    points = phases.calibration_points(problem, path, config.surrogate.calibration_points)
    jobs = [phases.make_job(problem, x, compensation, CALIBRATION, None) for x in points]
    measured = measure(config, store, jobs, baseline, n_jobs, "calibration", progress, claims)
    _fit(problem, measured, baseline, 1)


def _fit(problem, measured, baseline, before_round: int) -> None:
    try:
        used = phases.fit_map(problem, measured, baseline, before_round)
    except ValueError as error:
        raise UserError(f"cannot calibrate the surrogate: {error}; raise surrogate.calibration_points") from None
    logger.info("drop map fitted on %d real evaluations", used)


def _confirm(config, problem, store, history, baseline, progress, claims) -> int:
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
        fill = phases.fill_jobs(problem, front, earlier, baseline, budget - spent, config.compensation.mode, round_,
                                jobs)
        picked = {j.key for j in jobs}
        jobs = (jobs + [j for j in fill if j.key not in picked])[: budget - spent]
        if not jobs:
            return round_ - 1
        measure(config, store, jobs, baseline, config.confirmation.jobs, f"confirmation round {round_}", progress, claims)
        round_ += 1


def _search(config, problem, storage, path, progress, claims):
    """Run the engine up to the budget (continuing stored trials) under the search's claim; the whole record.

    One worker searches at a time (generations depend on each other); the others wait for the record
    to reach the budget, and take the search over, resuming from the record, if its worker dies.
    """
    from tqdm import tqdm

    from .engines import make_engine
    from .history import ClaimLost, SearchRecorder
    from .seeding import initial_genotypes

    recorder = SearchRecorder(open_study(storage, config.name, SEARCH, problem.objective_names), problem.encoding)
    near = path[problem.score(path) <= problem.score_cap] if len(path) else path
    seeds = initial_genotypes(problem, config.search.population, near)
    budget = config.search.budget
    with tqdm(total=budget, initial=min(recorder.count(), budget), desc="search (surrogate)", unit="trial",
              disable=not progress) as bar:
        while (done := recorder.count()) < budget:
            bar.update(min(done, budget) - bar.n)
            claim = claims.claim(SEARCH_JOB)
            if claim is None:  # another worker searches
                time.sleep(claims.poll)
                continue
            recorder.guard = lambda: claims.holds(claim)
            try:
                make_engine(config.search, problem, recorder).run(budget, seeds, bar.update)
            except ClaimLost:
                logger.warning("another worker took the search over (this worker's heartbeat was late)")
                continue
            finally:
                recorder.guard = None
            claims.release(claim)
        bar.update(min(recorder.count(), budget) - bar.n)
    return recorder.history()


def _design_record(m: Any, method: str | None) -> dict[str, Any]:
    cost = m.cost(method)
    return {
        "name": m.name, "family": m.family, "params": dict(m.params), "signed": m.signed, "lut_sha256": m.lut_sha256,
        "energy": cost.energy, "area": cost.area, "delay": cost.delay, "cost_method": cost.method, "cost_source": cost.source,
    }

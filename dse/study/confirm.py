"""Real, error-injected inference of assignments, in parallel, each result a trial of the confirm study.

A measurement is keyed by the hash of its assignment (layer -> design, compensation), kept in the
trial's ``assignment_hash`` user attribute: anything already measured is never measured again, so
a rerun redoes nothing finished. Worker processes (joblib) build the study's target from the
study config once and keep it for their later tasks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import TYPE_CHECKING, Any, Iterable, Mapping, NamedTuple, Sequence

from .storage import completed

if TYPE_CHECKING:
    import optuna

    from .config import StudyConfig

logger = logging.getLogger(__name__)

BASELINE, CALIBRATION, CANDIDATE = "baseline", "calibration", "candidate"
COMPENSATION_PARAM = "compensation"


def assignment_hash(assignment: Mapping[str, str], compensation: str | Mapping[str, str]) -> str:
    """SHA-256 of the canonical JSON of an assignment (every searched layer) and its compensation."""
    return hashlib.sha256(json.dumps([dict(assignment), compensation], sort_keys=True).encode()).hexdigest()


class Job(NamedTuple):
    """One real evaluation: the design of every searched layer, why, and what the search predicted."""

    assignment: dict[str, str]
    compensation: str
    role: str
    predicted_drop: float | None
    energy: float  # multiplier energy, percent of all-exact
    mac_saving: float  # whole-MAC energy saved, percent
    search_trial: int | None = None
    round: int = 0  # 0: baseline and calibration; r >= 1: the r-th confirmation round

    @property
    def key(self) -> str:
        """The assignment hash."""
        return assignment_hash(self.assignment, self.compensation)


class Measurement(NamedTuple):
    """A finished real evaluation as stored."""

    assignment: dict[str, str]
    compensation: str
    role: str
    top1: float
    top5: float
    images: int
    seconds: float
    energy: float
    mac_saving: float
    predicted_drop: float | None
    search_trial: int | None
    round: int
    key: str
    number: int


class ConfirmStore:
    """The confirm study: finished measurements by assignment hash; new ones appended."""

    def __init__(self, study: "optuna.Study", layer_names: Sequence[str], multiplier_names: Sequence[str]) -> None:
        from optuna.distributions import CategoricalDistribution

        self.study = study
        self.layer_names = list(layer_names)
        self.distributions = {name: CategoricalDistribution(list(multiplier_names)) for name in layer_names}
        self.distributions[COMPENSATION_PARAM] = CategoricalDistribution(["none", "bias", "affine"])

    def measurements(self) -> dict[str, Measurement]:
        """Every finished measurement, by assignment hash (the first one of a hash wins)."""
        out: dict[str, Measurement] = {}
        for t in completed(self.study):
            a = t.user_attrs
            key = a.get("assignment_hash")
            if key is None or key in out:
                continue
            assignment = {n: t.params[n] for n in self.layer_names}
            out[key] = Measurement(
                assignment, t.params.get(COMPENSATION_PARAM, "none"), a["role"], a["top1"], a["top5"], a["images"],
                a["seconds"], t.values[0], a["mac_saving"], a.get("predicted_drop"), a.get("search_trial"), a.get("round", 0),
                key, t.number,
            )
        return out

    def baseline(self) -> Measurement | None:
        """The exact network's measurement, if made."""
        return next((m for m in self.measurements().values() if m.role == BASELINE), None)

    def record(self, job: Job, result: Mapping[str, float], baseline_top1: float) -> None:
        """Store one finished measurement (values: energy %, measured drop in points)."""
        import optuna

        params: dict[str, Any] = {n: job.assignment[n] for n in self.layer_names}
        params[COMPENSATION_PARAM] = job.compensation
        trial = optuna.trial.create_trial(
            params=params,
            distributions=self.distributions,
            values=[job.energy, baseline_top1 - result["top1"]],
            user_attrs={
                "assignment_hash": job.key,
                "role": job.role,
                "top1": result["top1"],
                "top5": result["top5"],
                "images": int(result["images"]),
                "seconds": result["seconds"],
                "mac_saving": job.mac_saving,
                "predicted_drop": job.predicted_drop,
                "search_trial": job.search_trial,
                "round": job.round,
            },
        )
        self.study.add_trial(trial)


def measure(
    config: "StudyConfig",
    store: ConfirmStore,
    jobs: Iterable[Job],
    baseline_top1: float | None,
    n_jobs: int,
    desc: str,
    progress: bool = True,
) -> dict[str, Measurement]:
    """Evaluate every job not measured yet (in parallel), record each as it finishes; all measurements."""
    from tqdm import tqdm

    done = store.measurements()
    todo = list({job.key: job for job in jobs if job.key not in done}.values())
    if todo:
        images = config.confirmation.images or None
        workers = _workers(n_jobs, len(todo))
        with tqdm(total=len(todo), desc=desc, unit="eval", disable=not progress) as bar:
            for job, result in _results(config, todo, images, workers):
                reference = result["top1"] if baseline_top1 is None else baseline_top1
                store.record(job, result, reference)
                bar.update(1)
                logger.info("%s: top-1 %.2f%% (%d images, %.1f s)", job.role, result["top1"], result["images"], result["seconds"])
    return store.measurements()


def _workers(n_jobs: int, tasks: int) -> int:
    cores = os.cpu_count() or 1
    wanted = cores if n_jobs == -1 else max(1, n_jobs)
    return max(1, min(wanted, tasks))


def _results(config: "StudyConfig", todo: list[Job], images: int | None, workers: int) -> Iterable[tuple[Job, dict]]:
    """(job, result) pairs as they finish: in this process for one worker, else joblib processes."""
    if workers == 1:
        for job in todo:
            yield job, evaluate_job(config, job.assignment, job.compensation, images, threads=None)
        return
    from joblib import Parallel, delayed

    threads = max(1, (os.cpu_count() or 1) // workers)
    tasks = (delayed(_indexed)(i, config, job.assignment, job.compensation, images, threads) for i, job in enumerate(todo))
    for index, result in Parallel(n_jobs=workers, return_as="generator_unordered")(tasks):
        yield todo[index], result


def _indexed(index: int, *args: Any) -> tuple[int, dict]:
    return index, evaluate_job(*args)


def evaluate_job(
    config: "StudyConfig", assignment: Mapping[str, str], compensation: str, images: int | None, threads: int | None
) -> dict[str, float]:
    """Top-1/top-5 of one assignment (runs in worker processes; the target is built once per process)."""
    if threads:  # a worker process: the parent already logged what the study set-up had to say
        import torch

        torch.set_num_threads(threads)
        logging.getLogger("dse.study.candidates").setLevel(logging.ERROR)
    from .target import build_target

    return build_target(config).evaluate(assignment, compensation, images)

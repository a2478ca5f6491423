"""Real, error-injected inference of assignments, in parallel, each result a trial of the confirm study.

A measurement is keyed by the hash of its assignment (layer -> design, compensation), kept in the
trial's ``assignment_hash`` user attribute: anything already measured is never measured again, so
a rerun redoes nothing finished. Each job is claimed through the storage before it runs
(:mod:`dse.study.claims`), so workers sharing a study never measure one assignment twice.
Evaluation processes (joblib's loky) build the study's target from the study config once and keep
it for their later tasks. On a CUDA device (``run.device``) every measurement runs in this process,
one at a time: processes sharing one GPU would only queue on it, each holding its own copy of the
network and the kernels' tables.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import signal
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import TYPE_CHECKING, Any, Iterable, Mapping, NamedTuple, Sequence

from .storage import completed

if TYPE_CHECKING:
    import optuna

    from .claims import Claims
    from .config import StudyConfig

logger = logging.getLogger(__name__)

BASELINE, CALIBRATION, CANDIDATE = "baseline", "calibration", "candidate"
#: The ``subset`` attribute of measurements made on the held-out test images (the others have none).
HELD_OUT = "held-out"
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
    held_out: bool = False  # measured on the test images the confirmation does not use
    predicted_interval: tuple[float, float] | None = None  # the predicted drop's 80% interval (low, high)

    @property
    def key(self) -> str:
        """The assignment hash (suffixed for a measurement on the held-out images)."""
        key = assignment_hash(self.assignment, self.compensation)
        return f"{key}:{HELD_OUT}" if self.held_out else key


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
    hits: str | None = None  # every image's top-1 hit, packed bits in base64 (absent in older studies)
    held_out: bool = False  # measured on the held-out test images
    predicted_interval: tuple[float, float] | None = None  # the predicted drop's 80% interval (absent in older studies)

    @property
    def assignment_key(self) -> str:
        """The assignment hash alone: a held-out measurement's key without its suffix."""
        return self.key.removesuffix(f":{HELD_OUT}")

    def hit_bytes(self) -> bytes:
        """The packed top-1 hits (empty when not recorded)."""
        return base64.b64decode(self.hits) if self.hits else b""


class ConfirmStore:
    """The confirm study: finished measurements by assignment hash; new ones appended."""

    def __init__(self, study: "optuna.Study", layer_names: Sequence[str], multiplier_names: Sequence[str]) -> None:
        from optuna.distributions import CategoricalDistribution

        self.study = study
        self.layer_names = list(layer_names)
        self.distributions = {name: CategoricalDistribution(list(multiplier_names)) for name in layer_names}
        self.distributions[COMPENSATION_PARAM] = CategoricalDistribution(["none", "bias", "affine"])
        for name in layer_names:  # compensation searched: one per layer
            self.distributions[f"{COMPENSATION_PARAM}:{name}"] = CategoricalDistribution(["none", "bias", "affine"])

    def measurements(self) -> dict[str, Measurement]:
        """Every finished measurement on the confirmation images, by assignment hash (the first one of a hash wins)."""
        return self.by_images()[0]

    def held_out(self) -> dict[str, Measurement]:
        """Every finished measurement on the held-out test images, by job key."""
        return self.by_images()[1]

    def by_images(self) -> tuple[dict[str, Measurement], dict[str, Measurement]]:
        """The finished measurements on the confirmation images and on the held-out ones, from one read."""
        finished = self.finished()
        return ({k: m for k, m in finished.items() if not m.held_out},
                {k: m for k, m in finished.items() if m.held_out})

    def finished(self) -> dict[str, Measurement]:
        """Every finished measurement, by job key (the first one of a key wins)."""
        out: dict[str, Measurement] = {}
        for t in completed(self.study):
            a = t.user_attrs
            key = a.get("assignment_hash")
            if key is None or key in out:
                continue
            assignment = {n: t.params[n] for n in self.layer_names}
            compensation = t.params.get(COMPENSATION_PARAM) or {  # searched: one per layer
                n: t.params.get(f"{COMPENSATION_PARAM}:{n}", "none") for n in self.layer_names}
            out[key] = Measurement(
                assignment, compensation, a["role"], a["top1"], a["top5"], a["images"],
                a["seconds"], t.values[0], a["mac_saving"], a.get("predicted_drop"), a.get("search_trial"), a.get("round", 0),
                key, t.number, a.get("hits"), a.get("subset") == HELD_OUT, _interval(a.get("predicted_interval")),
            )
        return out

    def baseline(self) -> Measurement | None:
        """The exact network's measurement, if made."""
        return next((m for m in self.measurements().values() if m.role == BASELINE), None)

    def record(self, job: Job, result: Mapping[str, float], baseline_top1: float) -> None:
        """Store one finished measurement (values: energy %, measured drop in points)."""
        import optuna

        params: dict[str, Any] = {n: job.assignment[n] for n in self.layer_names}
        if isinstance(job.compensation, str):
            params[COMPENSATION_PARAM] = job.compensation
        else:
            params.update({f"{COMPENSATION_PARAM}:{n}": job.compensation[n] for n in self.layer_names})
        trial = optuna.trial.create_trial(
            params=params,
            distributions={k: self.distributions[k] for k in params},
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
                **({"predicted_interval": list(job.predicted_interval)} if job.predicted_interval else {}),
                "search_trial": job.search_trial,
                "round": job.round,
                **({"hits": result["hits"]} if result.get("hits") else {}),
                **({"subset": HELD_OUT} if job.held_out else {}),
            },
        )
        self.study.add_trial(trial)


def _interval(value: Any) -> tuple[float, float] | None:
    """A stored interval as (low, high); None when absent or not two numbers (a damaged or older study)."""
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return low, high


def measure(
    config: "StudyConfig",
    store: ConfirmStore,
    jobs: Iterable[Job],
    baseline_top1: float | None,
    n_jobs: int,
    desc: str,
    progress: bool = True,
    claims: "Claims | None" = None,
) -> dict[str, Measurement]:
    """Measure every job not measured yet, with other workers; all measurements once every job is measured.

    Each job is claimed through the storage before it runs (``claims``; none: this process is the
    only worker), so no two workers measure one assignment; jobs other workers hold are waited for,
    and taken over when their worker dies. Each measurement is recorded as it finishes.
    """
    from tqdm import tqdm

    wanted = list({job.key: job for job in jobs}.values())
    done = store.finished()
    if all(job.key in done for job in wanted):
        return done
    images = config.confirmation.images or None
    workers = _workers(n_jobs, len(wanted))
    if workers > 1:
        device = _gpu(config)
        if device is not None:
            logger.info("%s on %s: measuring in this process, one job at a time (confirmation.jobs = %d applies to "
                        "the CPU only)", desc, device, n_jobs)
            workers = 1
    pool = _ProcessPool(workers) if workers > 1 else _InlinePool()
    running: dict[Any, tuple[Job, int | None]] = {}
    finished = sum(job.key in done for job in wanted)
    with tqdm(total=len(wanted), initial=finished, desc=desc, unit="eval", disable=not progress) as bar:
        try:
            while True:
                todo = [job for job in wanted if job.key not in done]
                if not todo and not running:
                    return done
                started = _start(config, store, todo, running, pool, workers, images, claims)
                ended = pool.finished(list(running), timeout=claims.poll if claims is not None else None)
                for future in ended:
                    job, claim = running.pop(future)
                    _record(store, job, future.result(), baseline_top1, claims, claim)
                if not (started or ended or running) and claims is not None:
                    time.sleep(claims.poll)  # every open job is another worker's
                done = store.finished()
                bar.update(sum(job.key in done for job in wanted) - bar.n)
        except BaseException:
            pool.abort()
            raise


def _start(config, store, todo, running, pool, workers, images, claims) -> int:
    """Claim and start open jobs while evaluation slots are free; how many started."""
    mine = {job.key for job, _ in running.values()}
    started = 0
    for job in todo:
        if len(running) >= workers:
            break
        if job.key in mine:
            continue
        claim = claims.claim(job.key) if claims is not None else None
        if claims is not None and claim is None:
            continue  # another worker holds it
        if claims is not None and job.key in store.finished():  # finished by another worker meanwhile
            claims.release(claim)
            continue
        running[pool.submit(config, job, images)] = (job, claim)
        started += 1
    return started


def _record(store: ConfirmStore, job: Job, result: dict, baseline_top1: float | None, claims: "Claims | None",
            claim: int | None) -> None:
    """Store one finished measurement unless another worker stored it first; then release its claim."""
    if job.key in store.finished():
        logger.warning("%s: measured by another worker as well (its claim was taken over); kept the first", job.key[:12])
    else:
        store.record(job, result, result["top1"] if baseline_top1 is None else baseline_top1)
        logger.info("%s%s: top-1 %.2f%% (%d images, %.1f s)", job.role, " (held out)" if job.held_out else "",
                    result["top1"], result["images"], result["seconds"])
    if claims is not None and claim is not None:
        claims.release(claim)


class _InlinePool:
    """Runs each job in this process when submitted."""

    def submit(self, config: "StudyConfig", job: Job, images: int | None) -> Future:
        future: Future = Future()
        future.set_result(evaluate_job(config, job.assignment, job.compensation, images, None, job.held_out))
        return future

    def finished(self, futures: list[Future], timeout: float | None) -> list[Future]:
        return futures

    def abort(self) -> None:
        return None


class _ProcessPool:
    """joblib's reusable worker processes (each keeps its built target); they ignore Ctrl-C, the parent decides."""

    def __init__(self, workers: int) -> None:
        from joblib.externals.loky import get_reusable_executor

        self.threads = max(1, (os.cpu_count() or 1) // workers)
        self.executor = get_reusable_executor(max_workers=workers, initializer=_ignore_interrupts)

    def submit(self, config: "StudyConfig", job: Job, images: int | None) -> Future:
        return self.executor.submit(
            evaluate_job, config, job.assignment, job.compensation, images, self.threads, job.held_out)

    def finished(self, futures: list[Future], timeout: float | None) -> list[Future]:
        if not futures:
            return []
        done, _ = wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
        return [f for f in futures if f in done]

    def abort(self) -> None:
        """Interrupted or failed: stop the running evaluations now."""
        self.executor.shutdown(wait=False, kill_workers=True)


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _gpu(config: "StudyConfig") -> Any:
    """The study's device when it is a CUDA GPU (``run.device``), else None."""
    from .target import study_device

    device = study_device(config)
    return device if device.type == "cuda" else None


def _workers(n_jobs: int, tasks: int) -> int:
    cores = os.cpu_count() or 1
    wanted = cores if n_jobs == -1 else max(1, n_jobs)
    return max(1, min(wanted, tasks))


def evaluate_job(
    config: "StudyConfig", assignment: Mapping[str, str], compensation: str, images: int | None, threads: int | None,
    held_out: bool = False,
) -> dict[str, float]:
    """Top-1/top-5 of one assignment on the confirmation images, or with ``held_out`` on the test images they
    leave out (runs in worker processes; the target is built once per process)."""
    if threads:  # a worker process: the parent already logged what the study set-up had to say
        import torch

        torch.set_num_threads(threads)
        logging.getLogger("dse.study.candidates").setLevel(logging.ERROR)
    from .target import build_target

    return build_target(config).evaluate(assignment, compensation, images, held_out=held_out)

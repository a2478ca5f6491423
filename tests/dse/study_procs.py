"""Helpers for the resume and worker tests: fake studies in processes and in this one, and what storages hold."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import optuna
import pytest
from optuna.trial import TrialState

from dse.study.config import load_study
from dse.study.runner import RunReport, run_study

from .study_fake_run import DELAY_VARIABLE, HANG_VARIABLE, install

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "studies" / "digits.toml"
ENTRY = Path(__file__).with_name("study_fake_run.py")
#: A small fake study: a few seconds per run.
SMALL = (
    "search.budget=160", "search.population=20", "confirmation.candidates=6", "surrogate.calibration_points=3",
    "confirmation.jobs=1",
)
#: Claims' heartbeat in the tests (seconds): a dead worker on "another machine" is noticed in 3 of them.
HEARTBEAT = 0.5
#: Longest wait for a process to reach a state (a safety net, not a timing assertion).
PATIENCE = 120.0


def overrides(*extra: str) -> list[str]:
    """``--set`` arguments for the small study plus ``extra`` (TABLE.KEY=VALUE each)."""
    return [arg for item in (*SMALL, *extra) for arg in ("--set", item)]


def start(out: Path, *args: str, delay: float = 0.0, hang_after: int | None = None,
          extra: tuple[str, ...] = (), stdout: Any = subprocess.PIPE, stderr: Any = subprocess.PIPE) -> subprocess.Popen:
    """``dse run`` of the small fake study in a new process (output captured, or to ``stdout``/``stderr``);
    ``hang_after``: see study_fake_run."""
    env = {**os.environ, DELAY_VARIABLE: str(delay)}
    if hang_after is not None:
        env[HANG_VARIABLE] = str(hang_after)
    argv = [sys.executable, str(ENTRY), "run", str(DIGITS), "--out", str(out), "--quiet",
            "--heartbeat", str(HEARTBEAT), *overrides(*extra), *args]
    return subprocess.Popen(argv, env=env, stdout=stdout, stderr=stderr, text=True, cwd=REPO,
                            preexec_fn=_default_interrupt)


def _default_interrupt() -> None:
    """Ctrl-C raises KeyboardInterrupt in the run, as in a terminal, even when the test suite itself runs as a
    background job (whose children inherit SIGINT ignored; Python then installs no handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def finish(process: subprocess.Popen) -> tuple[int, str, str]:
    """Wait for a process: (exit code, stdout, stderr)."""
    out, err = process.communicate(timeout=PATIENCE)
    return process.returncode, out, err


def run_here(out: Path, *extra: str, **options) -> RunReport:
    """The small fake study run in this process (``options``: worker, fresh, heartbeat)."""
    config = load_study(DIGITS, [*SMALL, *extra])
    with pytest.MonkeyPatch.context() as patch:
        install(patch.setattr)
        options.setdefault("heartbeat", HEARTBEAT)
        return run_study(config, out, progress=False, **options)


_REFERENCES: dict[Path, tuple] = {}


def reference_run(out: Path, *extra: str) -> tuple:
    """The small study (with the overrides ``extra``) run once per test session without interruption into ``out``:
    (report, search records, measured hashes, folder)."""
    if out not in _REFERENCES:
        report = run_here(out, *extra)
        storage = storage_of(out)
        _REFERENCES[out] = (report, search_records(storage), sorted(measured_hashes(storage)), out)
    return _REFERENCES[out]


def storage_of(out: Path, journal: str = "", url: str = "") -> optuna.storages.BaseStorage:
    """The storage a small study in ``out`` uses."""
    if url:
        return optuna.storages.RDBStorage(url)
    if journal:
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        return JournalStorage(JournalFileBackend(str(out / journal)))
    return optuna.storages.RDBStorage(f"sqlite:///{out / 'study.db'}")


def trials(storage, role: str, states=None) -> list[optuna.trial.FrozenTrial]:
    """Trials of ``digits:<role>`` (empty when the study is not created yet)."""
    try:
        study = optuna.load_study(study_name=f"digits:{role}", storage=storage)
    except KeyError:
        return []
    return study.get_trials(deepcopy=False, states=states)


def wait_until(condition: Callable[[], bool], process: subprocess.Popen, what: str) -> None:
    """Poll ``condition`` while ``process`` runs; fail if it ends first."""
    deadline = time.monotonic() + PATIENCE
    while not condition():
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"the run ended (exit {process.returncode}) before {what}:\n{err[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no {what} within {PATIENCE} s")
        time.sleep(0.05)


def kill(process: subprocess.Popen, signum: int = signal.SIGKILL) -> tuple[int, str, str]:
    """Send ``signum`` and wait for the process to end."""
    process.send_signal(signum)
    return finish(process)


class Watch:
    """Reads a storage another process is creating: counts are 0 until it can be opened."""

    def __init__(self, out: Path, journal: str = "", url: str = "") -> None:
        self.out, self.journal, self.url = out, journal, url
        self.storage = None

    def count(self, role: str, states=(TrialState.COMPLETE,)) -> int:
        """How many trials of ``role`` are in ``states`` (0 while the storage is not there yet)."""
        if self.storage is None:
            if not self.url and not (self.out / (self.journal or "study.db")).exists():
                return 0
            try:
                self.storage = storage_of(self.out, self.journal, self.url)
            except Exception:  # tables being created by the other process
                return 0
        return len(trials(self.storage, role, states))


def measured_hashes(storage) -> list[str]:
    """The assignment hash of every completed measurement, duplicates kept."""
    return [t.user_attrs["assignment_hash"] for t in trials(storage, "confirm", (TrialState.COMPLETE,))]


def search_records(storage) -> list[dict]:
    """The stored search trials in trial order: genotype and the engine's state (NSGA-II generation ...), values."""
    done = sorted(trials(storage, "search", (TrialState.COMPLETE,)), key=lambda t: t.number)
    return [{**t.system_attrs["dse"], "values": t.values} for t in done]


def front_of(report_or_folder) -> list[tuple]:
    """A front (a run's report, or a study folder's front.json) as comparable rows: assignment, top-1, saving."""
    if isinstance(report_or_folder, Path):
        return front_of_json((report_or_folder / "front.json").read_text())
    from dse.study.render import front_json

    return front_of_json(front_json(report_or_folder.front))


def front_of_json(text: str) -> list[tuple]:
    """:func:`front_of` for a front's JSON text."""
    import json

    return [(tuple(sorted(p["assignment"].items())), round(p["top1"], 9), round(p["energy_saving"], 9))
            for p in json.loads(text)]


def assert_one_study(storage, fronts, reference) -> None:
    """Every worker's front is the reference's; the search and measurements are the reference's, none twice;
    no claim is left behind."""
    expected, expected_records, expected_hashes, _ = reference
    for front in fronts:
        assert front == front_of(expected)
    assert search_records(storage) == expected_records
    hashes = measured_hashes(storage)
    assert len(hashes) == len(set(hashes)), "an assignment was measured twice"
    assert sorted(hashes) == expected_hashes
    assert not trials(storage, "claims", (TrialState.RUNNING,)), "a claim was left behind"

"""Chaos: shared studies whose workers are killed again and again and whose database restarts under them.

The small fake study (:mod:`study_fake_run`: real storage, claims, engines and confirmation rounds, a fake
network whose every measurement takes :data:`DELAY` seconds) run by several ``dse run --worker`` processes,
one of them killed with SIGKILL every few seconds and replaced (:mod:`chaos`); on PostgreSQL the server is
also restarted once while jobs run. It must end exactly as one uninterrupted run: the same front, search
and measurements, none made twice, no claim left behind, and no worker that needed restarting by hand.
``python benchmarks/chaos.py`` runs the same on the real digits study, bigger.

Also here: a database that stays away longer than the patience ends a worker with one line (exit 2) and
the rerun loses nothing; each kind of storage failure gets its own message and advice.
"""

from __future__ import annotations

import errno
import os
import random
import threading

import optuna
import pytest
from optuna.trial import TrialState

from dse.errors import UserError
from dse.study import failures
from dse.study.failures import Failure, classify, message
from dse.study.resilient import Outage, RetryingStorage
from dse.study.schema import StorageSection
from dse.study.storage import masked, open_storage, storage_errors
from tests.conftest import skip_or_fail

from .chaos import run_chaos
from .postgres import PostgresServer, PostgresUnavailable
from .study_procs import (
    Watch, assert_one_study, finish, front_of, reference_run, run_here, start, storage_of, trials, wait_until,
)

#: The small study of the other worker tests (their reference serves here too).
CHAOS: tuple[str, ...] = ()
#: Seconds each fake measurement takes: long enough for kills and the restart to land among running jobs.
DELAY = 1.0
#: Seed of the chaos (which worker dies when); a failure message names it.
SEED = int(os.environ.get("DSE_CHAOS_SEED", "0"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The small study run once per session without interruption (shared with the other worker tests)."""
    return reference_run(tmp_path_factory.getbasetemp() / "reference", *CHAOS)


@pytest.fixture
def server():
    try:
        pg = PostgresServer()
    except PostgresUnavailable as missing:
        skip_or_fail(str(missing))
    with pg:
        yield pg


def _measuring(storage_of_run) -> bool:
    """True once the calibration is being measured (past the baseline and a calibration point) with a job claimed."""
    storage = storage_of_run()
    confirmed = len(trials(storage, "confirm", (TrialState.COMPLETE,)))
    running = len(trials(storage, "claims", (TrialState.RUNNING,)))
    return confirmed >= 1 + 2 and running > 0


def test_three_workers_on_postgresql_survive_kills_and_a_database_restart(reference, tmp_path, server):
    extra = (f"storage.url='{server.url}'", *CHAOS)
    folders = [tmp_path / f"machine{slot}" for slot in range(3)]  # as on three machines: a folder each, one database
    storage = None

    def start_worker(slot, stdout, stderr):
        return start(folders[slot], "--worker", delay=DELAY, extra=extra, stdout=stdout, stderr=stderr)

    def reader():
        nonlocal storage
        storage = storage or optuna.storages.RDBStorage(server.url, engine_kwargs={"pool_pre_ping": True})
        return storage

    result = run_chaos(start_worker, tmp_path / "logs", workers=3, kills=4, every=(1.0, 2.5), seed=SEED,
                       restart=lambda: server.restart(down=1.0), ready=lambda: _measuring(reader), timeout=240)
    context = f"seed {SEED}, {result.kills} kills, {result.restarts} restarts\n{result.logs()}"
    assert not result.timed_out and not result.failures(), context
    assert result.restarts == 1 and result.kills >= 3, context
    said = "\n".join(e.err() for e in result.ended) + "".join(p.read_text() for p in result.killed_logs)
    assert "lost the connection to the study's storage" in said and "answers again" in said, context
    assert "free space" not in said and "Traceback" not in said, context
    ended = sorted({e.slot for e in result.ended})
    assert_one_study(storage_of(folders[0], url=server.url), [front_of(folders[slot]) for slot in ended], reference)


def test_two_workers_on_a_journal_survive_kills(reference, tmp_path):
    out = tmp_path / "digits"  # one machine: one folder, one journal file in it
    extra = ("storage.journal='study.journal'", *CHAOS)

    def start_worker(slot, stdout, stderr):
        return start(out, "--worker", delay=DELAY, extra=extra, stdout=stdout, stderr=stderr)

    result = run_chaos(start_worker, tmp_path / "logs", workers=2, kills=3, every=(1.0, 2.5), seed=SEED, timeout=240)
    context = f"seed {SEED}, {result.kills} kills\n{result.logs()}"
    assert not result.timed_out and not result.failures(), context
    assert result.kills >= 2, context
    assert_one_study(storage_of(out, journal="study.journal"), [front_of(out)], reference)


def test_a_worker_waits_for_a_database_not_up_yet_and_gives_up_on_one_gone_past_its_patience(
        reference, tmp_path, server):
    out = tmp_path / "machine"
    extra = (f"storage.url='{server.url}'", *CHAOS)
    server.stop()
    log = tmp_path / "worker.err"
    with open(log, "w") as stderr:
        process = start(out, "--worker", "--storage-patience", "3", delay=DELAY, extra=extra, stderr=stderr)
    wait_until(lambda: "lost the connection to the study's storage" in log.read_text(), process, "the wait")
    assert "retrying for up to 3 s" in log.read_text()
    server.start()  # within its patience: it goes on
    watch = Watch(out, url=server.url)
    wait_until(lambda: watch.count("confirm") >= 2, process, "a measurement")
    server.stop()  # for good: past its patience it gives up
    code, _, _ = finish(process)
    err = log.read_text()
    lines = [line for line in err.splitlines() if line.startswith("dse: error")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err[-3000:]
    assert "answers again" in err  # the first outage
    assert "lost the connection to the study's storage" in lines[0] and "--storage-patience 3" in lines[0]
    assert "start the database server" in lines[0] and "free space" not in lines[0]
    server.start()
    report = run_here(out, *extra, worker=True)
    assert_one_study(storage_of(out, url=server.url), [front_of(report)], reference)


# -- each failure its own message ---------------------------------------------------------------------------
def test_a_wrong_database_url_is_refused_at_once_with_advice(tmp_path, server):
    bad = server.url.replace("dse@", "nobody:secret@")
    with pytest.raises(UserError) as caught:
        open_storage(StorageSection(url=bad), tmp_path, patience=30)
    text = str(caught.value)
    assert "refused the connection" in text and "check storage.url" in text and "secret" not in text
    assert "\n" not in text


def test_the_retrying_storage_rides_out_a_restart_and_gives_up_after_its_patience(tmp_path, server, caplog):
    storage = open_storage(StorageSection(url=server.url), tmp_path, patience=4)
    assert isinstance(storage, RetryingStorage)
    study = optuna.create_study(storage=storage, study_name="s")
    study.add_trial(optuna.trial.create_trial(value=1.0))
    server.stop()
    back = threading.Timer(1.0, server.start)
    back.start()
    try:
        assert len(study.trials) == 1  # waited for the server, no error
    finally:
        back.join()
    study.add_trial(optuna.trial.create_trial(value=2.0))
    assert "lost the connection" in caplog.text and "answers again" in caplog.text
    server.stop()
    with pytest.raises(UserError, match=r"has not answered for \d+ s \(--storage-patience 4\)"):
        study.trials
    with pytest.raises(UserError, match="--storage-patience 4"):  # once given up, at once
        study.add_trial(optuna.trial.create_trial(value=3.0))
    server.start()


class _Driver(Exception):
    """A driver exception with a SQLSTATE, as psycopg2 raises them."""

    def __init__(self, text: str, pgcode: str | None = None) -> None:
        super().__init__(text)
        self.pgcode = pgcode


def _wrapped(text: str, pgcode: str | None = None, invalidated: bool = False, statement: str | None = "SELECT 1"):
    """A driver error as optuna hands it on: StorageInternalError from SQLAlchemy's OperationalError."""
    import sqlalchemy.exc

    error = sqlalchemy.exc.OperationalError(statement, {}, _Driver(text, pgcode), connection_invalidated=invalidated)
    try:
        try:
            raise error
        except sqlalchemy.exc.OperationalError as inner:
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from inner
    except optuna.exceptions.StorageInternalError as outer:
        return outer


@pytest.mark.parametrize("text, pgcode, invalidated, statement, kind, in_doubt", [
    ("server closed the connection unexpectedly", None, True, "INSERT", failures.CONNECTION, True),
    ('connection to server at "127.0.0.1", port 5 failed: Connection refused', None, False, None,
     failures.CONNECTION, False),
    ("FATAL:  the database system is starting up", None, False, None, failures.CONNECTION, False),
    ("terminating connection due to administrator command", "57P01", False, "INSERT", failures.CONNECTION, True),
    ("could not serialize access", "40001", False, "UPDATE", failures.CONNECTION, False),
    ("could not extend file: No space left on device", "53100", False, "INSERT", failures.FULL, False),
    ("database or disk is full", None, False, "INSERT", failures.FULL, False),
    ("cannot execute INSERT in a read-only transaction", "25006", False, "INSERT", failures.READ_ONLY, False),
    ("attempt to write a readonly database", None, False, "INSERT", failures.READ_ONLY, False),
    ("permission denied for table trials", "42501", False, "INSERT", failures.PERMISSION, False),
    ('FATAL:  password authentication failed for user "dse"', None, False, None, failures.ACCESS, False),
    ('FATAL:  role "nobody" does not exist', None, False, None, failures.ACCESS, False),
    ("database is locked", None, False, "INSERT", failures.LOCKED, False),
    ("database disk image is malformed", None, False, "SELECT", failures.DAMAGED, False),
    ("disk I/O error", None, False, "INSERT", failures.DISK, False),
    ("something new", None, False, "INSERT", failures.OTHER, False),
])
def test_each_storage_failure_is_told_by_its_cause(text, pgcode, invalidated, statement, kind, in_doubt):
    failure = classify(_wrapped(text, pgcode, invalidated, statement))
    assert failure == Failure(kind, text, in_doubt)
    line = message(failure, "the study's storage postgresql://h/db")
    assert "\n" not in line and text in line
    advice = {failures.CONNECTION: "start the database server", failures.FULL: "free space",
              failures.READ_ONLY: "make it writable", failures.PERMISSION: "write access",
              failures.ACCESS: "check storage.url", failures.LOCKED: "SQLite serves one process",
              failures.DAMAGED: "restore it from a copy", failures.DISK: "check the disk",
              failures.OTHER: "run the same command again"}[kind]
    assert advice in line
    others = {"free space", "make it writable", "start the database server", "check storage.url"} - {advice}
    assert not any(o in line for o in others)


@pytest.mark.parametrize("code, kind, advice", [
    (errno.ENOSPC, failures.FULL, "free space"), (errno.EDQUOT, failures.FULL, "free space"),
    (errno.EROFS, failures.READ_ONLY, "make it writable"), (errno.EACCES, failures.PERMISSION, "write access"),
    (errno.EIO, failures.DISK, "check the disk"), (errno.EFBIG, failures.SIZE_LIMIT, "raise the limit"),
])
def test_file_failures_in_the_study_folder_are_told_by_their_cause(tmp_path, code, kind, advice):
    path = tmp_path / "front.json"
    with pytest.raises(UserError) as caught, storage_errors("sqlite:///x.db"):
        raise OSError(code, os.strerror(code), str(path))
    assert str(caught.value).startswith(f"cannot write to {path}") and advice in str(caught.value)
    with pytest.raises(KeyError), storage_errors("sqlite:///x.db"):  # a bug stays a bug
        raise KeyError("x")


def test_passwords_are_hidden_in_messages():
    assert masked("postgresql+psycopg2://dse:hunter2@db:5432/dse") == "postgresql+psycopg2://dse:***@db:5432/dse"
    assert masked("journal:/tmp/a@b.journal") == "journal:/tmp/a@b.journal"


def test_pauses_grow_to_the_longest_and_the_patience_is_kept():
    now = [0.0]
    outage = Outage("db", patience=20.0, longest=4.0, clock=lambda: now[0])
    waits = []
    outage._back.wait = lambda pause: waits.append(pause) or now.__setitem__(0, now[0] + pause)  # type: ignore
    random.seed(1)
    failure = Failure(failures.CONNECTION, "refused")
    with pytest.raises(UserError, match="has not answered for 20 s"):
        for attempt in range(100):
            outage.failed(failure, attempt)
    nominal = [min(4.0, 0.5 * 2 ** k) for k in range(len(waits))]
    assert all(0.5 * n <= w <= n for w, n in zip(waits, nominal))
    assert 20.0 <= now[0] < 24.0  # gave up past the patience, within one longest pause

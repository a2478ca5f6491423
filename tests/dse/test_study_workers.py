"""Several workers on one study: claims through the storage, a journal file, PostgreSQL, a worker that dies.

Every study here is the small fake study (:mod:`study_fake_run`); a shared run must end exactly as one
uninterrupted worker does: the same front, the same search trials, every assignment measured once.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import optuna
import pytest
from optuna.trial import TrialState

from dse.errors import UserError
from dse.study.claims import BEAT, KEY, OWNER, Claims, Owner, _process_start
from tests.conftest import skip_or_fail

from .postgres import PostgresServer, PostgresUnavailable
from .study_procs import (
    HEARTBEAT, Watch, assert_one_study, finish, front_of, kill, measured_hashes, reference_run, run_here, start,
    storage_of, trials, wait_until,
)

JOURNAL = "study.journal"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The small study run once, without interruption: (report, search records, measured hashes, folder)."""
    return reference_run(tmp_path_factory.getbasetemp() / "reference")


# -- claims ------------------------------------------------------------------------------------------------
def _claims(storage, heartbeat: float = HEARTBEAT) -> Claims:
    study = optuna.create_study(storage=storage, study_name="s:claims", load_if_exists=True)
    return Claims(study, heartbeat)


def test_a_claimed_job_is_refused_to_others_until_released(tmp_path):
    storage = storage_of(tmp_path, journal=JOURNAL)
    first, second = _claims(storage), _claims(storage)
    held = first.claim("job")
    assert held is not None and second.claim("job") is None
    assert second.claim("other") is not None
    first.release(held)
    assert second.claim("job") is not None


def test_claims_racing_for_one_job_leave_it_to_at_most_one(tmp_path):
    storage = storage_of(tmp_path, journal=JOURNAL)
    workers = [_claims(storage) for _ in range(6)]
    for attempt in range(5):
        got: list[int] = []
        barrier = threading.Barrier(len(workers))

        def race(claims: Claims) -> None:
            barrier.wait()
            if claims.claim(f"job{attempt}") is not None:
                got.append(1)

        threads = [threading.Thread(target=race, args=(w,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(got) <= 1
        live = workers[0].live().get(f"job{attempt}", [])
        assert len(live) == len(got)


def test_a_silent_claim_of_another_machine_is_released_after_its_grace(tmp_path):
    storage = storage_of(tmp_path, journal=JOURNAL)
    holder, other = _claims(storage, heartbeat=0.1), _claims(storage, heartbeat=0.1)
    with holder:  # its heartbeats run
        held = holder.claim("job")
        storage.set_trial_user_attr(held, OWNER, "another-machine:1:1")  # only its heartbeat can tell it lives
        for _ in range(8):  # longer than the grace: the beating claim stands
            time.sleep(0.1)
            assert other.claim("job") is None
        holder._stop.set()  # the holder falls silent
        holder._thread.join()
        time.sleep(other.grace + 0.3)
        assert other.claim("job") is not None
        assert storage.get_trial(held).state == TrialState.FAIL


def test_a_run_without_worker_refuses_to_share_with_a_live_run_here(tmp_path):
    journal = tmp_path / "shared.journal"
    storage = storage_of(tmp_path, journal=journal.name)
    study = optuna.create_study(storage=storage, study_name="digits:claims")
    sleeper = subprocess.Popen(["sleep", "60"])  # a live process on this machine holding the search
    try:
        owner = Owner(socket.gethostname(), sleeper.pid, _process_start(sleeper.pid))
        template = optuna.trial.create_trial(state=TrialState.RUNNING, user_attrs={KEY: "search", OWNER: str(owner), BEAT: 0})
        storage.create_new_trial(study._study_id, template_trial=template)
        with pytest.raises(UserError, match=rf"another dse run \(process {sleeper.pid}\).*--worker"):
            run_here(tmp_path / "digits", f"storage.journal='{journal}'")
    finally:
        sleeper.kill()
        sleeper.wait()


def test_worker_needs_a_shared_storage(tmp_path):
    with pytest.raises(UserError, match="--worker needs a storage several processes share"):
        run_here(tmp_path / "digits", worker=True)


# -- workers in processes ------------------------------------------------------------------------------------
def test_two_workers_on_one_journal_finish_one_study(reference, tmp_path):
    out = tmp_path / "digits"
    extra = (f"storage.journal='{JOURNAL}'",)
    workers = [start(out, "--worker", delay=0.5, extra=extra) for _ in range(2)]
    results = [finish(w) for w in workers]
    for code, _, err in results:
        assert code == 0, err[-3000:]
    storage = storage_of(out, journal=JOURNAL)
    assert_one_study(storage, [front_of(out)], reference)
    assert len(_owners(storage)) == 2, "one worker did all the work"


@pytest.mark.parametrize("where", ["same machine", "another machine"])
def test_a_worker_killed_holding_a_confirmation_job_leaves_it_to_another_done_once(reference, tmp_path, where):
    out = tmp_path / "digits"
    extra = (f"storage.journal='{JOURNAL}'",)
    process = start(out, "--worker", hang_after=1 + 3, extra=extra)  # stuck in its first candidate's confirmation
    watch = Watch(out, journal=JOURNAL)

    def holds_a_confirmation() -> bool:
        running = watch.count("claims", (TrialState.RUNNING,))
        return watch.count("confirm") >= 1 + 3 and running > 0 and _held_job(watch.storage) is not None

    wait_until(holds_a_confirmation, process, "a claimed confirmation")
    kill(process)
    held = _held_job(watch.storage)
    assert held is not None
    claim_id, key = held
    assert key not in measured_hashes(watch.storage)
    if where == "another machine":  # only its heartbeat can tell: it stands still from now on
        watch.storage.set_trial_user_attr(claim_id, OWNER, "another-machine:1:1")
    report = run_here(out, *extra, worker=True)
    storage = storage_of(out, journal=JOURNAL)
    assert storage.get_trial(claim_id).state == TrialState.FAIL
    done = [t for t in trials(storage, "claims", (TrialState.COMPLETE,)) if t.user_attrs[KEY] == key]
    assert len(done) == 1 and done[0].user_attrs[OWNER] == str(Owner.me())
    assert measured_hashes(storage).count(key) == 1
    measured = [t for t in trials(storage, "confirm", (TrialState.COMPLETE,)) if t.user_attrs["assignment_hash"] == key]
    assert measured[0].user_attrs["role"] == "candidate"
    assert_one_study(storage, [front_of(report)], reference)


def _owners(storage) -> set[str]:
    """The workers that finished jobs."""
    return {t.user_attrs[OWNER] for t in trials(storage, "claims", (TrialState.COMPLETE,))}


def _held_job(storage) -> tuple[int, str] | None:
    """A RUNNING claim on a measurement not made yet: (claim trial id, assignment hash)."""
    measured = set(measured_hashes(storage))
    for t in trials(storage, "claims", (TrialState.RUNNING,)):
        key = t.user_attrs.get(KEY, "")
        if len(key) == 64 and ":" not in key and key not in measured:
            return t._trial_id, t.user_attrs[KEY]
    return None


# -- PostgreSQL ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL server on a free loopback port (:mod:`tests.dse.postgres`)."""
    try:
        server = PostgresServer()
    except PostgresUnavailable as missing:
        skip_or_fail(str(missing))
    with server:
        yield server.url


def test_two_workers_on_postgresql_finish_one_study(reference, tmp_path, postgres):
    extra = (f"storage.url='{postgres}'",)
    folders = [tmp_path / "machine1", tmp_path / "machine2"]  # as on two machines: a folder each, one database
    workers = [start(folder, "--worker", delay=0.5, extra=extra) for folder in folders]
    for code, _, err in (finish(w) for w in workers):
        assert code == 0, err[-3000:]
    storage = storage_of(folders[0], url=postgres)
    assert_one_study(storage, [front_of(f) for f in folders], reference)
    assert len(_owners(storage)) == 2, "one worker did all the work"

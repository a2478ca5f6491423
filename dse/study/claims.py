"""Claims on jobs (a confirmation, the search), made through the study's storage so workers share them.

A claim is a RUNNING trial of the optuna study ``<name>:claims`` whose user attributes name the job
(``claim``), the worker that holds it (``owner``: host, process id and process start) and a heartbeat
counter (``beat``) the holder raises every ``heartbeat`` seconds from a background thread. The storage
offers no compare-and-swap, so a claim is taken in two steps: a worker that sees no live claim on a
job adds its own, reads the job's claims again, and keeps its claim only if it sees no other live
one (else it withdraws, marking its trial FAIL). Two workers cannot both keep a claim: the later of
the two re-reads sees the other's claim. Both may withdraw; they retry after a random pause.

A claim is dead, and marked FAIL so another worker takes the job, when its holder runs on this host
and its process is gone (noticed at once: a rerun after kill -9 continues immediately), or when its
heartbeat has not moved for ``grace`` seconds of this worker's own clock (a worker on another
machine; no clocks are compared). Finished jobs release their claim as COMPLETE. Works on every
optuna storage: SQLite, a journal file, PostgreSQL or any other database optuna supports.

While a database storage does not answer nobody's heartbeat can move, so silence is counted from the moment
it answers again (:mod:`dse.study.resilient`). A claim whose creation lost its answer may or may not exist:
the worker withdraws it (:meth:`Claims.claim`, :meth:`Claims.release_mine`), and a finished run withdraws any
such stray and marks the claims of dead workers (:meth:`Claims.sweep`), so no claim is left behind.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .failures import StorageLost

if TYPE_CHECKING:
    import optuna

logger = logging.getLogger(__name__)

KEY, OWNER, BEAT = "claim", "owner", "beat"
#: Seconds between a claim holder's heartbeats unless told otherwise (``dse run --heartbeat``).
DEFAULT_HEARTBEAT = 20.0
#: A claim whose heartbeat stands still for this many heartbeats is dead.
GRACE_BEATS = 3


@dataclass(frozen=True)
class Owner:
    """Who holds a claim: the host, the process id and the process's start (process ids are reused)."""

    host: str
    pid: int
    start: str

    @classmethod
    def me(cls) -> "Owner":
        """This process."""
        return cls(socket.gethostname(), os.getpid(), _process_start(os.getpid()))

    @classmethod
    def parse(cls, text: str) -> "Owner":
        """An owner from its text form ``host:pid:start``."""
        host, pid, start = (text.rsplit(":", 2) + ["", ""])[:3]
        return cls(host, int(pid) if pid.isdigit() else 0, start)

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.start}"

    def gone(self) -> bool:
        """True when this owner ran on this host and its process no longer exists."""
        if self.host != socket.gethostname() or self.pid <= 0:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # another user's live process
            return False
        return bool(self.start) and _process_start(self.pid) != self.start

    def alive_here(self) -> bool:
        """True when this owner is a live process on this host."""
        return self.host == socket.gethostname() and self.pid > 0 and not self.gone()


def _process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), else an empty string."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return ""


class Claims:
    """Claims of one study; the holder's heartbeats run in a thread while used as a context manager."""

    def __init__(self, study: "optuna.Study", heartbeat: float = DEFAULT_HEARTBEAT) -> None:
        self.study = study
        self.storage = study._storage
        self.study_id = study._study_id
        self.heartbeat = float(heartbeat)
        self.grace = GRACE_BEATS * self.heartbeat
        self.poll = min(1.0, self.heartbeat / 2)
        self.owner = Owner.me()
        self.held: dict[int, str] = {}  # trial id -> job key
        self._beats: dict[int, int] = {}
        self._seen: dict[int, tuple[int, float]] = {}  # others' claims: trial id -> (beat, when first seen)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- reading ---------------------------------------------------------------------------------------
    def live(self) -> dict[str, list["optuna.trial.FrozenTrial"]]:
        """Live claims by job key, after marking the dead ones FAIL."""
        from optuna.trial import TrialState

        now = time.monotonic()
        out: dict[str, list] = {}
        for trial in self.storage.get_all_trials(self.study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            key = trial.user_attrs.get(KEY)
            if key is None:
                continue
            if trial._trial_id not in self.held and self._dead(trial, now):
                owner = trial.user_attrs.get(OWNER, "?")
                if self._fail(trial._trial_id):
                    logger.warning("released job %s claimed by %s (its worker is gone)", key, owner)
                continue
            out.setdefault(key, []).append(trial)
        return out

    def _dead(self, trial: "optuna.trial.FrozenTrial", now: float) -> bool:
        if Owner.parse(str(trial.user_attrs.get(OWNER, ""))).gone():
            return True
        beat = int(trial.user_attrs.get(BEAT, 0))
        seen = self._seen.get(trial._trial_id)
        if seen is None or seen[0] != beat:
            self._seen[trial._trial_id] = (beat, now)
            return False
        # While the storage did not answer nobody's heartbeat could move: count silence from its return only.
        since = max(seen[1], float(getattr(self.storage, "recovered_at", 0.0)))
        return now - since > self.grace

    def others_here(self) -> list[Owner]:
        """Live processes on this host, other than this one, holding claims."""
        owners = {Owner.parse(str(t.user_attrs.get(OWNER, ""))) for ts in self.live().values() for t in ts}
        return sorted((o for o in owners if o != self.owner and o.alive_here()), key=str)

    def holds(self, trial_id: int) -> bool:
        """True while this worker's claim ``trial_id`` stands (no other worker released it)."""
        from optuna.trial import TrialState

        return trial_id in self.held and self.storage.get_trial(trial_id).state == TrialState.RUNNING

    # -- claiming --------------------------------------------------------------------------------------
    def claim(self, key: str) -> int | None:
        """Claim job ``key``: the claim's trial id, or None when another worker holds it."""
        import optuna
        from optuna.trial import TrialState

        if self.live().get(key):
            return None
        template = optuna.trial.create_trial(
            state=TrialState.RUNNING, user_attrs={KEY: key, OWNER: str(self.owner), BEAT: 0}
        )
        try:
            trial_id = self.storage.create_new_trial(self.study_id, template_trial=template)
        except StorageLost as lost:  # the claim may or may not exist: withdraw it if it does, try again later
            logger.info("%s; withdrawing the claim on %s if it was made", lost, key)
            self._withdraw_strays(key)
            return None
        with self._lock:
            self.held[trial_id] = key
            self._beats[trial_id] = 0
        if any(t._trial_id != trial_id for t in self.live().get(key, [])):
            self._drop(trial_id)
            self._fail(trial_id)
            time.sleep(random.uniform(0.0, self.poll))  # both may have withdrawn: do not retry in step
            return None
        return trial_id

    def release(self, trial_id: int) -> None:
        """The job is finished (or needs no work): release its claim as COMPLETE."""
        from optuna.trial import TrialState

        self._drop(trial_id)
        self._set_state(trial_id, TrialState.COMPLETE, [0.0])

    def release_mine(self) -> None:
        """Give up every claim this worker holds, and any it made without knowing (a write cut off from its answer):
        the run continues from what the storage holds, as a rerun would."""
        for trial_id in list(self.held):
            self._drop(trial_id)
        self._withdraw_strays()

    def sweep(self) -> None:
        """Mark the claims of workers known dead (on this machine at once, elsewhere after their grace) FAIL, and
        withdraw any claim of this worker it does not know it holds, so that a finished study keeps none."""
        self.live()
        self._withdraw_strays()

    def _withdraw_strays(self, key: str | None = None) -> None:
        """FAIL this worker's RUNNING claims (on ``key``, or on any job) that it does not hold."""
        from optuna.trial import TrialState

        mine = str(self.owner)
        for trial in self.storage.get_all_trials(self.study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            attrs = trial.user_attrs
            if attrs.get(OWNER) == mine and trial._trial_id not in self.held and key in (None, attrs.get(KEY)):
                self._fail(trial._trial_id)

    def abandon_all(self) -> None:
        """Give up every claim held (an interruption): others take the jobs at once. Never raises."""
        for trial_id in list(self.held):
            self._drop(trial_id)
            try:
                self._fail(trial_id)
            except Exception as error:  # the storage may be what failed
                logger.debug("could not abandon claim %d: %s", trial_id, error)

    def _drop(self, trial_id: int) -> None:
        with self._lock:
            self.held.pop(trial_id, None)
            self._beats.pop(trial_id, None)

    def _fail(self, trial_id: int) -> bool:
        from optuna.trial import TrialState

        return self._set_state(trial_id, TrialState.FAIL, None)

    def _set_state(self, trial_id: int, state, values) -> bool:
        from optuna.exceptions import UpdateFinishedTrialError

        try:
            return bool(self.storage.set_trial_state_values(trial_id, state, values))
        except UpdateFinishedTrialError:  # another worker finished or released it first
            return False

    # -- heartbeats ------------------------------------------------------------------------------------
    def __enter__(self) -> "Claims":
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="dse-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.abandon_all()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            with self._lock:
                beats = {t: b + 1 for t, b in self._beats.items()}
            for trial_id, beat in beats.items():
                try:
                    self.storage.set_trial_user_attr(trial_id, BEAT, beat)
                except Exception as error:  # finished meanwhile, or the storage is failing: the main thread reports
                    logger.debug("heartbeat of claim %d: %s", trial_id, error)
                    continue
                with self._lock:
                    if trial_id in self._beats:
                        self._beats[trial_id] = beat

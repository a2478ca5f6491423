"""A study storage that rides out a lost database connection: bounded retries, one clear log line each way.

A database server that restarts, fails over or drops off the network for a while loses nothing (every
trial is committed), so a worker waits for it instead of dying: :class:`RetryingStorage` wraps optuna's
relational storage and repeats every call that fails for want of a connection, after pauses that grow
from :data:`FIRST_PAUSE` to :data:`LONGEST_PAUSE` seconds or the worker's heartbeat, whichever is shorter
(with jitter, so workers do not return in step), until the storage answers or it has not answered for
``patience`` seconds (``dse run --storage-patience``, default :data:`~dse.study.failures.PATIENCE`); then it
gives up with one line (:class:`~dse.errors.UserError`, exit 2). The first
failure of an outage is logged as a warning and so is the recovery. Any other failure (a full disk, a
refused password) is no outage: it passes straight through, to be reported with its own advice
(:mod:`dse.study.failures`).

Reads and writes that may be repeated (attributes, a trial's state) are simply repeated. Creating a trial is
not: when the connection fails after the request went out, the trial may or may not exist, so the call
raises :class:`StorageLost` instead, and its caller settles it from what the storage then holds (a claim is
withdrawn, a run continues from the storage as a rerun would; :mod:`dse.study.runner`).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Container, Sequence

from optuna.storages import BaseStorage

from ..errors import UserError
from .failures import KEPT, PATIENCE, Failure, StorageLost, classify

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.study._frozen import FrozenStudy
    from optuna.study._study_direction import StudyDirection
    from optuna.trial import FrozenTrial, TrialState

logger = logging.getLogger(__name__)

#: The first pause after a failed call, and the longest (pauses double in between), in seconds.
FIRST_PAUSE = 0.5
LONGEST_PAUSE = 10.0
#: Each pause is drawn from this fraction of its nominal length up to the whole of it.
JITTER = 0.5


class Outage:
    """Whether the storage answers, shared by every thread using it: pauses, the patience, the log lines.

    ``longest``: the longest pause (default :data:`LONGEST_PAUSE`); a worker passes its heartbeat when shorter,
    so that it is back, and beating, within one heartbeat of the storage's return and keeps its claims.
    A thread pausing wakes as soon as another thread finds the storage answering again.
    """

    def __init__(self, where: str, patience: float = PATIENCE, longest: float = LONGEST_PAUSE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.where = where
        self.patience = float(patience)
        self.longest = min(float(longest), LONGEST_PAUSE)
        self.clock = clock
        self.since: float | None = None  # when the storage stopped answering (None: it answers)
        self.recovered_at = 0.0  # when it last answered again after an outage (clock time)
        self.outages = 0
        self.gave_up: UserError | None = None
        self._lock = threading.Lock()
        self._back = threading.Event()  # set while the storage answers
        self._back.set()

    def failed(self, failure: Failure, attempt: int) -> None:
        """A call failed for want of a connection (its ``attempt``-th retry): pause, or give up past the patience."""
        with self._lock:
            now = self.clock()
            if self.gave_up is not None:
                raise self.gave_up
            if self.since is None:
                self.since = now
                self.outages += 1
                self._back.clear()
                logger.warning("lost the connection to the study's storage %s (%s); retrying for up to %.0f s",
                               self.where, failure.cause, self.patience)
            waited = now - self.since
            if waited >= self.patience:
                self.gave_up = UserError(
                    f"lost the connection to the study's storage {self.where} and it has not answered for {waited:.0f} s "
                    f"(--storage-patience {self.patience:g}): {failure.cause}; start the database server or restore "
                    f"the network, {KEPT}"
                )
                raise self.gave_up
            pause = min(self.longest, FIRST_PAUSE * 2.0 ** min(attempt, 30)) * random.uniform(JITTER, 1.0)
        logger.info("storage %s does not answer (%s); next try in %.1f s", self.where, failure.cause, pause)
        self._back.wait(pause)

    def answered(self) -> None:
        """A call succeeded: an outage, if one was on, is over."""
        if self.since is None:  # the common case, without taking the lock
            return
        with self._lock:
            if self.since is None:
                return
            now = self.clock()
            logger.warning("the study's storage %s answers again after %.1f s; continuing", self.where, now - self.since)
            self.since, self.recovered_at = None, now
            self._back.set()


class RetryingStorage(BaseStorage):
    """optuna's storage ``backend`` with every call retried through :class:`Outage` (see the module's docstring)."""

    def __init__(self, backend: Any, outage: Outage) -> None:
        self.backend = backend
        self.outage = outage

    @property
    def recovered_at(self) -> float:
        """When the storage last answered again after an outage (``time.monotonic``; 0: never lost)."""
        return self.outage.recovered_at

    def _retry(self, call: Callable[..., Any], *args: Any, repeatable: bool = True) -> Any:
        attempt = 0
        while True:
            try:
                result = call(*args)
            except Exception as error:
                failure = classify(error)
                if failure is None or not failure.transient:
                    raise
                if failure.in_doubt and not repeatable:
                    raise StorageLost(
                        f"the connection to the study's storage {self.outage.where} failed while a trial was being "
                        f"written ({failure.cause})"
                    ) from None
                self.outage.failed(failure, attempt)
                attempt += 1
                continue
            self.outage.answered()
            return result

    # -- studies -----------------------------------------------------------------------------------------
    def create_new_study(self, directions: Sequence["StudyDirection"], study_name: str | None = None) -> int:
        # repeating is safe: a study created by the failed call makes this one raise DuplicatedStudyError, which
        # optuna.create_study(load_if_exists=True) answers by loading it
        return self._retry(self.backend.create_new_study, directions, study_name)

    def delete_study(self, study_id: int) -> None:
        return self._retry(self.backend.delete_study, study_id)

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        return self._retry(self.backend.set_study_user_attr, study_id, key, value)

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        return self._retry(self.backend.set_study_system_attr, study_id, key, value)

    def get_study_id_from_name(self, study_name: str) -> int:
        return self._retry(self.backend.get_study_id_from_name, study_name)

    def get_study_name_from_id(self, study_id: int) -> str:
        return self._retry(self.backend.get_study_name_from_id, study_id)

    def get_study_directions(self, study_id: int) -> list["StudyDirection"]:
        return self._retry(self.backend.get_study_directions, study_id)

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return self._retry(self.backend.get_study_user_attrs, study_id)

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        return self._retry(self.backend.get_study_system_attrs, study_id)

    def get_all_studies(self) -> list["FrozenStudy"]:
        return self._retry(self.backend.get_all_studies)

    # -- trials ------------------------------------------------------------------------------------------
    def create_new_trial(self, study_id: int, template_trial: "FrozenTrial | None" = None) -> int:
        return self._retry(self.backend.create_new_trial, study_id, template_trial, repeatable=False)

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                        distribution: "BaseDistribution") -> None:
        return self._retry(self.backend.set_trial_param, trial_id, param_name, param_value_internal, distribution)

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        return self._retry(self.backend.get_trial_id_from_study_id_trial_number, study_id, trial_number)

    def set_trial_state_values(self, trial_id: int, state: "TrialState", values: Sequence[float] | None = None) -> bool:
        # repeated after a failure that went through, it raises UpdateFinishedTrialError, as when another worker
        # finished the trial first; callers treat both alike
        return self._retry(self.backend.set_trial_state_values, trial_id, state, values)

    def set_trial_intermediate_value(self, trial_id: int, step: int, intermediate_value: float) -> None:
        return self._retry(self.backend.set_trial_intermediate_value, trial_id, step, intermediate_value)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        return self._retry(self.backend.set_trial_user_attr, trial_id, key, value)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        return self._retry(self.backend.set_trial_system_attr, trial_id, key, value)

    def get_trial(self, trial_id: int) -> "FrozenTrial":
        return self._retry(self.backend.get_trial, trial_id)

    def get_all_trials(self, study_id: int, deepcopy: bool = True,
                       states: Container["TrialState"] | None = None) -> list["FrozenTrial"]:
        return self._retry(self.backend.get_all_trials, study_id, deepcopy, states)

    def get_n_trials(self, study_id: int, state: "tuple[TrialState, ...] | TrialState | None" = None) -> int:
        return self._retry(self.backend.get_n_trials, study_id, state)

    def remove_session(self) -> None:
        remove = getattr(self.backend, "remove_session", None)
        if remove is not None:
            remove()


"""The optuna storage that holds a study's whole state: the search trials and the confirmations.

One storage holds three optuna studies per study: ``<name>:search`` (every surrogate evaluation, one
trial each; parameters are the genes), ``<name>:confirm`` (every real inference, one trial each,
keyed by the assignment's hash in the ``assignment_hash`` user attribute) and ``<name>:claims``
(which worker holds which job, :mod:`dse.study.claims`). The default is SQLite in the study folder
(one worker); an optuna journal file serves several processes on one machine, a database URL
(PostgreSQL ...) several machines. The same storage opens in optuna-dashboard.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from ..errors import UserError
from .failures import KEPT, OTHER, PATIENCE, StorageLost, classify, first_line, message

if TYPE_CHECKING:
    import optuna

    from .schema import StorageSection

logger = logging.getLogger(__name__)

SQLITE_NAME = "study.db"
SEARCH = "search"
CONFIRM = "confirm"
CLAIMS = "claims"
ROLES = (SEARCH, CONFIRM, CLAIMS)


def storage_description(section: "StorageSection", directory: Path) -> str:
    """The storage as a user would name it (a URL, or ``journal:PATH``), for messages and the dashboard."""
    if section.journal:
        return f"journal:{journal_path(section, directory)}"
    return section.url or f"sqlite:///{(directory / SQLITE_NAME).resolve()}"


def journal_path(section: "StorageSection", directory: Path) -> Path:
    """The journal file (relative paths inside the study folder)."""
    path = Path(section.journal).expanduser()
    return path if path.is_absolute() else directory / path


def storage_outside(section: "StorageSection", directory: Path) -> bool:
    """Whether the storage lives outside the study folder (a database URL, or a journal elsewhere)."""
    if section.journal:
        return directory.resolve() not in journal_path(section, directory).resolve().parents
    return bool(section.url)


def open_storage(
    section: "StorageSection", directory: Path, patience: float | None = None, longest_pause: float | None = None,
) -> "optuna.storages.BaseStorage":
    """The study's optuna storage (created when new).

    A database server that does not answer yet is waited for, as a lost connection is later
    (:mod:`dse.study.resilient`; ``patience``: seconds, default :data:`~dse.study.failures.PATIENCE`;
    ``longest_pause``: between two tries, default :data:`~dse.study.resilient.LONGEST_PAUSE`); the storage
    returned rides out lost connections the same way.
    """
    import optuna

    from .resilient import LONGEST_PAUSE, Outage, RetryingStorage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    where = storage_description(section, directory)
    shown = masked(where)
    if section.journal:
        try:
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            path = journal_path(section, directory)
            repair_journal(path)
            return JournalStorage(JournalFileBackend(str(path)))
        except Exception as error:  # OSError of the file system, a journal line optuna cannot parse ...
            raise UserError(_open_failure(error, shown)) from None
    outage = Outage(shown, PATIENCE if patience is None else patience, longest_pause or LONGEST_PAUSE)
    attempt = 0
    while True:
        try:
            storage = _rdb_storage(where)
            break
        except Exception as error:  # drivers raise many kinds (ImportError, OperationalError ...)
            failure = classify(error)
            if failure is None or not failure.transient:
                raise UserError(_open_failure(error, shown)) from None
            outage.failed(failure, attempt)
            attempt += 1
    outage.answered()
    if where.startswith("sqlite"):
        _write_ahead_log(storage)
    return RetryingStorage(_cached(storage), outage)


def _open_failure(error: BaseException, where: str) -> str:
    """The one line saying why the storage ``where`` cannot be opened."""
    failure = classify(error)
    if failure is not None and failure.kind != OTHER:
        return message(failure, f"the study's storage {where}")
    hint = "; install the database driver (pip install -e \".[postgres]\" for PostgreSQL)" if isinstance(
        error, ImportError) else ""
    return f"cannot open storage {where}: {first_line(error)}{hint}"


def _cached(storage: "optuna.storages.RDBStorage") -> "optuna.storages.BaseStorage":
    """optuna's cache of finished trials in front of a relational storage, as ``optuna.create_study`` would add."""
    try:
        from optuna.storages._cached_storage import _CachedStorage
    except ImportError:  # pragma: no cover - a future optuna without it: uncached, only slower
        return storage
    return _CachedStorage(storage)


def masked(where: str) -> str:
    """A storage URL with its password hidden, for messages (``postgresql://dse:***@host/db``)."""
    if "@" not in where or where.startswith(("journal:", "sqlite")):
        return where
    try:
        from sqlalchemy.engine import make_url

        return make_url(where).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy parses: hide everything between the scheme and the host
        scheme, _, rest = where.partition("://")
        return f"{scheme}://***@{rest.rsplit('@', 1)[-1]}"


def _rdb_storage(url: str, attempts: int = 5) -> "optuna.storages.RDBStorage":
    """optuna's RDBStorage; retried when processes opening a new database together race to create its tables."""
    import optuna
    import sqlalchemy.exc

    # pre-ping: a pooled connection that a database restart closed is replaced before use, not failed on
    engine = {} if url.startswith("sqlite") else {"pool_pre_ping": True}
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine)
        except sqlalchemy.exc.DBAPIError as error:  # another process created a table first (SQLite says so)
            racing = isinstance(error, (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError))
            if attempt == attempts - 1 or not (racing or "already exists" in str(error)):
                raise
            time.sleep(random.uniform(0.1, 0.5))
    raise AssertionError("unreachable")


def repair_journal(path: Path) -> int:
    """Cut an unfinished last line (a write cut short by a full disk) off a journal file; bytes removed.

    optuna skips such a line when reading, but the next write would be appended to it and make the
    file unreadable. Cut under the journal's own lock, so no worker writes meanwhile, and logged; a
    whole journal is only read (it may be on a read-only disk).
    """
    from optuna.storages.journal import JournalFileSymlinkLock

    if _whole_lines_end(path) == _size(path):
        return 0
    lock = JournalFileSymlinkLock(str(path))
    lock.acquire()
    try:
        size, end = _size(path), _whole_lines_end(path)
        if end < size:
            os.truncate(path, end)
            logger.warning("removed %d bytes of an unfinished write at the end of journal %s", size - end, path)
        return size - end
    finally:
        lock.release()


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else 0


def _whole_lines_end(path: Path) -> int:
    """The offset just after the file's last newline (0 when it has none)."""
    if not path.is_file():
        return 0
    with open(path, "rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        while end > 0:
            start = max(0, end - 65536)
            handle.seek(start)
            newline = handle.read(end - start).rfind(b"\n")
            if newline >= 0:
                return start + newline + 1
            end = start
    return 0


@contextlib.contextmanager
def storage_errors(where: str) -> Iterator[None]:
    """Turn a storage or study folder that fails (disk full, read-only, a database that stays away ...) into a
    UserError whose one line says what happened and what to do (:mod:`dse.study.failures`)."""
    try:
        yield
    except StorageLost as error:  # a lost connection that outlived every retry
        raise UserError(f"{error}; {KEPT}") from None
    except Exception as error:
        failure = classify(error)
        if failure is None:
            raise
        if isinstance(error, OSError):
            raise UserError(message(failure, str(error.filename or masked(where)))) from None
        raise UserError(message(failure, f"the study's storage {masked(where)}")) from None


def delete_studies(storage: "optuna.storages.BaseStorage", study: str) -> list[str]:
    """Delete ``<study>:<role>`` for every role from ``storage``; what was deleted (name and trial count)."""
    deleted = []
    for summary in _summaries(storage):
        if summary.study_name in {f"{study}:{role}" for role in ROLES}:
            import optuna

            optuna.delete_study(study_name=summary.study_name, storage=storage)
            deleted.append(f"{summary.study_name} ({summary.n_trials} trials)")
    return deleted


def _summaries(storage: "optuna.storages.BaseStorage") -> list[Any]:
    import optuna

    return optuna.get_all_study_summaries(storage, include_best_trial=False)


def _write_ahead_log(storage: "optuna.storages.RDBStorage") -> None:
    """SQLite in write-ahead-log mode without a sync per commit: about 2.5x faster trial writes.

    Safe when the process is killed (the log is in the operating system's cache); only a power
    failure can lose the last commits, never corrupt the file.
    """
    import sqlalchemy

    def pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    sqlalchemy.event.listen(storage.engine, "connect", pragmas)
    storage.engine.dispose()  # connections made so far lack the pragmas


def open_study(
    storage: "optuna.storages.BaseStorage", study: str, role: str, metric_names: Sequence[str]
) -> "optuna.Study":
    """The optuna study ``<study>:<role>`` (all objectives minimised), created when new."""
    import optuna

    name = f"{study}:{role}"
    directions = ["minimize"] * len(metric_names)
    loaded = optuna.create_study(storage=storage, study_name=name, directions=directions, load_if_exists=True)
    if len(loaded.directions) != len(directions):
        raise UserError(
            f"storage already holds study {name} with {len(loaded.directions)} objectives, this study has "
            f"{len(directions)}; use another study folder or storage"
        )
    if loaded.metric_names is None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            loaded.set_metric_names(list(metric_names))
    return loaded


def completed(study: "optuna.Study") -> list["optuna.trial.FrozenTrial"]:
    """The study's completed trials in number order."""
    from optuna.trial import TrialState

    return sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.number)

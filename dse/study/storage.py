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
import errno
import logging
import os
import random
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from ..errors import UserError

if TYPE_CHECKING:
    import optuna

    from .schema import StorageSection

logger = logging.getLogger(__name__)

SQLITE_NAME = "study.db"
SEARCH = "search"
CONFIRM = "confirm"
CLAIMS = "claims"
ROLES = (SEARCH, CONFIRM, CLAIMS)
#: Write failures that a user fixes (disk full, read-only, permissions), not bugs.
WRITE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG, errno.EIO}
)
CONTINUE = "free space or make it writable, then run the same command again: every finished trial and measurement is kept"


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


def open_storage(section: "StorageSection", directory: Path) -> "optuna.storages.BaseStorage":
    """The study's optuna storage (created when new)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        if section.journal:
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            path = journal_path(section, directory)
            repair_journal(path)
            return JournalStorage(JournalFileBackend(str(path)))
        url = storage_description(section, directory)
        storage = _rdb_storage(url)
        if url.startswith("sqlite"):
            _write_ahead_log(storage)
        return storage
    except Exception as error:  # drivers raise many kinds (ImportError, OperationalError ...)
        raise UserError(f"cannot open storage {storage_description(section, directory)}: {error}") from None


def _rdb_storage(url: str, attempts: int = 5) -> "optuna.storages.RDBStorage":
    """optuna's RDBStorage; retried when processes opening a new database together race to create its tables."""
    import optuna
    import sqlalchemy.exc

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url)
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
    """Turn a storage or study folder that can no longer be written (disk full, read-only ...) into a UserError."""
    try:
        yield
    except OSError as error:
        if error.errno not in WRITE_ERRNOS:
            raise
        raise UserError(f"cannot write {error.filename or where}: {error.strerror}; {CONTINUE}") from None
    except Exception as error:
        if not _is_storage_error(error):
            raise
        raise UserError(f"cannot write to the study's storage {where}: {_root_cause(error)}; {CONTINUE}") from None


def _is_storage_error(error: BaseException) -> bool:
    """Errors of the database layer (only modules already loaded can have raised them)."""
    sqlalchemy, optuna = sys.modules.get("sqlalchemy.exc"), sys.modules.get("optuna.exceptions")
    return bool(
        (sqlalchemy is not None and isinstance(error, sqlalchemy.SQLAlchemyError))
        or (optuna is not None and isinstance(error, optuna.StorageInternalError))
    )


def _root_cause(error: BaseException) -> str:
    """The driver's own words: the innermost cause, first line."""
    while error.__cause__ is not None or error.__context__ is not None:
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    inner = getattr(error, "orig", None) or error
    return (str(inner).strip().splitlines() or [type(inner).__name__])[0]


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

"""The optuna storage that holds a study's whole state: the search trials and the confirmations.

One storage holds two optuna studies per study: ``<name>:search`` (every surrogate evaluation, one
trial each; parameters are the genes) and ``<name>:confirm`` (every real inference, one trial each,
keyed by the assignment's hash in the ``assignment_hash`` user attribute). The default is SQLite
in the study folder; a database URL (PostgreSQL ...) or an optuna journal file serve many workers.
The same storage opens in optuna-dashboard.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import UserError

if TYPE_CHECKING:
    import optuna

    from .schema import StorageSection

logger = logging.getLogger(__name__)

SQLITE_NAME = "study.db"
SEARCH = "search"
CONFIRM = "confirm"


def storage_description(section: "StorageSection", directory: Path) -> str:
    """The storage as a user would name it (a URL, or ``journal:PATH``), for messages and the dashboard."""
    if section.journal:
        return f"journal:{journal_path(section, directory)}"
    return section.url or f"sqlite:///{(directory / SQLITE_NAME).resolve()}"


def journal_path(section: "StorageSection", directory: Path) -> Path:
    """The journal file (relative paths inside the study folder)."""
    path = Path(section.journal).expanduser()
    return path if path.is_absolute() else directory / path


def open_storage(section: "StorageSection", directory: Path) -> "optuna.storages.BaseStorage":
    """The study's optuna storage (created when new)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        if section.journal:
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            return JournalStorage(JournalFileBackend(str(journal_path(section, directory))))
        url = storage_description(section, directory)
        storage = optuna.storages.RDBStorage(url)
        if url.startswith("sqlite"):
            _write_ahead_log(storage)
        return storage
    except Exception as error:  # drivers raise many kinds (ImportError, OperationalError ...)
        raise UserError(f"cannot open storage {storage_description(section, directory)}: {error}") from None


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

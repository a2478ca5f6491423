"""Why a study's storage failed, in the user's terms: each cause its own one-line message and advice.

A lost connection to a database server is not a full disk: the first is worth waiting for (the server
restarts, the network comes back) and the worker retries (:mod:`dse.study.resilient`); the others need
the user (free space, make the storage writable, fix the URL) and end the run with one line saying what
to do. :func:`classify` reads the error's chain (optuna wraps SQLAlchemy, which wraps the driver) and
decides from the driver's SQLSTATE where it gives one, else from its words; :func:`message` renders it.
"""

from __future__ import annotations

import errno
import re
import sys
from typing import NamedTuple

#: The kinds of failure, each with its own advice.
CONNECTION, FULL, SIZE_LIMIT, READ_ONLY, PERMISSION, ACCESS, LOCKED, DAMAGED, DISK, OTHER = (
    "connection", "full", "size limit", "read-only", "permission", "access", "locked", "damaged", "disk", "other",
)
#: Seconds a run waits for a database storage that stopped answering before it gives up (``dse run
#: --storage-patience``; :mod:`dse.study.resilient` does the waiting).
PATIENCE = 300.0
#: What every message that ends a run promises.
KEPT = "then run the same command again: every finished trial and measurement is kept"

#: errno of a failed file operation -> kind.
ERRNO_KINDS = {
    errno.ENOSPC: FULL, errno.EDQUOT: FULL, errno.EFBIG: SIZE_LIMIT, errno.EROFS: READ_ONLY, errno.EACCES: PERMISSION,
    errno.EPERM: PERMISSION, errno.EIO: DISK,
}
#: PostgreSQL SQLSTATE (or its two-character class) -> kind.
SQLSTATE_KINDS = {
    "08": CONNECTION, "57P01": CONNECTION, "57P02": CONNECTION, "57P03": CONNECTION, "53300": CONNECTION,
    "40001": CONNECTION, "40P01": CONNECTION, "53100": FULL, "25006": READ_ONLY, "42501": PERMISSION, "28": ACCESS,
    "3D000": ACCESS, "58030": DISK, "XX001": DAMAGED, "XX002": DAMAGED,
}
#: SQLSTATEs of requests the server refused or rolled back whole (serialisation failure, deadlock, too many
#: connections, not accepting connections yet, could not connect): nothing of them was committed.
ROLLED_BACK = frozenset({"40001", "40P01", "53300", "57P03", "08001", "08004"})
#: Words of drivers that give no SQLSTATE (libpq before a session exists, SQLite, MySQL), as lowercase
#: regular expressions -> kind; the first that matches decides.
WORDS = tuple((re.compile(pattern), kind) for pattern, kind in (
    (r"could not translate host name|password authentication failed|no pg_hba\.conf entry|authentication failed"
     r"|(role|database|user) \S+ does not exist|access denied for user|unknown database", ACCESS),
    (r"connection refused|could not connect|can't connect|the database system is|too many (clients|connections)"
     r"|timeout expired|timed out|no route to host|network is unreachable|server closed the connection"
     r"|terminating connection|connection reset|could not (receive|send) data|ssl syscall error|lost connection"
     r"|server has gone away|connection (already closed|not open)", CONNECTION),
    (r"database or disk is full|no space left|disk full|could not extend file|quota", FULL),
    (r"readonly database|read-only|read only", READ_ONLY),
    (r"permission denied|unable to open database file", PERMISSION),
    (r"database is locked", LOCKED),
    (r"malformed|not a database", DAMAGED),
    (r"disk i/o error|input/output error", DISK),
))


class StorageLost(Exception):
    """The connection failed while a trial was being created: it may or may not exist now; settle it from what
    the storage holds once it answers (:mod:`dse.study.resilient`)."""


class Failure(NamedTuple):
    """A storage failure: its kind, the driver's or system's own words, and whether a write may have gone through."""

    kind: str
    cause: str
    #: The connection failed while a request was under way, after the connection was made: a write may or may
    #: not have been committed (a failure to connect at all sent nothing).
    in_doubt: bool = False

    @property
    def transient(self) -> bool:
        """Worth waiting for: the database server may answer again by itself."""
        return self.kind == CONNECTION


def classify(error: BaseException) -> Failure | None:
    """The failure ``error`` stands for, or None when it is no storage or file-system failure (a bug)."""
    if isinstance(error, OSError) and error.errno in ERRNO_KINDS:
        return Failure(ERRNO_KINDS[error.errno], error.strerror or type(error).__name__)
    if not _is_storage_error(error):
        return None
    chain = _chain(error)
    dbapi = next((e for e in chain if hasattr(e, "connection_invalidated") and hasattr(e, "orig")), None)
    inner = getattr(dbapi, "orig", None) or chain[-1]
    cause = first_line(inner)
    if dbapi is not None and dbapi.connection_invalidated:  # SQLAlchemy's dialect saw the connection die mid-use
        return Failure(CONNECTION, cause, in_doubt=True)
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is not None and any(isinstance(e, (sa_exc.DisconnectionError, sa_exc.TimeoutError)) for e in chain):
        return Failure(CONNECTION, cause)  # a pool that could not hand out a connection: nothing was sent
    code = str(getattr(inner, "pgcode", None) or "")
    kind = SQLSTATE_KINDS.get(code) or SQLSTATE_KINDS.get(code[:2])
    if kind is None:
        text = cause.lower()
        kind = next((k for words, k in WORDS if words.search(text)), OTHER)
    # A failure to connect (SQLAlchemy names no statement then) sent nothing, nor did a request the server refused
    # whole; any other failure of a connection already made may have cut a commit off from its answer.
    connecting = dbapi is not None and getattr(dbapi, "statement", None) is None
    return Failure(kind, cause, in_doubt=kind == CONNECTION and not connecting and code not in ROLLED_BACK)


def message(failure: Failure, where: str) -> str:
    """The one line that ends a run on ``failure`` of ``where`` (``the study's storage URL``, or a file's path):
    what happened and what to do."""
    kind, cause = failure.kind, failure.cause
    if kind == CONNECTION:
        return f"cannot reach {where} ({cause}): start the database server or restore the network, {KEPT}"
    if kind == FULL:
        return f"cannot write to {where}: it is full ({cause}); free space on its disk (or raise the quota), {KEPT}"
    if kind == SIZE_LIMIT:
        return (f"cannot write to {where}: a file grew past the size its file system or a limit allows ({cause}); "
                f"raise the limit (ulimit -f) or move the study folder, {KEPT}")
    if kind == READ_ONLY:
        return (f"cannot write to {where}: it is read-only ({cause}); make it writable (a database: point "
                f"storage.url at the primary server), {KEPT}")
    if kind == PERMISSION:
        return f"cannot write to {where}: permission denied ({cause}); give this user write access to it, {KEPT}"
    if kind == ACCESS:
        return (f"{where} refused the connection ({cause}); check storage.url (user, password, host, database "
                f"name), {KEPT}")
    if kind == LOCKED:
        return (f"{where} is locked by another process ({cause}); SQLite serves one process: wait for the other "
                f"run, or share the study through storage.journal or storage.url with --worker")
    if kind == DAMAGED:
        return (f"{where} is damaged ({cause}); restore it from a copy, or start afresh with --fresh (moves the "
                f"study folder aside)")
    if kind == DISK:
        return f"cannot write to {where}: the disk failed ({cause}); check the disk, {KEPT}"
    return f"{where} failed ({cause}); {KEPT}"


def first_line(error: BaseException) -> str:
    """An exception's first non-empty line, or its type's name when it says nothing."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and its causes, outermost first."""
    chain, seen = [error], {id(error)}
    while (inner := chain[-1].__cause__ or chain[-1].__context__) is not None and id(inner) not in seen:
        chain.append(inner)
        seen.add(id(inner))
    return chain


def _is_storage_error(error: BaseException) -> bool:
    """Errors of the database layer (only modules already loaded can have raised them)."""
    sqlalchemy, optuna = sys.modules.get("sqlalchemy.exc"), sys.modules.get("optuna.exceptions")
    return bool(
        (sqlalchemy is not None and isinstance(error, sqlalchemy.SQLAlchemyError))
        or (optuna is not None and isinstance(error, optuna.StorageInternalError))
    )

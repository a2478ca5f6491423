"""A throwaway PostgreSQL server on a free loopback port, for the tests and benchmarks of shared studies.

``initdb`` into a temporary folder, ``pg_ctl start`` with fsync off (nothing here needs to survive a power
loss), a database ``dse`` owned by user ``dse`` (trust authentication on loopback). :meth:`restart`,
:meth:`stop` and :meth:`start` let a test take the server away under running workers. As root (a
container), every command runs as the ``postgres`` user, which PostgreSQL insists on.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class PostgresUnavailable(Exception):
    """PostgreSQL or its Python driver is not installed here."""


def postgres_bin() -> Path:
    """The folder of initdb and pg_ctl (the newest installed version), or PostgresUnavailable."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb")) or [shutil.which("initdb") or ""]
    if not found[-1]:
        raise PostgresUnavailable("PostgreSQL is not installed (apt-get install postgresql)")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        raise PostgresUnavailable("psycopg2 is not installed (pip install -e '.[test]')") from None
    return Path(found[-1]).parent


class PostgresServer:
    """One server: ``url`` for SQLAlchemy, ``start``/``stop``/``restart``, ``close`` removes everything."""

    def __init__(self) -> None:
        self.bin = postgres_bin()
        self.folder = Path(tempfile.mkdtemp(prefix="dse-pg-"))
        self.prefix: list[str] = []
        if os.geteuid() == 0:  # postgres refuses to run as root
            shutil.chown(self.folder, "postgres", "postgres")
            self.prefix = ["runuser", "-u", "postgres", "--"]
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.data = self.folder / "data"
        self.url = f"postgresql+psycopg2://dse@127.0.0.1:{self.port}/dse"
        self.restarts = 0
        self._pg("initdb", "-D", str(self.data), "-U", "dse", "--auth=trust", "--no-sync", "-E", "UTF8")
        self.start()
        self._pg("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "dse", "dse")

    def _pg(self, tool: str, *argv: str) -> None:
        # output to a file, never a pipe: the server inherits it and would keep a pipe open after pg_ctl returns
        with open(self.folder / f"{tool}.out", "ab") as out:
            subprocess.run([*self.prefix, str(self.bin / tool), *argv], check=True, stdout=out, stderr=out,
                           cwd=self.folder)

    def _ctl(self, *argv: str) -> None:
        self._pg("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "log"), *argv)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._ctl("-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: roll back open transactions and close every connection)."""
        self._ctl("-m", mode, "-w", "stop")

    def restart(self, down: float = 0.0) -> float:
        """Stop the server, stay down ``down`` seconds, start it again; the seconds it was unreachable."""
        start = time.monotonic()
        self.stop()
        time.sleep(down)
        self.start()
        self.restarts += 1
        return time.monotonic() - start

    def close(self) -> None:
        """Stop the server at once and delete its files."""
        subprocess.run([*self.prefix, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.folder)
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "PostgresServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""Helpers of the fuzz tests: every bad input must end in one line naming it and the problem, a non-zero exit,
no traceback and nothing half-written.

:func:`tried` records each distinct bad input a fuzz test gives the tool (by kind, keyed by its bytes), and
the suite's closing summary (``tests/conftest.py``) says how many it tried. :func:`cli` runs ``dse`` in this
process (``dse.cli.main``) and returns its exit code and error output; :func:`assert_one_line` checks it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections import defaultdict
from typing import Sequence

from hypothesis import HealthCheck, settings

#: kind -> digests of the distinct bad inputs tried this session.
TRIED: dict[str, set[str]] = defaultdict(set)

#: Settings of the fuzz tests: few examples each (the suite has a time budget), no deadline (the first example of
#: a test pays for imports), and temporary folders made inside the test (no function-scoped fixtures).
FUZZ = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


def tried(kind: str, *parts: bytes | str) -> None:
    """Record one bad input of ``kind`` (its content in ``parts``)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogateescape") if isinstance(part, str) else part)
        digest.update(b"\0")
    TRIED[kind].add(digest.hexdigest())


def summary() -> str:
    """``N distinct bad inputs tried (kind n, ...)``, or "" when no fuzz test ran."""
    if not TRIED:
        return ""
    total = sum(len(v) for v in TRIED.values())
    kinds = ", ".join(f"{kind} {len(v)}" for kind, v in sorted(TRIED.items()))
    return f"fuzz: {total} distinct bad inputs tried ({kinds})"


def cli(argv: Sequence[str]) -> tuple[int, str]:
    """``dse ARGV`` in this process: (exit code, what it wrote to stderr); stdout is discarded."""
    from dse.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main([str(a) for a in argv])
    return code, err.getvalue()


def assert_one_line(code: int, err: str, *names: str) -> str:
    """A refused input: exit 2, exactly one line ``dse: error: ...`` naming every one of ``names``; the line."""
    lines = [line for line in err.splitlines() if line.strip() and not _progress(line)]
    assert code == 2, f"exit {code}: {err[-2000:]}"
    assert "Traceback" not in err, err[-3000:]
    assert len(lines) == 1 and lines[0].startswith("dse: error: "), err[-2000:]
    for name in names:
        assert name in lines[0], f"{name!r} not named in: {lines[0]}"
    return lines[0]


def one_line(message: str, *names: str) -> None:
    """An error message (of an exception) is one line naming every one of ``names``."""
    assert message and "\n" not in message, repr(message)
    for name in names:
        assert name in message, f"{name!r} not named in: {message}"


def _progress(line: str) -> bool:
    """A progress bar's line (tqdm writes carriage returns; a refused input may have started one)."""
    return "\r" in line or line.rstrip().endswith(("it/s]", "images/s]", "eval/s]", "layer/s]"))

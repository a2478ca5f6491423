"""Shared fixtures: the real test data in ../shared/data, and strictness in CI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: In CI (.ci/run sets DSE_STRICT=1) a missing tool or data set is a failure, never a skip.
STRICT = os.environ.get("DSE_STRICT") == "1"


def shared_data_dir() -> Path:
    """The shared test data: $DSE_SHARED_DATA, else ../shared/data beside the repository."""
    return Path(os.environ.get("DSE_SHARED_DATA", REPO.parent / "shared" / "data"))


def skip_or_fail(reason: str) -> None:
    """Skip on a user's machine that lacks something; fail in CI."""
    if STRICT:
        pytest.fail(f"{reason} (DSE_STRICT=1: skips are failures)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of the shared data folder (skips, or fails in CI, when it is missing)."""
    path = shared_data_dir()
    if not path.is_dir():
        skip_or_fail(f"shared test data not found at {path}; set DSE_SHARED_DATA")
    return path


def pytest_terminal_summary(terminalreporter) -> None:
    """Close with how many distinct bad inputs the fuzz tests tried (tests/fuzz.py)."""
    import sys

    fuzz = sys.modules.get("tests.fuzz")
    line = fuzz.summary() if fuzz is not None else ""
    if line:
        terminalreporter.write_sep("-", line)

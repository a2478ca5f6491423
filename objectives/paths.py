"""Where things live on disk: the user cache and the shared test data."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cache_dir() -> Path:
    """The user cache folder: $DSE_CACHE, else $XDG_CACHE_HOME/axm-dse, else ~/.cache/axm-dse."""
    if os.environ.get("DSE_CACHE"):
        return Path(os.environ["DSE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "axm-dse"


def shared_data_dir() -> Path:
    """The shared data folder: $DSE_SHARED_DATA, else ../shared/data beside the repository."""
    return Path(os.environ.get("DSE_SHARED_DATA", REPO.parent / "shared" / "data"))

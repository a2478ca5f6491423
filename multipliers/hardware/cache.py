"""The on-disk cache of synthesis results: $DSE_CACHE, else ~/.cache/axm-dse."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """The cache root (not created here)."""
    root = os.environ.get("DSE_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "axm-dse"


def load(kind: str, key: str) -> dict[str, Any] | None:
    """The cached JSON document ``kind/key``, or None (also for an unreadable entry)."""
    path = cache_dir() / kind / f"{key}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def store(kind: str, key: str, document: dict[str, Any]) -> None:
    """Write ``document`` as ``kind/key`` atomically; a read-only cache only logs a warning."""
    folder = cache_dir() / kind
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(document))
        os.replace(tmp, folder / f"{key}.json")
    except OSError as error:
        log.warning("could not write the synthesis cache at %s: %s", folder, error)

"""What identifies a study's results: the study file's keys that decide them, compared key by key.

A study folder keeps its resolved config (``study.json``) and the storage keeps its own copy (a user
attribute of the confirm study), so a folder or a shared database made from another study file is
refused with the keys that changed, whichever of them a worker points at. Keys a rerun may change
(:data:`dse.study.schema.RESUMABLE`) are left out; the storage's copy also leaves out paths, which
differ between machines that share one database. A key the stored copy lacks (added to the schema
after the study started) is no change while it holds its default: a new key's default keeps the
behaviour the study was run with.
"""

from __future__ import annotations

import json
from dataclasses import MISSING, fields
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import UserError
from .config import flatten
from .schema import RESUMABLE, SECTIONS

if TYPE_CHECKING:
    import optuna

    from .config import StudyConfig

#: The confirm study's user attribute holding the study's keys.
CONFIG_ATTR = "study_config"
#: How many changed keys a message names.
SHOWN = 6


def deciding_keys(tables: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Flattened keys that decide results (resumable ones left out), JSON-normalised."""
    flat = {k: v for k, v in flatten(dict(tables)).items() if k not in RESUMABLE}
    return json.loads(json.dumps(flat, sort_keys=True))


def shared_keys(config: "StudyConfig") -> dict[str, Any]:
    """The deciding keys without paths (for a storage shared by machines)."""
    paths = {f"{t}.{f.name}" for t, cls in SECTIONS.items() for f in fields(cls) if f.metadata.get("path")}
    return {k: v for k, v in deciding_keys(config.as_dict()).items() if k not in paths}


@lru_cache(maxsize=1)
def _schema_defaults() -> dict[str, Any]:
    """Every key with a default, flattened and JSON-normalised."""
    flat = {
        f"{t}.{f.name}": f.default for t, cls in SECTIONS.items() for f in fields(cls) if f.default is not MISSING
    }
    return json.loads(json.dumps(flat, sort_keys=True))


def changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``key (old -> new)`` for every key whose value differs, sorted by key (a new key at its default is no change)."""
    defaults = _schema_defaults()

    def differs(k: str) -> bool:
        if k not in old and k in defaults and new.get(k) == defaults[k]:
            return False
        return old.get(k) != new.get(k)

    return [f"{k} ({old.get(k)!r} -> {new.get(k)!r})" for k in sorted(set(old) | set(new)) if differs(k)]


def describe(changed: list[str]) -> str:
    """The first changed keys, and how many more."""
    more = f"; and {len(changed) - SHOWN} more" if len(changed) > SHOWN else ""
    return "; ".join(changed[:SHOWN]) + more


def check_storage(study: "optuna.Study", config: "StudyConfig", where: str) -> None:
    """Refuse a storage holding this study made from another study file; record the keys when new."""
    new = shared_keys(config)
    old = study.user_attrs.get(CONFIG_ATTR)
    if old is None:
        study.set_user_attr(CONFIG_ATTR, new)
        return
    changed = changes(old, new)
    if changed:
        raise UserError(
            f"storage {where} holds study {config.name!r} run with a different study file: {describe(changed)}; "
            "undo the change, use another storage or study name, or start afresh with --fresh "
            "(deletes that study's trials from the storage, and says so)"
        )

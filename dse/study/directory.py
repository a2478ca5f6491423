"""The study folder: a copy of the study file, the resolved config and its hash, the layers, the storage.

Layout (everything written atomically; the storage is transactional)::

    study.toml     the study file as given (with the --set overrides listed in study.json)
    study.json     the resolved config, its hash, the overrides, the storage
    layers.json    every conv/linear layer: GEMM dims per image and whether the search assigns it
    designs.json   the candidate designs (exact first): family, parameters, cost, LUT SHA-256
    study.db       the optuna storage (SQLite, unless the study names another)
    surrogate/     the calibrated surrogate's tables (rebuilt only for another design set)
    front.*        the confirmed front: JSON, CSV and plots
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..output import atomic_write_text
from .config import StudyConfig, from_tables
from .fingerprint import changes, deciding_keys, describe

STUDY_TOML = "study.toml"
STUDY_JSON = "study.json"
LAYERS_JSON = "layers.json"
DESIGNS_JSON = "designs.json"
FORMAT = 1

logger = logging.getLogger(__name__)


def default_directory(config: StudyConfig) -> Path:
    """``runs/<study name>`` under the current folder."""
    return Path("runs") / config.name


def check_directory(config: StudyConfig, directory: Path) -> None:
    """Refuse a folder that is not empty and not this study's (before anything is written).

    A folder holding only the first files of a start that was killed before ``study.json`` was
    written is this study's (nothing in it is a result).
    """
    if directory.exists() and not directory.is_dir():
        raise UserError(f"{directory} exists and is not a folder")
    if not directory.exists() or all(_unfinished_start(p.name) for p in directory.iterdir()):
        return
    stored = directory / STUDY_JSON
    if not stored.is_file():
        if (directory / STUDY_TOML).is_file() and any((directory / n).is_file() for n in ("study.db", "study.journal")):
            logger.warning("%s has lost its %s; the storage's copy of the study's keys decides whether it holds this "
                           "study, and this run writes the file anew", directory, STUDY_JSON)
            return
        raise UserError(f"{directory} is not empty and holds no study; give another --out folder")
    try:
        previous = _read_json(stored)
        tables = previous.get("config", {}) if isinstance(previous, dict) else None
        if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
            raise UserError(f"{stored} is damaged: it holds no study record")
    except UserError as error:  # the storage keeps its own copy of the study's keys, checked once it is open
        logger.warning("%s; the storage's copy of the study's keys decides whether this folder holds this study, "
                       "and this run writes the file anew", str(error).split("; run the study")[0])
        return
    if previous.get("digest") == config.digest():
        return
    changed = changes(deciding_keys(previous.get("config", {})), deciding_keys(config.as_dict()))
    if "config" in previous and not changed:  # only keys added to the schema since, at their defaults
        return
    raise UserError(
        f"{directory} holds this study run with a different study file: {describe(changed) or 'format changed'}; "
        "give another --out folder, undo the change, or start afresh with --fresh (moves this folder aside)"
    )


def _unfinished_start(name: str) -> bool:
    """Files a start writes before ``study.json``, or a temporary file of an atomic write."""
    return name in (STUDY_TOML, LAYERS_JSON, DESIGNS_JSON) or (name.startswith(".") and name.endswith(".tmp"))


def move_aside(directory: Path) -> Path | None:
    """Rename a non-empty study folder to the first free ``<name>.old<N>`` beside it; the new path."""
    if not directory.is_dir() or not any(directory.iterdir()):
        return None
    for n in range(1, 10_000):
        target = directory.with_name(f"{directory.name}.old{n}")
        if not target.exists():
            try:
                directory.rename(target)
            except OSError as error:
                raise UserError(f"--fresh: cannot move {directory} aside to {target}: {error.strerror}") from None
            return target
    raise UserError(f"--fresh: no free name beside {directory}; remove old copies first")


def write_directory(
    config: StudyConfig, directory: Path, layers: list[dict[str, Any]], designs: list[dict[str, Any]], storage: str
) -> None:
    """Create the folder (if new) and write the study file copy, the resolved config, layers and designs."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create study folder {directory}: {error.strerror or error}") from None
    atomic_write_text(directory / STUDY_TOML, config.text)
    record = {
        "format": FORMAT,
        "name": config.name,
        "digest": config.digest(),
        "source": str(config.path.resolve()),
        "overrides": list(config.overrides),
        "storage": storage,
        "config": config.as_dict(),
    }
    atomic_write_text(directory / STUDY_JSON, json.dumps(record, indent=1) + "\n")
    atomic_write_text(directory / LAYERS_JSON, json.dumps(layers, indent=1) + "\n")
    atomic_write_text(directory / DESIGNS_JSON, json.dumps(designs, indent=1) + "\n")


@dataclass(frozen=True)
class StudyFolder:
    """A study folder opened for reading (``dse front``, ``dse export``)."""

    path: Path
    config: StudyConfig
    layers: list[dict[str, Any]]
    designs: list[dict[str, Any]]
    storage: str

    @property
    def searched_layers(self) -> list[str]:
        """Names of the layers the search assigns, network order."""
        return [layer["name"] for layer in self.layers if layer["approximated"]]


#: What ``layers.json`` and ``designs.json`` entries hold that readers use: key -> its JSON types.
LAYER_KEYS = {"name": (str,), "approximated": (bool,), "m": (int,), "k": (int,), "n": (int,), "macs": (int,)}
DESIGN_KEYS = {"name": (str,), "family": (str,), "signed": (bool,), "lut_sha256": (str,), "energy": (int, float),
               "cost_method": (str,)}
#: What to do about a damaged file the study writes itself (every dse run writes them anew from the study file).
REWRITE = "run the study's `dse run` again to write it anew (nothing measured is lost or redone)"


def open_directory(path: str | os.PathLike) -> StudyFolder:
    """Open an existing study folder, or a UserError saying why it is not one (or which of its files is damaged)."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(f"study folder {path} does not exist")
    if not (path / STUDY_JSON).is_file():
        raise UserError(f"{path} is not a study folder (no {STUDY_JSON}); run `dse run STUDY.toml --out {path}` first")
    for name in (LAYERS_JSON, DESIGNS_JSON):
        if not (path / name).is_file():
            raise UserError(f"{path / name} is missing; {REWRITE}")
    record = _read_json(path / STUDY_JSON)
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict) or not all(
            isinstance(v, dict) for v in record["config"].values()):
        raise UserError(f"{path / STUDY_JSON} is damaged: it holds no study config (an object of tables); {REWRITE}")
    try:
        text = (path / STUDY_TOML).read_text(encoding="utf-8", errors="replace") if (path / STUDY_TOML).is_file() else ""
    except OSError:  # the study file's copy is for people to read; nothing here needs it
        text = ""
    overrides = record.get("overrides", ())
    source = record.get("source", str(path / STUDY_TOML))
    try:
        config = from_tables(record["config"], Path(str(source)), text,
                             tuple(str(o) for o in overrides) if isinstance(overrides, list) else ())
    except UserError as error:
        raise UserError(f"{path / STUDY_JSON} is damaged ({error}); {REWRITE}") from None
    layers = _entries(path / LAYERS_JSON, LAYER_KEYS, "layer")
    designs = _entries(path / DESIGNS_JSON, DESIGN_KEYS, "design")
    if not designs:
        raise UserError(f"{path / DESIGNS_JSON} is damaged: it lists no design; {REWRITE}")
    return StudyFolder(path, config, layers, designs, str(record.get("storage", "")))


def _entries(path: Path, keys: dict[str, tuple[type, ...]], what: str) -> list[dict[str, Any]]:
    """A JSON list of objects, each with ``keys`` of their types, or a UserError naming the file and the entry."""
    entries = _read_json(path)
    if not isinstance(entries, list):
        raise UserError(f"{path} is damaged: expected a list of {what}s, got {type(entries).__name__}; {REWRITE}")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise UserError(f"{path} is damaged: {what} {index} is not an object; {REWRITE}")
        for key, types in keys.items():
            value = entry.get(key)
            if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
                raise UserError(f"{path} is damaged: {what} {index} has no valid {key!r}; {REWRITE}")
    return entries


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror or error}") from None
    except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError
        reason = (str(error).splitlines() or [type(error).__name__])[0] if str(error) else "nested too deep"
        raise UserError(f"cannot read {path}: it is damaged ({reason}); {REWRITE}") from None

"""Reading a study file: TOML, ``--set`` overrides, schema validation, then typed frozen sections.

Every mistake is one :class:`~dse.errors.UserError` naming the file and the key (``search.budget``)
and what to write instead, raised before any work is done.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
import re
import sys
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence, get_type_hints

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import UserError
from . import schema as S

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class StudyConfig:
    """A validated study: one typed section per table, paths resolved, plus where it came from."""

    path: Path
    text: str
    overrides: tuple[str, ...]
    study: S.StudySection
    network: S.NetworkSection
    data: S.DataSection
    quantization: S.QuantizationSection
    compensation: S.CompensationSection
    multipliers: S.MultipliersSection
    objectives: S.ObjectivesSection
    constraints: S.ConstraintsSection
    search: S.SearchSection
    surrogate: S.SurrogateSection
    confirmation: S.ConfirmationSection
    grouping: S.GroupingSection
    storage: S.StorageSection
    run: S.RunSection
    #: Where this run keeps decoded evaluation images that do not fit in memory (the runner sets it to the
    #: study folder's ``decoded/``; "" means the user cache). Not part of the study's identity.
    data_cache: str = ""

    @property
    def name(self) -> str:
        """The study's name."""
        return self.study.name

    @property
    def signed(self) -> bool:
        """Whether the scheme needs signed multipliers."""
        return self.quantization.scheme == "int8"

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """Every table with every key (defaults filled in, paths resolved), JSON-ready."""
        return {table: _jsonable(asdict(getattr(self, table))) for table in S.SECTIONS}

    def digest(self) -> str:
        """SHA-256 of everything that decides results (keys in :data:`schema.RESUMABLE` left out)."""
        flat = {k: v for k, v in flatten(self.as_dict()).items() if k not in S.RESUMABLE}
        return hashlib.sha256(json.dumps(flat, sort_keys=True).encode()).hexdigest()


def flatten(tables: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """``{"search": {"budget": 1}}`` -> ``{"search.budget": 1}``."""
    return {f"{t}.{k}": v for t, keys in tables.items() for k, v in keys.items()}


def load_study(path: str | os.PathLike, overrides: Sequence[str] = ()) -> StudyConfig:
    """Read, override, validate and type a study file; raises :class:`UserError` on the first mistake."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path} is a folder; give a study file (.toml)")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"study file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read study file {path}: {error}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{path}: not valid TOML: {error}") from None
    except RecursionError:  # arrays or tables nested thousands deep
        raise UserError(f"{path}: not valid TOML: nested too deep") from None
    in_file = set(raw)
    set_by = {_apply_override(raw, item): item for item in overrides}
    try:
        return _validated(raw, path, text, overrides)
    except UserError as error:  # a key (or table) an override set: the mistake is the --set's, not the file's
        raise UserError(_blame_override(str(error), str(path), set_by, set(raw) - in_file)) from None


def _blame_override(message: str, where: str, set_by: dict[str, str], new_tables: set[str]) -> str:
    """``message`` about the study file ``where``, told of the ``--set`` item instead when it names a key (or a
    table only overrides brought in) that the item set."""
    for full, item in set_by.items():
        table = full.split(".")[0]
        if re.search(rf"(?<![\w.]){re.escape(full)}(?![\w])", message) or (
                table in new_tables and f"[{table}]" in message):
            return message.replace(f"{where}: ", f"--set {item!r}: ", 1)
    return message


def _validated(raw: dict[str, Any], path: Path, text: str, overrides: Sequence[str]) -> StudyConfig:
    """The typed config of the study file's tables (overrides applied) ``raw``."""
    where = str(path)
    sections: dict[str, Any] = {}
    for table in raw:
        if table not in S.SECTIONS:
            if not isinstance(raw[table], dict):
                raise UserError(f"{where}: key {table!r} must sit inside a table such as [search]")
            raise UserError(f"{where}: unknown table [{table}]{_hint(table, S.SECTIONS)}; tables: {', '.join(S.SECTIONS)}")
    for table, cls in S.SECTIONS.items():
        values = raw.get(table, {})
        if not isinstance(values, dict):
            raise UserError(f"{where}: {table} must be a table ([{table}]), got {_kind(values)}")
        sections[table] = _section(cls, table, values, where, path.parent)
    network = sections["network"]
    resolved_name = _path(network.name, "network", "network.name", where, path.parent)
    if resolved_name != network.name:  # a factory file, resolved against the study file's folder
        sections["network"] = dataclasses.replace(network, name=resolved_name)
    if not sections["study"].name:
        sections["study"] = S.StudySection(path.stem, sections["study"].description)
    config = StudyConfig(path=path, text=text, overrides=tuple(overrides), **sections)
    _cross_checks(config, where)
    return config


def from_tables(tables: dict[str, Any], path: Path, text: str = "", overrides: Sequence[str] = ()) -> StudyConfig:
    """A config from :meth:`StudyConfig.as_dict` output (as stored in a study folder); paths are not rechecked."""
    sections = {
        table: _section(cls, table, tables.get(table, {}), str(path), path.parent, check_paths=False)
        for table, cls in S.SECTIONS.items()
    }
    return StudyConfig(path=path, text=text, overrides=tuple(overrides), **sections)


def _apply_override(raw: dict[str, Any], item: str) -> str:
    """Apply ``table.key=value`` (value read as TOML, else as a string); ``table.key``."""
    name, sep, value = item.partition("=")
    parts = name.strip().split(".")
    if not sep or len(parts) != 2 or not all(parts):
        raise UserError(f"--set {item!r}: expected TABLE.KEY=VALUE, for example --set search.budget=500")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        parsed = value
    table = raw.setdefault(parts[0], {})
    if not isinstance(table, dict):
        raise UserError(f"--set {item!r}: {parts[0]} is not a table")
    table[parts[1]] = parsed
    return f"{parts[0]}.{parts[1]}"


def _section(cls: type, table: str, values: dict[str, Any], where: str, base: Path, check_paths: bool = True) -> Any:
    hints = get_type_hints(cls)
    known = {f.name: f for f in fields(cls)}
    for name in values:
        if name not in known:
            raise UserError(
                f"{where}: unknown key {table}.{name}{_hint(name, known)}; [{table}] takes: {', '.join(known)}"
            )
    out = {}
    for name, f in known.items():
        full = f"{table}.{name}"
        if name not in values:
            if f.default is MISSING:
                raise UserError(f"{where}: {full} is required ({f.metadata.get('help', '')})")
            out[name] = {} if f.default is None else f.default
            continue
        value = _typed(values[name], hints[name], full, where)
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise UserError(f"{where}: {full} = {value!r} is not one of {', '.join(choices)}")
        minimum = f.metadata.get("minimum")
        if minimum is not None and value < minimum:
            raise UserError(f"{where}: {full} must be at least {minimum}, got {value}")
        maximum = f.metadata.get("maximum")
        if maximum is not None and value > maximum:
            raise UserError(f"{where}: {full} must be at most {maximum}, got {value}")
        kind = f.metadata.get("path")
        if kind and value and check_paths:
            value = tuple(_path(v, kind, full, where, base) for v in value) if isinstance(value, tuple) else _path(
                value, kind, full, where, base
            )
        out[name] = value
    return cls(**out)


def _typed(value: Any, hint: Any, full: str, where: str) -> Any:
    """``value`` checked against a schema type (tuples from TOML arrays), or a clear error."""
    text = str(hint)
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = _finite(value, full, where) if ok else value
    elif hint is str:
        ok = isinstance(value, str)
    elif hint is dict:
        ok = isinstance(value, dict)
    elif text == "tuple[str, ...]":
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        value = tuple(value) if ok else value
    elif text == "tuple[int, ...]":
        ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        value = tuple(value) if ok else value
    elif text == "tuple[float, ...]":
        ok = isinstance(value, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        value = tuple(_finite(v, full, where) for v in value) if ok else value
    elif text == "tuple[tuple[str, ...], ...]":
        ok = isinstance(value, list) and all(isinstance(g, list) and all(isinstance(v, str) for v in g) for g in value)
        value = tuple(tuple(g) for g in value) if ok else value
    else:  # pragma: no cover - a schema type this reader does not know
        raise TypeError(f"unsupported schema type {hint!r} for {full}")
    if not ok:
        want = {
            bool: "true or false", int: "an integer", float: "a number", str: "a string", dict: "a table",
        }.get(hint) or {"tuple[str, ...]": "a list of strings", "tuple[float, ...]": "a list of numbers",
                        "tuple[int, ...]": "a list of integers",
                        "tuple[tuple[str, ...], ...]": "a list of lists of strings"}[text]
        raise UserError(f"{where}: {full} must be {want}, got {_kind(value)} {value!r}")
    return value


def _finite(value: int | float, full: str, where: str) -> float:
    """A number as a float; NaN, infinity and integers beyond a float's range are refused."""
    try:
        number = float(value)
    except OverflowError:
        number = float("inf")
    if not math.isfinite(number):
        raise UserError(f"{where}: {full} must be a finite number, got {value!r}")
    return number


def _path(value: str, kind: str, full: str, where: str, base: Path) -> str:
    """Expand ``${VAR}``, resolve against the study file's folder, check the path exists."""

    def expand(match: re.Match) -> str:
        name = match.group(1)
        if name in os.environ:
            return os.environ[name]
        if name == "DSE_SHARED_DATA":
            from objectives.paths import shared_data_dir

            return str(shared_data_dir())
        raise UserError(f"{where}: {full} uses ${{{name}}}, but the environment variable {name} is not set")

    expanded = _VARIABLE.sub(expand, value)
    if kind == "weights" and "/" not in expanded and "." not in expanded and os.sep not in expanded:
        return expanded  # a torchvision weights name such as DEFAULT or IMAGENET1K_V1
    if kind in ("data", "network"):
        from objectives.networks.user import is_factory_spec

        if is_factory_spec(expanded):
            where_file, _, function = expanded.rpartition(":")
            if not where_file.endswith(".py"):
                return expanded  # package.module:function, imported when the study runs
            resolved = (base / Path(where_file).expanduser()).resolve()
            if not resolved.is_file():
                raise UserError(f"{where}: {full}: file {resolved} does not exist")
            return f"{resolved}:{function}"
        if kind == "network":
            return value
        kind = "dir"
    if kind == "accelerator" and "/" not in expanded and os.sep not in expanded and not expanded.endswith((".yaml", ".yml")):
        return expanded  # a ZigZag template name such as edge_tpu_like
    resolved = (base / Path(expanded).expanduser()).resolve()
    if kind == "dir" and not resolved.is_dir():
        raise UserError(f"{where}: {full}: folder {resolved} does not exist")
    if kind == "weights" and not resolved.is_file():
        raise UserError(f"{where}: {full}: file {resolved} does not exist")
    if not resolved.exists():
        raise UserError(f"{where}: {full}: {resolved} does not exist")
    return str(resolved)


def _cross_checks(config: StudyConfig, where: str) -> None:
    """Checks spanning keys (names that need no network or zoo to check)."""
    study = config.name
    if study in (".", "..") or any(c in study for c in "/\\") or any(ord(c) < 32 or ord(c) == 127 for c in study):
        raise UserError(f"{where}: study.name {study!r} names the study folder (runs/<name>) and its storage: no "
                        f"slashes, control characters, '.' or '..'")
    from objectives.networks import BUILT_IN, NAMES
    from objectives.networks.user import is_factory_spec

    name = config.network.name
    if (name not in BUILT_IN and not (name.startswith("torchvision:") and len(name) > len("torchvision:"))
            and not is_factory_spec(name)):
        close = difflib.get_close_matches(name, NAMES, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UserError(f"{where}: network.name {name!r} is not a known network{hint} (networks: {', '.join(NAMES)})")
    search = config.search
    if search.engine == "pymoo" and search.population > search.budget:
        raise UserError(f"{where}: search.budget ({search.budget}) must be at least search.population ({search.population})")
    for drop in config.confirmation.report_drops:
        if drop < 0:
            raise UserError(f"{where}: confirmation.report_drops must be non-negative, got {drop}")
    seen: set[str] = set()
    for group in config.grouping.groups:
        if not group:
            raise UserError(f"{where}: grouping.groups holds an empty group")
        for layer in group:
            if layer in seen:
                raise UserError(f"{where}: grouping.groups names layer {layer!r} twice")
            seen.add(layer)
    objectives = config.objectives
    if objectives.energy == "system":  # the accelerator and mapping, checked by ZigZag before anything runs
        from .energy import study_accelerator

        try:
            study_accelerator(config)
        except UserError as error:
            raise UserError(f"{where}: objectives: {error}") from None
    elif objectives.accelerator or objectives.mapping:
        raise UserError(f"{where}: objectives.accelerator and objectives.mapping need objectives.energy = \"system\"")
    if config.storage.url and config.storage.journal:
        raise UserError(f"{where}: give storage.url or storage.journal, not both")
    url = config.storage.url
    if url and "://" not in url:
        raise UserError(f"{where}: storage.url {url!r} is not a database URL (sqlite:///path.db, postgresql://...)")
    from .engines import check_engine

    try:
        check_engine(search)
    except UserError as error:
        raise UserError(f"{where}: {error}") from None


def _hint(name: str, options: Any) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "a list",
            dict: "a table"}.get(type(value), type(value).__name__)


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value

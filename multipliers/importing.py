"""Import designs from LUT files plus metadata (TOML, JSON, or a library's characterisation CSV), or from their Verilog.

Table formats, chosen by extension:

* ``.npy`` — a (256, 256) integer array in the zoo's own indexing (signed: row a + 128, column
  b + 128).
* ``.csv`` — 256 lines of 256 comma-separated integers, same indexing.
* ``.bin`` — an EvoApprox8b table: 65,536 little-endian 16-bit values at index ``(a << 8) | b``
  with a, b the operands' 8-bit codes (uint16 for unsigned designs; int16 two's complement,
  rolled by 128 on both axes into the zoo's indexing, for signed ones).

Metadata, in any of three forms:

* a TOML or JSON file per design: ``name``, ``signed``, ``lut`` (path relative to the file),
  optional ``family`` (default ``imported``), ``source``, and cost either relative to the exact
  multiplier (``area``, ``energy``, optional ``delay``) or absolute (``area_um2``, ``power_mw``,
  optional ``delay_ns``) with the exact design's figures from the same flow (``reference_area_um2``,
  ``reference_power_mw``, optional ``reference_delay_ns``);
* a library CSV (columns ``name``, ``signed``, and optionally ``pdk45_power_mw``,
  ``pdk45_area_um2``, ``pdk45_delay_ns``, ``mae``, ``wce`` ...) beside the tables of a folder, as
  EvoApprox8b publishes it: its exact row of each signedness (MAE and WCE zero) is the reference;
* none, for ``.bin`` tables named like the library (``mul8u_*`` unsigned, ``mul8s_*`` signed).

Circuits: a ``.v`` file (alone, in a folder, or named by a metadata file's ``verilog`` key instead of
``lut``) is imported from its Verilog by :mod:`multipliers.hardware.circuit_import`: the module with two
8-bit inputs and a 16-bit output, its LUT by exhaustive simulation of its synthesised netlist, its
``synthesised`` cost by the project's flow (needs Yosys). A metadata file may say ``module``, ``ports``
(``{activation = ..., weight = ..., product = ...}``), ``signed``, ``name``, ``family``, ``source`` and
published figures; otherwise the ports are ``A, B, O`` or ``a, b, p`` and the signedness comes from
``signed`` port declarations or the EvoApprox8b names (``mul8s_*``, ``mul8u_*``). The published figures
of an EvoApprox8b file's header (``// PDK45_PWR = 0.189 mW`` ...) are kept as its ``published`` cost,
relative to the exact design's: the metadata's reference figures, else the exact circuit of the same
signedness in the same folder (header MAE and WCE 0), else, for EvoApprox8b names, the library's exact
designs (``mul8u_1JFF``: 0.391 mW, 709.6 um2, 1.43 ns; ``mul8s_1KV8``: 0.425 mW, 729.8 um2, 1.48 ns).

A design's name is its metadata ``name`` or the table's file name, lowercased. Every file is
checked before anything is returned: a bad file raises :class:`ImportDesignError` naming the file
and the problem, and nothing is added.
"""

from __future__ import annotations

import csv
import json
import logging
import sys
import tokenize
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ._record import NAME_PATTERN, HardwareCost, InvalidDesignError, Multiplier, check_lut

log = logging.getLogger(__name__)

TABLE_SUFFIXES = (".bin", ".npy", ".csv")
CIRCUIT_SUFFIXES = (".v",)
METADATA_SUFFIXES = (".toml", ".json")
PUBLISHED_COLUMNS = {"area_um2": "pdk45_area_um2", "power_mw": "pdk45_power_mw", "delay_ns": "pdk45_delay_ns"}
LIBRARY_SOURCE = "published 45 nm figures, EvoApprox8b (Mrazek et al., DATE 2017)"
#: The EvoApprox8b exact designs' published figures (mul8u_1JFF, mul8s_1KV8), by signedness: the reference of
#: the published cost of a library circuit imported without its exact sibling.
LIBRARY_EXACT = {
    False: {"pdk45_power_mw": 0.391, "pdk45_area_um2": 709.6, "pdk45_delay_ns": 1.43},
    True: {"pdk45_power_mw": 0.425, "pdk45_area_um2": 729.8, "pdk45_delay_ns": 1.48},
}
#: Published figures in a circuit file's header: header key -> library CSV column.
HEADER_FIGURES = {"pdk45_pwr": "pdk45_power_mw", "pdk45_area": "pdk45_area_um2", "pdk45_delay": "pdk45_delay_ns"}


class ImportDesignError(ValueError):
    """A file that cannot be imported as a design; the message names the file and the problem."""


def read_table(path: Path, signed: bool) -> np.ndarray:
    """Read a LUT file into the zoo's indexing (int64 (256, 256)), validating it."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".bin":
            raw = path.read_bytes()
            if len(raw) != 2 * 65536:
                raise ImportDesignError(f"{path}: a .bin table must hold 65,536 16-bit values, has {len(raw)} bytes")
            table = np.frombuffer(raw, dtype="<i2" if signed else "<u2").reshape(256, 256)
            if signed:
                table = np.roll(table, 128, axis=(0, 1))
        elif suffix == ".npy":
            try:
                with warnings.catch_warnings():  # a damaged header can look like a Python 2 file: numpy warns first
                    warnings.simplefilter("ignore", UserWarning)
                    table = np.load(path, allow_pickle=False)
            except (SyntaxError, TypeError, tokenize.TokenError) as error:  # numpy parses a damaged header as Python
                raise ImportDesignError(f"{path}: cannot read table: damaged .npy header ({error})") from None
        elif suffix == ".csv":
            with warnings.catch_warnings():  # an empty file: numpy warns, then the shape check says what is wrong
                warnings.simplefilter("ignore", UserWarning)
                table = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
        else:
            raise ImportDesignError(f"{path}: unknown table format {suffix!r} (use .npy, .csv or .bin)")
    except ImportDesignError:
        raise
    except (OSError, ValueError, EOFError) as error:  # EOFError: an empty or cut .npy file
        raise ImportDesignError(f"{path}: cannot read table: {error or 'the file is empty or cut short'}") from None
    try:
        return check_lut(np.asarray(table), signed, what=str(path))
    except InvalidDesignError as error:
        raise ImportDesignError(str(error)) from None


def read_metadata(path: Path) -> dict[str, Any]:
    """Read one design's metadata file (TOML or JSON)."""
    try:
        if path.suffix.lower() == ".toml":
            meta = tomllib.loads(path.read_text(encoding="utf-8"))
        else:
            meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as error:  # TOMLDecodeError and JSONDecodeError are ValueErrors
        raise ImportDesignError(f"{path}: cannot parse metadata: {error}") from None
    if not isinstance(meta, dict):
        raise ImportDesignError(f"{path}: metadata must be an object of fields (name, signed, lut ...), "
                                f"got {type(meta).__name__}")
    return meta


def read_library_csv(path: Path) -> dict[str, dict[str, str]]:
    """Rows of a library characterisation CSV, keyed by lowercased design name."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ImportDesignError(f"{path}: cannot read: {error}") from None
    if not rows or "name" not in rows[0] or "signed" not in rows[0]:
        raise ImportDesignError(f"{path}: a library CSV needs a header with at least 'name' and 'signed'")
    unnamed = [n for n, row in enumerate(rows, start=2) if not (row.get("name") or "").strip()]
    if unnamed:
        raise ImportDesignError(f"{path}: line {unnamed[0]} names no design")
    return {row["name"].strip().lower(): row for row in rows}


def _is_library_csv(path: Path) -> bool:
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as handle:
            header = handle.readline()
    except OSError as error:
        raise ImportDesignError(f"{path}: cannot read: {error.strerror or error}") from None
    return "name" in [h.strip() for h in header.split(",")]


def _design_name(raw: str, where: Path) -> str:
    name = str(raw).strip().lower()
    if not NAME_PATTERN.match(name):
        raise ImportDesignError(f"{where}: design name {raw!r} is not an identifier ([a-z][a-z0-9_]*)")
    return name


def _float(value: Any, key: str, where: Path) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ImportDesignError(f"{where}: {key} must be a number, got {value!r}") from None
    if not np.isfinite(number) or number < 0:
        raise ImportDesignError(f"{where}: {key} must be finite and non-negative, got {value!r}")
    return number


def _published_cost(row: Mapping[str, Any], reference: Mapping[str, Any] | None, where: Path, source: str) -> HardwareCost | None:
    """A cost from absolute figures against the exact design's, or from relative ones."""
    if "area" in row and "energy" in row:
        delay = row.get("delay")
        return HardwareCost(
            "published",
            _float(row["area"], "area", where),
            _float(row["energy"], "energy", where),
            None if delay is None else _float(delay, "delay", where),
            source=source,
        )
    absolute = {k: _float(row[c], c, where) for k, c in PUBLISHED_COLUMNS.items() if row.get(c) not in (None, "")}
    if not absolute:
        return None
    if reference is None:
        raise ImportDesignError(f"{where}: absolute cost figures need the exact design's figures as reference")
    ref = {k: _float(reference[c], c, where) for k, c in PUBLISHED_COLUMNS.items() if reference.get(c) not in (None, "")}
    missing = [k for k in ("area_um2", "power_mw") if k not in absolute or not ref.get(k)]
    if missing:
        raise ImportDesignError(f"{where}: missing cost field(s) {', '.join(missing)} (for design or reference)")
    delay = absolute["delay_ns"] / ref["delay_ns"] if "delay_ns" in absolute and ref.get("delay_ns") else None
    return HardwareCost(
        "published",
        area=absolute["area_um2"] / ref["area_um2"],
        energy=absolute["power_mw"] / ref["power_mw"],  # power at one clock: energy per multiplication
        delay=delay,
        absolute=absolute,
        source=source,
    )


def _signed_flag(value: Any, where: Path) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "signed"):
        return True
    if text in ("0", "false", "no", "unsigned"):
        return False
    raise ImportDesignError(f"{where}: 'signed' must be true/false or 1/0, got {value!r}")


@dataclass(frozen=True)
class _Circuit:
    """A Verilog file to import, with the published figures and reference its metadata gives (None: the header's)."""

    request: Any  # multipliers.hardware.circuit_import.CircuitRequest
    published: dict[str, Any] | None = None
    reference: dict[str, Any] | None = None
    where: Path | None = None  # the file that described it (a metadata file), for messages


def _from_metadata_file(path: Path) -> Multiplier | _Circuit:
    meta = read_metadata(path)
    if "verilog" in meta:
        return _circuit_from_metadata(path, meta)
    for key in ("name", "signed", "lut"):
        if key not in meta:
            raise ImportDesignError(f"{path}: missing field {key!r}")
    known = {"name", "signed", "lut", "family", "source", "params", "area", "energy", "delay"}
    known |= {f"{p}{k}" for k in PUBLISHED_COLUMNS for p in ("", "reference_")}
    unknown = sorted(set(meta) - known)
    if unknown:
        raise ImportDesignError(f"{path}: unknown field(s) {', '.join(unknown)}")
    signed = _signed_flag(meta["signed"], path)
    if not isinstance(meta["lut"], str) or not meta["lut"]:
        raise ImportDesignError(f"{path}: lut must be the LUT file's name, got {meta['lut']!r}")
    if not isinstance(meta.get("params", {}), dict):
        raise ImportDesignError(f"{path}: params must be a table of parameter values, got {meta['params']!r}")
    table_path = (path.parent / str(meta["lut"])).resolve()
    if not table_path.is_file():
        raise ImportDesignError(f"{path}: LUT file {table_path} does not exist")
    lut = read_table(table_path, signed)
    source = str(meta.get("source", f"imported from {path.name}"))
    row, reference = _meta_cost_rows(meta)
    cost = _published_cost(row, reference or None, path, source)
    family = _design_name(meta.get("family", "imported"), path)
    return _make(_design_name(meta["name"], path), family, signed, lut, cost, source, dict(meta.get("params", {})), path)


def _meta_cost_rows(meta: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A metadata file's cost fields in the library CSV's column names: the design's and the reference's."""
    row = {PUBLISHED_COLUMNS.get(k, k): v for k, v in meta.items()}
    reference = {PUBLISHED_COLUMNS[k[len("reference_"):]]: v for k, v in meta.items() if k.startswith("reference_")}
    return row, reference


def _circuit_from_metadata(path: Path, meta: Mapping[str, Any]) -> _Circuit:
    from .hardware.circuit_import import CircuitRequest

    known = {"name", "signed", "verilog", "module", "ports", "family", "source", "area", "energy", "delay"}
    known |= {f"{p}{k}" for k in PUBLISHED_COLUMNS for p in ("", "reference_")}
    unknown = sorted(set(meta) - known)
    if unknown:
        raise ImportDesignError(f"{path}: unknown field(s) {', '.join(unknown)}")
    circuit = (path.parent / str(meta["verilog"])).resolve()
    if not circuit.is_file():
        raise ImportDesignError(f"{path}: Verilog file {circuit} does not exist")
    ports = meta.get("ports")
    if ports is not None:
        if not isinstance(ports, Mapping) or set(ports) != {"activation", "weight", "product"}:
            raise ImportDesignError(f"{path}: ports must name the activation, weight and product ports, got {ports!r}")
        ports = (str(ports["activation"]), str(ports["weight"]), str(ports["product"]))
    request = CircuitRequest(
        circuit,
        name=_design_name(meta["name"], path) if "name" in meta else None,
        module=str(meta["module"]) if "module" in meta else None,
        ports=ports,
        signed=_signed_flag(meta["signed"], path) if "signed" in meta else None,
        family=_design_name(meta["family"], path) if "family" in meta else None,
        source=str(meta["source"]) if "source" in meta else None,
    )
    row, reference = _meta_cost_rows(meta)
    given = ("area" in row and "energy" in row) or any(row.get(c) not in (None, "") for c in PUBLISHED_COLUMNS.values())
    return _Circuit(request, row if given else None, reference or None, path)


def _import_circuits(circuits: Sequence[_Circuit]) -> list[Multiplier]:
    """Import circuits together (in parallel), then add each one's published cost where a reference is known."""
    if not circuits:
        return []
    from .hardware.circuit_import import header_figures, import_circuits

    designs = import_circuits([c.request for c in circuits])
    headers = [header_figures(d.circuit.text) for d in designs]
    rows = [c.published or {HEADER_FIGURES[k]: v for k, v in h.items() if k in HEADER_FIGURES}
            for c, h in zip(circuits, headers)]
    exact: dict[bool, dict[str, Any]] = {}
    for d, h, row in zip(designs, headers, rows):
        if row and h.get("mae") == 0 and h.get("wce") == 0:
            exact.setdefault(d.signed, row)
    out = []
    for c, d, row in zip(circuits, designs, rows):
        reference = c.reference or exact.get(d.signed) or (LIBRARY_EXACT[d.signed] if d.family == "evoapprox" else None)
        where = c.where or c.request.path
        if not row or (reference is None and not ("area" in row and "energy" in row)):
            if row:
                log.info("%s: published figures without an exact design's to compare with: kept out of its cost", where)
            out.append(d)
            continue
        source = LIBRARY_SOURCE if d.family == "evoapprox" else f"published figures given in {where.name}"
        cost = _published_cost(row, reference, where, source)
        out.append(d.with_cost(cost) if cost else d)
    return out


def _make(name, family, signed, lut, cost, source, params, where) -> Multiplier:
    try:
        return Multiplier(name, family, signed, lut, params, {cost.method: cost} if cost else {}, source=source)
    except InvalidDesignError as error:
        raise ImportDesignError(f"{where}: {error}") from None


def library_signedness(name: str) -> bool | None:
    """The EvoApprox8b naming convention: ``mul8s_*`` signed, ``mul8u_*`` unsigned, anything else unknown (None)."""
    if name.startswith("mul8s_"):
        return True
    if name.startswith("mul8u_"):
        return False
    return None


def _import_folder(folder: Path) -> list[Multiplier]:
    library: dict[str, dict[str, str]] = {}
    library_path = None
    for csv_path in sorted(folder.glob("*.csv")):
        if _is_library_csv(csv_path):
            library.update(read_library_csv(csv_path))
            library_path = csv_path
    references: dict[bool, Mapping[str, str]] = {}
    for row in library.values():
        try:
            exact = float(row.get("mae", "nan")) == 0 and float(row.get("wce", "nan")) == 0
        except ValueError:
            exact = False
        if exact:
            references.setdefault(_signed_flag(row["signed"], library_path), row)

    designs: list[Multiplier] = []
    circuits: list[_Circuit] = []
    described: set[Path] = set()
    for meta_path in sorted(p for p in folder.iterdir() if p.suffix.lower() in METADATA_SUFFIXES):
        design = _from_metadata_file(meta_path)
        if isinstance(design, _Circuit):
            circuits.append(design)
            described.add(design.request.path)
        else:
            described.add((meta_path.parent / str(read_metadata(meta_path)["lut"])).resolve())
            designs.append(design)
    for table_path in sorted(p for p in folder.iterdir() if p.suffix.lower() in TABLE_SUFFIXES):
        if table_path.resolve() in described or (table_path.suffix.lower() == ".csv" and _is_library_csv(table_path)):
            continue
        name = _design_name(table_path.stem, table_path)
        row = library.get(name)
        signed = _signed_flag(row["signed"], library_path) if row else library_signedness(name)
        if signed is None:
            raise ImportDesignError(f"{table_path}: no metadata says whether {name} is signed")
        lut = read_table(table_path, signed)
        family = "evoapprox" if library_signedness(name) is not None else "imported"
        source = LIBRARY_SOURCE if family == "evoapprox" else f"imported from {table_path.name}"
        cost = _published_cost(row, references.get(signed), library_path, source) if row else None
        designs.append(_make(name, family, signed, lut, cost, source, {}, table_path))
    from .hardware.circuit_import import CircuitRequest

    circuits += [_Circuit(CircuitRequest(p.resolve())) for p in sorted(folder.iterdir())
                 if p.suffix.lower() in CIRCUIT_SUFFIXES and p.resolve() not in described]
    designs += _import_circuits(circuits)
    if not designs:
        raise ImportDesignError(f"{folder}: no LUT files (.bin, .npy, .csv), Verilog files (.v) or metadata files found")
    return designs


def import_designs(path: str | Path) -> list[Multiplier]:
    """Designs from a folder, a metadata file, a Verilog file, or a single library-named ``.bin`` table."""
    path = Path(path)
    if not path.exists():
        raise ImportDesignError(f"{path}: no such file or folder")
    if path.is_dir():
        designs = _import_folder(path)
    elif path.suffix.lower() in METADATA_SUFFIXES:
        design = _from_metadata_file(path)
        designs = _import_circuits([design]) if isinstance(design, _Circuit) else [design]
    elif path.suffix.lower() in CIRCUIT_SUFFIXES:
        from .hardware.circuit_import import CircuitRequest

        designs = _import_circuits([_Circuit(CircuitRequest(path))])
    elif path.suffix.lower() in TABLE_SUFFIXES:
        name = _design_name(path.stem, path)
        signed = library_signedness(name)
        if signed is None:
            raise ImportDesignError(f"{path}: a table alone needs metadata (a TOML/JSON file) saying whether it is signed")
        designs = [_make(name, "evoapprox", signed, read_table(path, signed), None, LIBRARY_SOURCE, {}, path)]
    else:
        raise ImportDesignError(f"{path}: not a folder, metadata file (.toml/.json), Verilog file (.v) or table "
                                "(.npy/.csv/.bin)")
    names = [d.name for d in designs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ImportDesignError(f"{path}: design name(s) defined twice: {', '.join(duplicates)}")
    return designs

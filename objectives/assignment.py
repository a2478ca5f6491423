"""Per-layer assignments: a mapping from layer name (torch module name) to multiplier name, validated.

Layers left out stay exact. A file is a JSON object ``{"layer": "multiplier", ...}``, or one
that holds such an object under ``"assignment"``.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .errors import AssignmentError


def find_multiplier(name: str, imports: Sequence[str] = ()) -> Any:
    """The zoo design called ``name`` (built-in designs plus imported ones)."""
    from multipliers import get
    from multipliers.zoo import UnknownMultiplierError

    try:
        return get(name, tuple(imports))
    except UnknownMultiplierError as error:
        raise AssignmentError(str(error)) from None


def load_assignment(path: str | Path) -> dict[str, str]:
    """Read an assignment file (JSON object of layer name -> multiplier name)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AssignmentError(f"assignment file {path} does not exist") from None
    except IsADirectoryError:
        raise AssignmentError(f"assignment file {path} is a folder; give the JSON file") from None
    except (OSError, ValueError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        lines = str(getattr(error, "strerror", None) or error).splitlines()
        raise AssignmentError(f"cannot read assignment {path}: {lines[0] if lines else type(error).__name__}") from None
    except RecursionError:
        raise AssignmentError(f"cannot read assignment {path}: nested too deep") from None
    if isinstance(data, dict) and isinstance(data.get("assignment"), dict):
        data = data["assignment"]
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise AssignmentError(f"{path}: expected a JSON object mapping layer names to multiplier names")
    return dict(data)


def resolve_assignment(
    mapping: Mapping[str, Any], layers: Iterable[str], scheme: str, imports: Sequence[str] = ()
) -> dict[str, Any]:
    """Layer name -> Multiplier, checking layer names, multiplier names and signedness."""
    known = list(layers)
    signed = scheme == "int8"
    resolved = {}
    for layer, design in mapping.items():
        if layer not in known:
            close = difflib.get_close_matches(str(layer), known, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else "; `dse layers NETWORK` lists them"
            raise AssignmentError(f"unknown layer {layer!r}{hint}")
        multiplier = find_multiplier(design, imports) if isinstance(design, str) else design
        if multiplier.signed != signed:
            kind, need = ("unsigned", "signed") if signed else ("signed", "unsigned")
            raise AssignmentError(
                f"layer {layer!r}: multiplier {multiplier.name} is {kind}; the {scheme} scheme needs {need} designs"
            )
        resolved[layer] = multiplier
    return resolved

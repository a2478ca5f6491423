"""The shipped synthesis results of the built-in designs and their attachment to the zoo.

``multipliers/data/synthesis_costs.json`` holds, per built-in design, its LUT hash, the tool that
synthesised it, area (transistors), cell counts, logic depth and activity energy under uniform
operands; ``synthesis_netlists.json.gz`` holds the gate netlists, so per-layer activity energy of
a built-in design needs no synthesis tool. Both are rewritten by ``python -m
multipliers.hardware.regenerate``. A design gets the shipped figures only when its name and LUT
hash both match an entry.
"""

from __future__ import annotations

import functools
import gzip
import json
import logging
from pathlib import Path
from typing import Any, Iterable

from .._record import HardwareCost, Multiplier
from .netlist import GateNetlist

log = logging.getLogger(__name__)

DATA = Path(__file__).resolve().parents[1] / "data"
COSTS_FILE = DATA / "synthesis_costs.json"
NETLISTS_FILE = DATA / "synthesis_netlists.json.gz"
METHOD = "synthesis"


@functools.lru_cache(maxsize=1)
def cost_table() -> dict[str, Any]:
    """The shipped cost table (an empty one when the file is missing)."""
    try:
        return json.loads(COSTS_FILE.read_text())
    except FileNotFoundError:
        log.warning("no shipped synthesis cost table at %s", COSTS_FILE)
        return {"designs": {}}


@functools.lru_cache(maxsize=1)
def _netlists() -> dict[str, Any]:
    try:
        with gzip.open(NETLISTS_FILE, "rt") as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def entry(m: Multiplier) -> dict[str, Any] | None:
    """The shipped figures of ``m`` when its name and LUT hash match, else None."""
    found = cost_table()["designs"].get(m.name)
    return found if found and found.get("lut_sha256") == m.lut_sha256 else None


def reference_design(signed: bool) -> Multiplier:
    """The exact multiplier of that signedness (the reference of relative costs)."""
    from ..families import get_family

    return get_family("exact").make(signed)


def netlist_of(m: Multiplier) -> GateNetlist:
    """The gate netlist of ``m``: shipped for built-in designs, else synthesised (cached; needs Yosys)."""
    shipped = _netlists().get(m.name)
    if shipped and shipped.get("lut_sha256") == m.lut_sha256:
        return GateNetlist.from_json(shipped["netlist"])
    from .synthesis import synthesize

    return synthesize(m).netlist


def synthesis_cost(m: Multiplier) -> HardwareCost | None:
    """The shipped "synthesis" cost of ``m`` relative to exact of its signedness, or None."""
    found = entry(m)
    reference = cost_table().get("reference", {}).get("signed" if m.signed else "unsigned")
    if not found or not reference:
        return None
    return relative_cost(found, reference, cost_table().get("tool", "yosys"))


def relative_cost(found: dict, reference: dict, how: str, method: str = METHOD) -> HardwareCost:
    """A synthesis record (transistors, cells, depth, activity energy) as a ``method`` cost relative to the exact
    multiplier's ``reference`` record; ``how`` names the flow in the cost's source."""
    return HardwareCost(
        method=method,
        area=found["transistors"] / reference["transistors"],
        energy=found["energy"] / reference["energy"],
        delay=found["depth"] / reference["depth"],
        absolute={"transistors": found["transistors"], "cells": found["cell_count"], "logic_depth": found["depth"],
                  "energy_pj": 0.2 * found["energy"] / reference["energy"]},
        source=f"{how}, generic transistor-count library; activity-based energy, uniform operands",
    )


def attach_synthesis_costs(multipliers: Iterable[Multiplier]) -> list[Multiplier]:
    """The designs, each with a "synthesis" cost added where the shipped table has its LUT hash."""
    out = []
    for m in multipliers:
        cost = synthesis_cost(m)
        out.append(m.with_cost(cost) if cost else m)
    return out

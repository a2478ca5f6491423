"""Synthesised cost of the built-in designs: per-family area and energy vs exact, and the unit-gate rank agreement.

    python benchmarks/synthesis.py [--fresh] [--samples 8192]

Prints, per family and signedness, the geometric-mean synthesised area and activity energy
(uniform operands) relative to the exact multiplier of the same signedness, next to the
unit-gate estimate; then the Spearman rank correlation between unit-gate and synthesised area
over all designs, and timings of Verilog generation, synthesis and the activity simulation.
By default the shipped cost table is used; ``--fresh`` synthesises everything again (Yosys).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from multipliers.families import FAMILIES  # noqa: E402
from multipliers.hardware.activity import activity_energy  # noqa: E402
from multipliers.hardware.precomputed import attach_synthesis_costs  # noqa: E402
from multipliers.hardware.verilog import verilog_module  # noqa: E402


def spearman(x: list[float], y: list[float]) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    def ranks(v: list[float]) -> np.ndarray:
        v = np.asarray(v)
        order = np.argsort(v, kind="stable")
        r = np.empty(len(v))
        r[order] = np.arange(len(v))
        for value in np.unique(v):  # ties share their mean rank
            r[v == value] = r[v == value].mean()
        return r

    return float(np.corrcoef(ranks(x), ranks(y))[0, 1])


def geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fresh", action="store_true",
                        help="synthesise every design again instead of using the shipped table")
    parser.add_argument("--samples", type=int, default=8192, help="operand pairs for the activity timing")
    args = parser.parse_args()
    designs = [m for f in FAMILIES for m in f.designs()]

    start = time.perf_counter()
    for m in designs:
        verilog_module(m)
    generate = time.perf_counter() - start

    start = time.perf_counter()
    if args.fresh:
        from multipliers.hardware.regenerate import characterise

        rows = {m.name: characterise(m)[1] for m in designs}
        ref = {s: rows[f"exact_{'s' if s else 'u'}"] for s in (False, True)}
        costs = {m.name: (rows[m.name]["transistors"] / ref[m.signed]["transistors"],
                          rows[m.name]["energy"] / ref[m.signed]["energy"]) for m in designs}
    else:
        attached = attach_synthesis_costs(designs)
        costs = {m.name: (m.cost("synthesis").area, m.cost("synthesis").energy) for m in attached}
    synth = time.perf_counter() - start

    by_family: dict[tuple[str, bool], list] = defaultdict(list)
    for m in designs:
        by_family[(m.family, m.signed)].append((costs[m.name][0], costs[m.name][1], m.cost("unit-gate").area))
    print(f"{'family':<10} {'sign':<4} {'n':>2}  {'area':>6} {'energy':>6} {'unit-gate':>9}"
          "   (geometric means, exact = 1)")
    for (family, signed), values in by_family.items():
        area, energy, unit = (geomean([v[k] for v in values]) for k in range(3))
        print(f"{family:<10} {'s' if signed else 'u':<4} {len(values):>2}  {area:6.3f} {energy:6.3f} {unit:9.3f}")
    rho = spearman([m.cost("unit-gate").area for m in designs], [costs[m.name][0] for m in designs])
    print(f"Spearman rank correlation, unit-gate vs synthesised area, {len(designs)} designs: {rho:.3f}")

    m = next(d for d in designs if d.name == "exact_u")
    start = time.perf_counter()
    activity_energy(m, samples=args.samples)
    activity = time.perf_counter() - start
    print(f"Verilog generation: {1000 * generate / len(designs):.0f} ms per design; "
          f"{'synthesis + activity' if args.fresh else 'shipped table'}: {synth:.1f} s for {len(designs)} designs; "
          f"activity energy of exact_u ({args.samples} pairs, with its reference): {activity:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

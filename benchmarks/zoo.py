"""Time to build the whole zoo (every built-in design's LUT and cost) and its error statistics."""

from __future__ import annotations

import time

import numpy as np


def main() -> None:
    start = time.perf_counter()
    from multipliers.families import FAMILIES

    designs = [m for family in FAMILIES for m in family.designs()]
    built = time.perf_counter()

    from multipliers import error_statistics

    error_statistics(designs)
    uniform = time.perf_counter()
    rng = np.random.default_rng(0)
    p, q = rng.random(256), rng.random(256)
    error_statistics(designs, p, q)
    histograms = time.perf_counter()

    print(f"families: {len(FAMILIES)}, designs: {len(designs)}")
    print(f"build LUTs and unit-gate costs: {built - start:.3f} s")
    print(f"statistics, uniform operands:   {uniform - built:.3f} s")
    print(f"statistics, given histograms:   {histograms - uniform:.3f} s")
    print(f"zoo with statistics: {histograms - start:.3f} s")


if __name__ == "__main__":
    main()

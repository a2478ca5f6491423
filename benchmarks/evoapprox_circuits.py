"""Import every EvoApprox8b circuit from its Verilog: simulated LUTs against the library's tables, costs against the published ones.

    python benchmarks/evoapprox_circuits.py [--data ../shared/data]

Imports ``evoapprox-verilog/`` (49 gate-level circuits; Yosys synthesis and netlist simulation, cached after the
first run), checks that each circuit with a table in ``evoapprox-mul8u/`` or ``evoapprox-mul8s/`` simulates to
exactly that table (row = activation = the circuit's A input), and prints the Spearman rank correlation of the
synthesised area (transistors) and activity energy (uniform operands) against the published 45 nm area and
power, per signedness, over the designs with a table (32 unsigned, 13 signed) and over all 49. Exit status 1
when a simulated LUT differs from its table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from multipliers import import_designs  # noqa: E402
from objectives.paths import shared_data_dir  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=shared_data_dir(), help="the shared data folder")
    args = parser.parse_args()
    clock = time.perf_counter()
    circuits = import_designs(args.data / "evoapprox-verilog")
    seconds = time.perf_counter() - clock
    tables = {d.name: d for folder in ("evoapprox-mul8u", "evoapprox-mul8s") for d in import_designs(args.data / folder)}
    with_table = [d for d in circuits if d.name in tables]
    differ = [d.name for d in with_table if not np.array_equal(d.lut, tables[d.name].lut)]
    print(f"{len(circuits)} circuits imported in {seconds:.1f} s; {len(with_table)} have a table: "
          f"{len(with_table) - len(differ)} simulate to exactly it" + (f", {len(differ)} differ: {', '.join(differ)}"
                                                                        if differ else ""))
    print("no table: " + ", ".join(d.name for d in circuits if d.name not in tables))
    print("\nSpearman rank correlation, synthesised (generic transistor library, activity energy) against published "
          "(EvoApprox8b, 45 nm):")
    print(f"{'signedness':<10} {'designs':<16} {'n':>3} {'area vs area':>13} {'energy vs power':>16}")
    for signed in (False, True):
        for group, label in ((with_table, "with a table"), (circuits, "all circuits")):
            chosen = [d for d in group if d.signed == signed]
            area = spearmanr([d.cost("synthesised").area for d in chosen],
                             [d.cost("published").absolute["area_um2"] for d in chosen])[0]
            energy = spearmanr([d.cost("synthesised").energy for d in chosen],
                               [d.cost("published").absolute["power_mw"] for d in chosen])[0]
            print(f"{'signed' if signed else 'unsigned':<10} {label:<16} {len(chosen):>3} {area:>13.3f} {energy:>16.3f}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())

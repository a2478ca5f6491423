"""Hardware for the zoo: verified Verilog, synthesised cost and activity-based energy, RTL export.

* :func:`verilog_module` — synthesisable Verilog of a design (structural for every built-in
  family; its own circuit for a design imported from Verilog; a behavioural ROM for designs
  imported as tables).
* :func:`import_circuits` — designs from their Verilog: LUT by simulating the synthesised netlist
  on all 65,536 operand pairs, cost by the synthesis flow below.
* :func:`check_equivalence` — exhaustive simulation of that Verilog against the LUT (Icarus).
* :func:`synthesize` — Yosys + ABC onto a generic transistor-count library (cached on disk).
* :func:`activity_energy` — energy per multiplication from switching activity of the netlist
  under given operand histograms.
* :func:`attach_synthesis_costs` — the shipped synthesis costs of the built-in designs.
* :func:`write_hardware_bundle` — the RTL part of ``dse export``.

Names are imported lazily, so ``import multipliers.hardware`` costs nothing.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "verilog_module": ".verilog",
    "is_structural": ".verilog",
    "GeneratorError": ".verilog",
    "check_equivalence": ".simulate",
    "Equivalence": ".simulate",
    "ToolNotFoundError": ".tools",
    "synthesize": ".synthesis",
    "SynthesisResult": ".synthesis",
    "SynthesisError": ".synthesis",
    "activity_energy": ".activity",
    "ActivityEnergy": ".activity",
    "attach_synthesis_costs": ".precomputed",
    "write_hardware_bundle": ".export",
    "layer_energy_pj": ".activity",
    "import_circuits": ".circuit_import",
    "CircuitRequest": ".circuit_import",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

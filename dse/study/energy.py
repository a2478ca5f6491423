"""The study's energy model: the zoo's cost per product, or switching activity under each layer's operands.

``[objectives] energy = "table"`` (default) charges every product the design's cost from the zoo
(``multipliers.cost_method``). ``energy = "activity"`` simulates the synthesised gate netlist of each
design on operand pairs drawn from each layer's calibration histograms (activations and weights,
:func:`multipliers.hardware.activity_energy`), so one design costs different energy in different
layers, and so does the exact multiplier (savings stay relative to exact in the same layers).
Designs without a netlist (imported tables such as EvoApprox8b) keep their table cost relative to
exact, scaled by the exact design's activity energy in the layer. Layers the study keeps exact only
need the exact design. The table is cached in the study folder (:data:`CACHE_FILE`, rewritten
atomically after every layer), keyed by the designs, the histograms, the sample count and the seed,
so a rerun or a resumed run computes nothing it already has.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:
    from multipliers import Multiplier
    from objectives.hardware_cost import EnergyModel

    from .config import StudyConfig
    from .target import Target

logger = logging.getLogger(__name__)

CACHE_FILE = "activity_energy.json"
FORMAT = 1
ACTIVITY = "activity"


def study_energy_model(
    config: "StudyConfig", target: "Target", multipliers: Sequence["Multiplier"], directory: Path, progress: bool = True
) -> "EnergyModel":
    """The energy model the study file asks for (activity energies computed or read from ``directory``)."""
    from objectives.hardware_cost import EnergyModel

    method = config.multipliers.cost_method or None
    hook = None
    if config.objectives.energy == ACTIVITY:
        table = activity_table(target, multipliers, directory, config.objectives.activity_samples,
                               config.search.seed, method, progress)
        hook = lambda layer, m: table["product"][layer.name][m.name]  # noqa: E731
    return EnergyModel(
        target.layers, multipliers, method, hook,
        multiply_pj=config.objectives.multiply_pj, accumulate_pj=config.objectives.accumulate_pj,
    )


def activity_table(
    target: "Target", multipliers: Sequence["Multiplier"], directory: Path, samples: int, seed: int,
    method: str | None = None, progress: bool = True,
) -> dict[str, Any]:
    """Energy per product of every (layer, design), in units of the exact multiplier under uniform operands.

    Returns ``{"product": {layer: {design: value}}, "method": {layer: {design: how}}, ...}``; read from
    the study folder's cache when its key matches, else computed (and saved after every layer).
    """
    from objectives.atomic_file import write_atomically

    histograms = target.qnet.histograms
    exact = next(m for m in multipliers if m.is_exact)
    wanted = {layer.name: (list(multipliers) if layer.name in target.approximated else [exact]) for layer in target.layers}
    key = _key(multipliers, histograms, wanted, samples, seed, method)
    path = Path(directory) / CACHE_FILE
    table = _read(path, key)
    todo = [(name, m) for name, designs in wanted.items() for m in designs if m.name not in table["product"].get(name, {})]
    if todo:
        logger.info("activity energy of %d (layer, design) pairs, %d operand pairs each", len(todo), samples)
        path.parent.mkdir(parents=True, exist_ok=True)
        from tqdm import tqdm

        with tqdm(total=len(todo), desc="activity energy", unit="design", disable=not progress) as bar:
            for name in wanted:
                pending = [m for layer, m in todo if layer == name]
                if not pending:
                    continue
                hist = histograms[name]
                for m in sorted(pending, key=lambda d: not d.is_exact):  # exact first: the others may scale it
                    value, how = _product_energy(m, hist.activation, hist.weight, samples, seed, method,
                                                 table["product"].get(name, {}).get(exact.name))
                    table["product"].setdefault(name, {})[m.name] = value
                    table["method"].setdefault(name, {})[m.name] = how
                    bar.update(1)
                text = json.dumps(table, indent=1, sort_keys=True) + "\n"
                write_atomically(path, lambda f: f.write(text.encode()))
    for name, designs in wanted.items():  # layers kept exact: other designs never run there
        for m in multipliers:
            if m.name not in table["product"][name]:
                table["product"][name][m.name] = table["product"][name][exact.name] * _table_cost(m, method)
                table["method"][name][m.name] = "not used"
    return table


def read_activity_table(directory: Path) -> dict[str, Any] | None:
    """The activity table a study folder holds (for reports and exports), or None."""
    path = Path(directory) / CACHE_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _product_energy(m: "Multiplier", p: np.ndarray, q: np.ndarray, samples: int, seed: int, method: str | None,
                    exact_value: float | None) -> tuple[float, str]:
    """(energy per product in anchor units, how it was obtained) of one design under one layer's histograms."""
    from multipliers.hardware import activity_energy
    from multipliers.hardware.synthesis import SynthesisError
    from multipliers.hardware.tools import ToolNotFoundError
    from multipliers.hardware.verilog import is_structural

    if is_structural(m):
        try:
            return float(activity_energy(m, p, q, samples=samples, seed=seed).relative), ACTIVITY
        except (ToolNotFoundError, SynthesisError) as error:
            logger.warning("%s: no netlist for activity energy (%s); using its table cost", m.name, error)
    scale = 1.0 if exact_value is None else exact_value
    return scale * _table_cost(m, method), f"{m.cost(method).method} x exact activity" if exact_value else m.cost(method).method


def _table_cost(m: "Multiplier", method: str | None) -> float:
    return 1.0 if m.is_exact else float(m.cost(method).energy)


def _key(multipliers: Sequence["Multiplier"], histograms: Any, wanted: dict[str, list], samples: int, seed: int,
         method: str | None) -> str:
    """What the table depends on: designs (LUTs, table costs), each layer's histograms, samples, seed."""
    digest = hashlib.sha256(json.dumps([FORMAT, samples, seed, method or ""]).encode())
    for m in multipliers:
        digest.update(f"{m.name}:{m.lut_sha256}:{_table_cost(m, method)!r};".encode())
    for name in wanted:
        hist = histograms[name]
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(hist.activation, dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(hist.weight, dtype=np.int64).tobytes())
    return digest.hexdigest()


def _read(path: Path, key: str) -> dict[str, Any]:
    """The cached table when it was computed for ``key``, else an empty one."""
    empty = {"format": FORMAT, "key": key, "product": {}, "method": {},
             "units": "energy per product / exact multiplier's under uniform operands (x multiply_pj = pJ)"}
    cached = read_activity_table(path.parent) if path.is_file() else None
    if cached and cached.get("key") == key and cached.get("format") == FORMAT:
        return cached
    if cached:
        logger.info("%s was computed for other designs or operands; recomputing", path)
    return empty

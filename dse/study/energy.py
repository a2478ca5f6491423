"""The study's energy model: the zoo's cost per product, or switching activity under each layer's operands; and
the whole accelerator's energy through ZigZag.

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

``energy = "system"`` (with ``accelerator``, and optionally ``mapping``) charges products like ``table``
and adds the whole accelerator's energy: ZigZag maps every conv/linear layer of the network (those kept
exact too) onto the accelerator once per study (:mod:`objectives.system_energy`; cached in the study
folder, :data:`SYSTEM_CACHE`, one entry per accelerator and mapping, one result per distinct layer shape)
and gives its MAC array's and each memory level's energy per inference. An assignment's system energy
(:class:`SystemEnergy`) keeps each layer's memory energy, splits ZigZag's MAC energy into the multiplier's
and the adder's share by the study's anchors (``multiply_pj`` : ``accumulate_pj``, 2 : 1 by default), and
scales the multiplier's share by the layer's design (its energy per product relative to the exact
multiplier under uniform operands, as the search charges it). So the system energy is the fixed memory
and adder energy plus a constant times the multiplier energy the search minimises: the search optimises
it as it is, and the front in system energy is the front in multiplier energy.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

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
SYSTEM = "system"
SYSTEM_CACHE = "system_energy.json"
SYSTEM_FORMAT = 1


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
    elif config.objectives.energy == SYSTEM:  # ZigZag once per study, cached: later reports read it from the folder
        records = [target.layer_info(layer.name).as_dict() for layer in target.layers]
        system_table(study_accelerator(config), records, directory, progress)
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


# -- whole-accelerator energy (ZigZag) ------------------------------------------------------------------------
def study_accelerator(config: "StudyConfig", accelerator: str = "", mapping: str = "") -> Any:
    """The accelerator of ``[objectives]`` (or the one given), resolved and checked; mistakes as one-line UserErrors."""
    from objectives.errors import ObjectiveInputError
    from objectives.system_energy import check_accelerator, resolve_accelerator

    from ..errors import UserError

    try:
        if accelerator:
            found = resolve_accelerator(accelerator, mapping)
        else:
            found = resolve_accelerator(config.objectives.accelerator, config.objectives.mapping)
        check_accelerator(found)
    except ObjectiveInputError as error:
        raise UserError(str(error)) from None
    return found


def system_table(accelerator: Any, layers: Sequence[dict[str, Any]], directory: Path,
                 progress: bool = True) -> dict[str, Any]:
    """ZigZag's energy of every layer on ``accelerator``: ``{layer name: LayerSystemEnergy as a dict}`` (pJ per image).

    Read from the study folder's cache (:data:`SYSTEM_CACHE`), else computed once per distinct layer shape and
    saved after each one, so an interrupted computation continues where it stopped.
    """
    from objectives.atomic_file import write_atomically
    from objectives.errors import ObjectiveInputError
    from objectives.system_energy import layer_energy, workload_layer, zigzag_version

    from ..errors import UserError

    path = Path(directory) / SYSTEM_CACHE
    document = _read_json(path) or {}
    if document.get("format") != SYSTEM_FORMAT:
        document = {"format": SYSTEM_FORMAT, "units": "pJ per inference (one image)", "accelerators": {}}
    try:
        digest = accelerator.digest()
        entry = document["accelerators"].setdefault(digest, {
            "name": accelerator.name, "hardware": str(accelerator.hardware), "mapping": str(accelerator.mapping),
            "zigzag": zigzag_version(), "workloads": {}})
        shapes = {layer["name"]: _shape_key(workload_layer(layer)) for layer in layers}
        todo = [layer for layer in layers if shapes[layer["name"]] not in entry["workloads"]]
        todo = list({shapes[layer["name"]]: layer for layer in todo}.values())  # one per distinct shape
        if todo:
            from tqdm import tqdm

            logger.info("ZigZag: mapping %d distinct layer shapes onto %s", len(todo), accelerator.describe())
            for layer in tqdm(todo, desc=f"system energy ({accelerator.name})", unit="layer", disable=not progress):
                result = layer_energy(accelerator, layer).as_dict()
                entry["workloads"][shapes[layer["name"]]] = {k: v for k, v in result.items() if k != "layer"}
                text = json.dumps(document, indent=1, sort_keys=True) + "\n"
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    write_atomically(path, lambda f: f.write(text.encode()))
                except OSError as error:  # a read-only study folder: the results serve this run only
                    logger.warning("cannot cache ZigZag's results in %s: %s", path, error.strerror or error)
    except ObjectiveInputError as error:
        raise UserError(str(error)) from None
    return {name: {"layer": name, **entry["workloads"][key]} for name, key in shapes.items()}


def _shape_key(workload: dict[str, Any]) -> str:
    """What ZigZag's result for a layer depends on: its workload without its name and position."""
    shape = {k: v for k, v in workload.items() if k not in ("id", "name")}
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


class SystemEnergy:
    """Assignments' energy on the whole accelerator: ZigZag's memories and adders, each layer's multiplier by its design.

    ``layers``: ZigZag's results per layer (:func:`system_table`); ``product(layer, design)``: the design's energy
    per product in the layer, in units of the exact multiplier under uniform operands; ``share``: the multiplier's
    part of ZigZag's MAC energy (multiply_pj / (multiply_pj + accumulate_pj)); ``exact``: the design of layers an
    assignment leaves out.
    """

    def __init__(self, accelerator: str, layers: dict[str, dict[str, Any]], product: Any, share: float,
                 exact: str) -> None:
        self.accelerator = accelerator
        self.layers = layers
        self.product = product
        self.share = float(share)
        self.exact = exact
        self._exact_total = self.total_pj({})

    def breakdown(self, assignment: Mapping[str, str]) -> list[dict[str, Any]]:
        """Per layer (network order): design, MACs and energy per image in pJ: multiplier, adder, each memory level."""
        rows = []
        for name, zz in self.layers.items():
            design = assignment.get(name, self.exact)
            mac = float(zz["mac_pj"])
            multiplier = self.share * mac * float(self.product(name, design))
            adder = (1.0 - self.share) * mac
            memory = {level: float(v) for level, v in zz["memory_pj"].items()}
            rows.append({"layer": name, "multiplier": design, "macs": int(zz["macs"]), "multiplier_pj": multiplier,
                         "adder_pj": adder, "memory_pj": memory, "total_pj": multiplier + adder + sum(memory.values())})
        return rows

    def total_pj(self, assignment: Mapping[str, str]) -> float:
        """The network's energy per image on the accelerator, pJ."""
        return float(sum(row["total_pj"] for row in self.breakdown(assignment)))

    def saving(self, assignment: Mapping[str, str]) -> float:
        """System energy saved against exact multipliers everywhere, percent."""
        return 100.0 * (1.0 - self.total_pj(assignment) / self._exact_total)


def per_product_energy(folder: Any):
    """``(layer, design record) -> (energy per product in anchor units, relative to exact in the layer, method)``."""
    from ..errors import UserError

    if folder.config.objectives.energy != ACTIVITY:
        return lambda layer, design: (design["energy"], design["energy"], design["cost_method"])
    table = read_activity_table(folder.path)
    if table is None:
        raise UserError(f"{folder.path} has no activity energy table ({CACHE_FILE}); continue the study with dse run first")
    exact = folder.designs[0]["name"]

    def lookup(layer: str, design: dict) -> tuple[float, float, str]:
        try:
            product = table["product"][layer][design["name"]]
            return product, product / table["product"][layer][exact], table["method"][layer][design["name"]]
        except KeyError:
            raise UserError(f"{folder.path / CACHE_FILE} has no energy of {design['name']} in {layer}; "
                            "continue the study with dse run") from None

    return lookup


def folder_system_energy(folder: Any, accelerator: str = "", mapping: str = "",
                         progress: bool = False) -> SystemEnergy | None:
    """The system energy model of a study folder: its own accelerator, or the one given; None when it has neither."""
    config = folder.config
    if not accelerator and config.objectives.energy != SYSTEM:
        return None
    found = study_accelerator(config, accelerator, mapping)
    table = system_table(found, folder.layers, folder.path, progress)
    energy = per_product_energy(folder)
    designs = {d["name"]: d for d in folder.designs}
    multiply, accumulate = config.objectives.multiply_pj, config.objectives.accumulate_pj
    share = multiply / (multiply + accumulate) if multiply + accumulate > 0 else 0.0
    return SystemEnergy(found.name, table, lambda layer, design: energy(layer, designs[design])[0], share,
                        folder.designs[0]["name"])

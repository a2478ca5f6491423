"""``dse export``: one front point as files an RTL flow takes.

Written into a fresh folder that replaces ``--out`` in one rename (never half an export)::

    assignment.json, assignment.csv   per layer: GEMM dims, MACs, design and its identity, LUT SHA-256,
                                      compensation per output channel, energy (pJ per image), and the
                                      weight map when the study tunes weights to their designs
    luts/<design>.npy, .csv           the LUT of every design used (zoo indexing, row = activation)
    README.md                         what the files are
    rtl/, tb/, compensation.*, energy.*   Verilog and testbenches (multipliers.hardware), when available: a design
                                      imported from its Verilog exports its own circuit
    system_energy.csv                 with a system energy model (ZigZag): per layer, pJ per image of the
                                      multiplier, the adder and each memory level (also in assignment.json)
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UserError
from .energy import per_product_energy
from .front import Front, FrontPoint, compensation_label
from .schema import RunSection
from .target import layer_compensation

if TYPE_CHECKING:
    from .directory import StudyFolder

logger = logging.getLogger(__name__)

CSV_COLUMNS = (
    "layer", "kind", "m", "k", "n", "macs", "multiplier", "family", "params", "signed", "lut_sha256",
    "relative_energy", "energy_method", "multiplier_pj_per_mac", "multiplier_pj", "accumulate_pj", "mac_pj",
    "compensation", "compensation_scale", "compensation_bias", "weight_map",
)


_ENERGY_NOTE = {
    "table": "energy per product from the zoo's cost (energy_method)",
    "system": "energy per product from the zoo's cost (energy_method)",
    "activity": "energy per product from switching activity of the synthesised netlist under the layer's "
                "calibration operands; designs without a netlist keep their table cost relative to exact (energy_method)",
}

_TUNED_NOTE = (
    "  Weights are tuned to their design: `weight_map` (256 operand values, for weight values -128..127 (int8) or\n"
    "  codes 0..255 (uint8) in order) gives the operand to store in place of each quantised weight; the measured\n"
    "  accuracy is with these weights (zero-point terms, uint8, use the original codes). Layers with `null` keep theirs.\n"
)


def pick_point(front: Front, pick: int | None, max_drop: float | None) -> tuple[int, FrontPoint]:
    """The front point chosen by index, or the most energy-saving one within ``max_drop`` points."""
    if not front.points:
        raise UserError("the study has no confirmed front yet; run it first (dse run)")
    if pick is not None:
        if not 0 <= pick < len(front.points):
            raise UserError(f"--pick {pick} is not a front index; `dse front` lists 0..{len(front.points) - 1}")
        return pick, front.points[pick]
    fit = [i for i, p in enumerate(front.points) if p.drop <= max_drop]
    if not fit:
        best = min(p.drop for p in front.points)
        raise UserError(f"no confirmed point within {max_drop:g} points of drop (the smallest is {best:.2f})")
    return fit[0], front.points[fit[0]]


def export_point(folder: "StudyFolder", front: Front, index: int, point: FrontPoint, out: Path, accelerator: str = "",
                 mapping: str = "") -> list[Path]:
    """Write the export of ``point`` to ``out`` (with the whole accelerator's energy on the study's accelerator, or on
    ``accelerator``); returns the files written."""
    from .energy import folder_system_energy

    from multipliers import Zoo

    from .target import objective_errors

    config = folder.config
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "assignment.json").is_file())):
        raise UserError(f"{out} exists and is not an earlier export; give another --out")
    try:
        zoo = Zoo.default(list(config.multipliers.imports))
    except Exception as error:  # imported files moved since the run
        raise UserError(f"cannot rebuild the study's designs: {error}") from None
    designs = {d["name"]: d for d in folder.designs}
    used = sorted(set(point.assignment.values()))
    for name in used:
        if name not in zoo or zoo[name].lut_sha256 != designs[name]["lut_sha256"]:
            raise UserError(f"design {name} is not in the zoo as it was when the study ran (LUT changed or import missing)")
    # the network is rebuilt on the CPU whatever run.device the study ran with (the same constants on every
    # device), so a study folder from a GPU machine exports anywhere
    on_cpu = dataclasses.replace(config, run=RunSection(device="cpu"))
    corrections: dict[str, dict[str, list[float]]] = {}
    if point.compensation != "none":
        from .target import build_target

        with objective_errors():
            corrections = build_target(on_cpu, [zoo[d["name"]] for d in folder.designs]).corrections(point.assignment, point.compensation)
    weight_maps: dict[str, list[int]] = {}
    if config.compensation.tune_weights:
        from .target import build_target

        with objective_errors():
            weight_maps = build_target(on_cpu, [zoo[d["name"]] for d in folder.designs]).weight_maps(point.assignment, point.compensation)
    layers = _layer_rows(folder, point, designs, corrections, weight_maps)
    system = folder_system_energy(folder, accelerator, mapping)
    system_rows = system.breakdown(point.assignment) if system is not None else []
    for row, energy in zip(layers, system_rows):
        row["system"] = {k: v for k, v in energy.items() if k not in ("layer", "multiplier", "macs")}
    parent = out.resolve().parent
    if not parent.is_dir():
        raise UserError(f"cannot write {out}: folder {parent} does not exist")
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        document = {
            "study": config.name, "front_index": index, "compensation": compensation_label(point.compensation),
            "baseline_top1": front.baseline_top1, "images": front.images,
            "point": {k: v for k, v in point.as_dict().items() if k != "assignment"},
            "energy_units": "pJ per image (inference); multiplier_pj_per_mac: pJ per product; relative_energy: "
                            "per product, exact multiplier in the same layer = 1",
            "energy_model": config.objectives.energy,
            "anchors_pj": {"multiply": config.objectives.multiply_pj, "accumulate": config.objectives.accumulate_pj},
            "totals": {k: sum(r[k] for r in layers) for k in ("macs", "multiplier_pj", "accumulate_pj", "mac_pj")},
            "layers": layers,
        }
        if system is not None:
            document["system"] = _system_summary(system, point, system_rows)
            (staging / "system_energy.csv").write_text(_system_csv(system_rows))
        (staging / "assignment.json").write_text(json.dumps(document, indent=1) + "\n")
        (staging / "assignment.csv").write_text(_csv(layers))
        (staging / "luts").mkdir()
        for name in used:
            buffer = io.BytesIO()
            np.save(buffer, zoo[name].lut)
            (staging / "luts" / f"{name}.npy").write_bytes(buffer.getvalue())
            np.savetxt(staging / "luts" / f"{name}.csv", zoo[name].lut, fmt="%d", delimiter=",")
        hardware = _hardware_bundle(staging, layers, zoo)
        (staging / "README.md").write_text(
            _readme(config.name, index, point, front, used, hardware, config.objectives.energy, bool(weight_maps),
                    system.accelerator if system is not None else ""))
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(p for p in out.rglob("*") if p.is_file())


def _layer_rows(folder, point: FrontPoint, designs: dict, corrections: dict, weight_maps: dict) -> list[dict[str, Any]]:
    config = folder.config
    exact = folder.designs[0]["name"]
    energy = per_product_energy(folder)
    rows = []
    for layer in folder.layers:
        name = layer["name"]
        design = designs[point.assignment.get(name, exact)]
        macs = int(layer["macs"])
        product, relative, method = energy(name, design)
        multiplier_pj = macs * product * config.objectives.multiply_pj
        accumulate_pj = macs * config.objectives.accumulate_pj
        rows.append({
            "index": len(rows), "layer": name, "kind": layer.get("kind", ""), "m": layer["m"], "k": layer["k"],
            "n": layer["n"], "macs": macs, "approximated": bool(layer["approximated"]), "multiplier": design["name"],
            "family": design["family"], "params": design["params"], "signed": design["signed"],
            "lut_sha256": design["lut_sha256"], "relative_energy": relative, "cost_method": design["cost_method"],
            "energy_method": method, "multiplier_pj_per_mac": product * config.objectives.multiply_pj,
            "multiplier_pj": multiplier_pj, "accumulate_pj": accumulate_pj, "mac_pj": multiplier_pj + accumulate_pj,
            "compensation": layer_compensation(point.compensation, name) if name in corrections else "none",
            "compensation_scale": corrections.get(name, {}).get("gain"),
            "compensation_bias": corrections.get(name, {}).get("offset"),
            "weight_map": weight_maps.get(name),
        })
    return rows


def _system_summary(system: Any, point: FrontPoint, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole accelerator's energy of the point: totals by component and the saving."""
    levels = list(dict.fromkeys(level for r in rows for level in r["memory_pj"]))
    return {
        "accelerator": system.accelerator,
        "units": "pJ per image (inference), ZigZag's lowest-energy mapping of every conv/linear layer",
        "multiplier_share_of_mac": system.share,
        "energy_saving": point.system_energy_saving if point.system_energy_saving is not None
        else system.saving(point.assignment),
        "totals": {"multiplier_pj": sum(r["multiplier_pj"] for r in rows), "adder_pj": sum(r["adder_pj"] for r in rows),
                   "memory_pj": {level: sum(r["memory_pj"].get(level, 0.0) for r in rows) for level in levels},
                   "total_pj": sum(r["total_pj"] for r in rows),
                   "exact_total_pj": system.total_pj({})},
    }


def _system_csv(rows: list[dict[str, Any]]) -> str:
    levels = list(dict.fromkeys(level for r in rows for level in r["memory_pj"]))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["layer", "multiplier", "macs", "multiplier_pj", "adder_pj", *(f"{lv}_pj" for lv in levels), "total_pj"])
    for r in rows:
        writer.writerow([r["layer"], r["multiplier"], r["macs"], f"{r['multiplier_pj']:.6g}", f"{r['adder_pj']:.6g}",
                         *(f"{r['memory_pj'].get(lv, 0.0):.6g}" for lv in levels), f"{r['total_pj']:.6g}"])
    return buffer.getvalue()


def _csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        values = []
        for c in CSV_COLUMNS:
            v = r[c]
            if c == "params":
                v = json.dumps(v, sort_keys=True)
            elif isinstance(v, list):
                v = " ".join(str(x) if isinstance(x, int) else f"{x:.9g}" for x in v)
            elif v is None:
                v = ""
            values.append(v)
        writer.writerow(values)
    return buffer.getvalue()


def _hardware_bundle(staging: Path, layers: list[dict[str, Any]], zoo: Any) -> bool:
    """HOOK for the hardware flow: Verilog, testbenches, compensation and energy via multipliers.hardware."""
    try:
        from multipliers.hardware import write_hardware_bundle
    except ImportError:  # the hardware package is optional
        logger.info("multipliers.hardware is not available: no Verilog in the export")
        return False
    rows = [
        {"index": r["index"], "name": r["layer"], "multiplier": zoo[r["multiplier"]], "macs": r["macs"],
         "bias": r["compensation_bias"], "scale": r["compensation_scale"]}
        for r in layers
    ]
    energy = {r["index"]: r["multiplier_pj_per_mac"] for r in layers}
    try:
        write_hardware_bundle(staging, rows, energy)
    except Exception as error:  # a design its generator cannot express: keep the rest of the export
        logger.warning("no Verilog in the export: %s", error)
        return False
    return True


def _held_out_sentence(point: FrontPoint, front: Front) -> str:
    """The held-out re-measurement of the point, as a sentence (empty when none was made)."""
    if point.held_out_drop is None:
        return ""
    return (f" Re-measured on the {front.held_out_images} test images the study's confirmation did not use (free of the "
            f"selection on the confirmation images): a drop of {point.held_out_text()} points.")


def _readme(study: str, index: int, point: FrontPoint, front: Front, used: list[str], hardware: bool, energy: str,
            tuned: bool = False, accelerator: str = "") -> str:
    rtl = (
        "* `rtl/<design>.v` — synthesisable Verilog of each design; `rtl/axm_config_pkg.sv` maps layer index to design;\n"
        "  `rtl/axm_layer_multiplier.sv` instantiates the design of a layer; `tb/` self-checking testbenches\n"
        "  (`tb/<design>_lut.hex` holds the expected products); `compensation.*` and `energy.*` restate the\n"
        "  per-layer constants and energy (energy.json also as ZigZag `operational_array.unit_energy`, pJ per MAC).\n"
        if hardware else "* (no Verilog: the hardware package was not available when this export was made)\n"
    )
    if accelerator:
        rtl += (f"* `system_energy.csv` (and `system` in `assignment.json`) — the whole accelerator's energy ({accelerator},\n"
                "  ZigZag's lowest-energy mapping of every conv/linear layer), pJ per image: each layer's multiplier, adder\n"
                "  and every memory level. ZigZag's MAC energy is split between multiplier and adder by the study's anchors;\n"
                f"  the multiplier's share scales with the layer's design. Saved against exact multipliers: "
                f"{point.system_energy_saving if point.system_energy_saving is not None else float('nan'):.2f}%.\n")
    return f"""# Approximate-multiplier assignment: {study}, front point {index}

Measured with bit-exact, error-injected integer inference: top-1 {point.top1:.2f}% against {front.baseline_top1:.2f}%
for exact multipliers ({front.images} test images), a drop of {point.drop_text()} points (± its standard error) (the surrogate predicted
{point.predicted_text()}, with its 80% interval).{_held_out_sentence(point, front)} Multiplier energy saved: {point.energy_saving:.1f}%;
whole-MAC energy (multiplier plus 32-bit accumulator add) saved: {point.mac_saving:.1f}%.
Compensation: {compensation_label(point.compensation)} (each layer's in `assignment.json`). Designs used: {', '.join(used)}.

## Files
* `assignment.json` — every conv/linear layer in network order: GEMM dims per image (M output positions,
  K = C_in/groups x kh x kw, N = C_out), MACs per image, the design (name, family, parameters, signedness,
  SHA-256 of its LUT as little-endian int32), its energy per product (pJ, and relative to the exact multiplier in
  the same layer), energy per image in pJ (multiplier, accumulator, whole MAC; anchors 0.2 pJ per 8-bit multiply
  under uniform operands and 0.1 pJ per 32-bit add at 45 nm, Horowitz ISSCC 2014; {_ENERGY_NOTE[energy]}),
  and the compensation per output channel: the accumulator becomes
  `compensation_scale[n] * acc + compensation_bias[n]` (accumulator units, folded into requantisation).
{_TUNED_NOTE if tuned else ""}* `assignment.csv` — the same, one row per layer (per-channel lists space-separated, parameters as JSON).
* `luts/<design>.npy` and `.csv` — each design's 256 x 256 product table; row = activation operand, column =
  weight operand; unsigned designs at codes 0..255, signed designs at value + 128 (values -128..127).
{rtl}"""

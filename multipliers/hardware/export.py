"""The hardware part of ``dse export``: RTL, configuration, testbenches, compensation and energy per layer.

:func:`write_hardware_bundle` writes, under ``out_dir``::

    rtl/<multiplier>.v          one module per distinct multiplier (structural, the design's own imported
                                circuit, or a behavioural ROM)
    rtl/axm_config_pkg.sv       package: layer index -> multiplier enum, layer names, module names
    rtl/axm_layer_multiplier.sv wrapper instantiating the multiplier of layer LAYER
    tb/tb_<multiplier>.v        self-checking testbench, reads tb/<multiplier>_lut.hex
    compensation.json, .csv     per-layer, per-channel bias and scale constants
    energy.json, energy.csv     per-layer energy: multiplier and whole MAC, pJ per MAC, and per layer

Energy per MAC = multiplier energy + a 32-bit accumulator add (0.1 pJ, 45 nm, Horowitz ISSCC 2014).
The multiplier's energy is activity-based (see :mod:`.activity`) when the layer's operand
histograms are given and the design has a netlist, else the design's uniform-operand relative
energy times 0.2 pJ. ``energy.json`` also gives each layer's MAC energy as ZigZag's operational
unit energy (``operational_array.unit_energy``, pJ), to plug into an accelerator model per layer.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .._record import Multiplier
from .activity import ACCUMULATE_PJ, EXACT_MULTIPLY_PJ, layer_energy_pj
from .rtl_config import PACKAGE, WRAPPER, config_package, layer_wrapper, module_testbench
from .simulate import lut_hex
from .verilog import verilog_module

log = logging.getLogger(__name__)


def write_hardware_bundle(out_dir: str | Path, layers: Sequence[Mapping[str, Any]],
                          energy: Mapping[int, float] | None = None) -> list[Path]:
    """Write the bundle for ``layers`` (dicts: index, name, multiplier, macs, bias, scale; optional
    activation_hist, weight_hist) under ``out_dir``; ``energy`` overrides the multiplier pJ per MAC
    per layer index. Returns the paths written."""
    out = Path(out_dir)
    written: list[Path] = []

    def write(relative: str, text: str) -> None:
        path = out / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)

    modules = list({layer["multiplier"].name: layer["multiplier"] for layer in layers}.values())
    if not modules:
        raise ValueError("an export needs at least one layer")
    for m in modules:
        write(f"rtl/{m.name}.v", verilog_module(m))
        write(f"tb/tb_{m.name}.v", module_testbench(m))
        write(f"tb/{m.name}_lut.hex", lut_hex(m))
    assignment = [(int(layer["index"]), str(layer["name"]), layer["multiplier"]) for layer in layers]
    write(f"rtl/{PACKAGE}.sv", config_package(assignment, modules))
    write(f"rtl/{WRAPPER}.sv", layer_wrapper(modules))
    compensation = [_compensation(layer) for layer in layers]
    write("compensation.json", json.dumps({"layers": compensation}, indent=1) + "\n")
    write("compensation.csv", _compensation_csv(compensation))
    rows = [_energy_row(layer, energy) for layer in layers]
    write("energy.json", json.dumps(_energy_document(rows), indent=1) + "\n")
    write("energy.csv", _csv(rows, [k for k in rows[0] if k != "zigzag"]))
    log.info("wrote %d files for %d layers and %d multipliers to %s", len(written), len(layers), len(modules), out)
    return written


def _compensation(layer: Mapping[str, Any]) -> dict[str, Any]:
    return {"index": int(layer["index"]), "name": str(layer["name"]), "multiplier": layer["multiplier"].name,
            "bias": _floats(layer.get("bias")), "scale": _floats(layer.get("scale"))}


def _floats(values: Any) -> list[float] | None:
    return None if values is None else [float(v) for v in np.asarray(values, dtype=float).reshape(-1)]


def _compensation_csv(layers: list[dict[str, Any]]) -> str:
    rows = []
    for layer in layers:
        bias, scale = layer["bias"] or [], layer["scale"] or []
        for channel in range(max(len(bias), len(scale))):
            rows.append({"index": layer["index"], "name": layer["name"], "channel": channel,
                         "bias": bias[channel] if channel < len(bias) else "",
                         "scale": scale[channel] if channel < len(scale) else ""})
    return _csv(rows, ["index", "name", "channel", "bias", "scale"])


def _energy_row(layer: Mapping[str, Any], energy: Mapping[int, float] | None) -> dict[str, Any]:
    m: Multiplier = layer["multiplier"]
    index = int(layer["index"])
    if energy is not None and index in energy:
        mul_pj, method = float(energy[index]), "given"
    else:
        mul_pj, method = layer_energy_pj(m, layer.get("activation_hist"), layer.get("weight_hist"))
    mac_pj = mul_pj + ACCUMULATE_PJ
    macs = int(layer.get("macs", 0))
    return {"index": index, "name": str(layer["name"]), "multiplier": m.name, "macs": macs,
            "multiplier_pj_per_mac": round(mul_pj, 6), "accumulator_pj_per_mac": ACCUMULATE_PJ,
            "mac_pj_per_mac": round(mac_pj, 6), "multiplier_energy_nj": round(macs * mul_pj / 1000, 6),
            "mac_energy_nj": round(macs * mac_pj / 1000, 6), "energy_method": method,
            "zigzag": {"operational_array": {"unit_energy": round(mac_pj, 6)}}}


def _energy_document(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "units": {"*_pj_per_mac": "pJ per multiply-accumulate", "*_energy_nj": "nJ per inference of the layer"},
        "anchors": {"exact_8bit_multiply_pj": EXACT_MULTIPLY_PJ, "accumulate_32bit_pj": ACCUMULATE_PJ,
                    "source": "45 nm, Horowitz, ISSCC 2014"},
        "layers": rows,
        "total": {"macs": sum(r["macs"] for r in rows),
                  "multiplier_energy_nj": round(sum(r["multiplier_energy_nj"] for r in rows), 6),
                  "mac_energy_nj": round(sum(r["mac_energy_nj"] for r in rows), 6)},
    }


def _csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()

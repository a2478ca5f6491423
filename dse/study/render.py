"""Text renderings of a :class:`~dse.study.front.Front`: summary table, front table, JSON and CSV."""

from __future__ import annotations

import csv
import io
import json

from ..output import format_table
from .fidelity import prediction_fidelity
from .front import Front, FrontPoint, compensation_label

CSV_COLUMNS = (
    "index", "energy_saving", "mac_saving", "top1", "top5", "drop", "drop_se", "predicted_drop", "predicted_drop_low",
    "predicted_drop_high", "distinct",
    "compensation", "role", "trial", "held_out_drop", "held_out_drop_se", "system_energy_saving", "assignment",
)


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def front_table(front: Front) -> str:
    """The confirmed front, best energy first, with what each column means."""
    held = front.held_out_images > 0
    system = bool(front.system_accelerator)
    header = ["#", "mult. energy saved %", "MAC energy saved %"] + (["system energy saved %"] if system else []) + [
        "top-1 %", "drop ± s.e.", "predicted (80% interval)", "distinct", "compensation", "role"] + (
        ["held-out drop ± s.e."] if held else [])
    rows = [
        [i, _num(p.energy_saving, 1), _num(p.mac_saving, 1)] + ([_num(p.system_energy_saving, 2)] if system else []) + [
            _num(p.top1), p.drop_text(), p.predicted_text(), p.distinct, compensation_label(p.compensation), p.role]
        + ([p.held_out_text()] if held else [])
        for i, p in enumerate(front.points)
    ]
    lines = [format_table(header, rows, "rrr" + ("r" if system else "") + "rrrrll" + ("r" if held else ""))]
    lines.append(
        f"{front.study}: exact int baseline top-1 {front.baseline_top1:.2f}% on {front.images} images; drops in points "
        f"(measured on the same images as the baseline, ± its standard error from the images whose prediction flips, "
        f"and as the surrogate predicted, with its 80% interval); {len(front.measured)} assignments measured, "
        f"{len(front.points)} on the front within {front.max_drop:g} points"
    )
    lines.append(f"surrogate against these measurements: {prediction_fidelity(front).text()}")
    return "\n".join(lines)


def levels_table(front: Front) -> str:
    """Best confirmed saving at each report level, multipliers alone and whole MACs."""
    system = bool(front.system_accelerator)
    header = ["max drop", "mult. energy saved %", "MAC energy saved %"] + (["system energy saved %"] if system else [])
    header += ["top-1 %", "measured drop ± s.e.", "front #"]
    held = front.held_out_images > 0
    header += ["held-out drop ± s.e."] if held else []
    index = {p.key: i for i, p in enumerate(front.points)}
    rows = []
    for level, p in front.levels:
        if p is None:
            row = [f"<= {level:g}"] + ["-"] * (len(header) - 1 - held)
        else:
            row = [f"<= {level:g}", _num(p.energy_saving, 1), _num(p.mac_saving, 1)] + (
                [_num(p.system_energy_saving, 2)] if system else []) + [_num(p.top1), p.drop_text(), index.get(p.key, "-")]
        rows.append(row + ([p.held_out_text() if p is not None else "-"] if held else []))
    note = ("multiplier energy: MACs x energy per product per layer (the zoo's cost, or with [objectives] energy = "
            "\"activity\" switching activity under the layer's operands), saved against exact multipliers in the same "
            "layers; MAC energy adds a 32-bit accumulator add per MAC (45 nm: 8-bit multiply ~0.2 pJ, 32-bit add "
            "~0.1 pJ, Horowitz ISSCC 2014)")
    if held:
        note += (f"; held-out drop: the same point re-measured on the {front.held_out_images} test images the "
                 f"confirmation did not use (exact top-1 {front.held_out_baseline_top1:.2f}% there), free of the "
                 "selection bias of picking and measuring on the same images")
    if system:
        note += (f"; system energy: the whole accelerator's ({front.system_accelerator}, ZigZag: memories, adders and "
                 "multipliers of every conv/linear layer) energy saved against exact multipliers")
    return format_table(header, rows, "r" * len(header)) + "\n" + note


def front_json(front: Front) -> str:
    """The front as a JSON list of points, best energy first."""
    return json.dumps([dict(index=i, **p.as_dict()) for i, p in enumerate(front.points)], indent=1) + "\n"


def front_csv(front: Front) -> str:
    """The front as CSV, one row per point; the assignment as ``layer=design`` pairs separated by ``;``.

    With compensation searched, the compensation column holds ``layer=mode`` pairs the same way.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for i, p in enumerate(front.points):
        writer.writerow([i, *(_row(p)), ";".join(f"{k}={v}" for k, v in p.assignment.items())])
    return buffer.getvalue()


def _row(p: FrontPoint) -> list:
    return [
        round(p.energy_saving, 4), round(p.mac_saving, 4), round(p.top1, 4), round(p.top5, 4), round(p.drop, 4),
        "" if p.drop_se is None else round(p.drop_se, 4),
        "" if p.predicted_drop is None else round(p.predicted_drop, 4),
        "" if p.predicted_drop_low is None else round(p.predicted_drop_low, 4),
        "" if p.predicted_drop_high is None else round(p.predicted_drop_high, 4), p.distinct, _compensation(p.compensation), p.role, p.trial,
        "" if p.held_out_drop is None else round(p.held_out_drop, 4),
        "" if p.held_out_drop_se is None else round(p.held_out_drop_se, 4),
        "" if p.system_energy_saving is None else round(p.system_energy_saving, 4),
    ]


def _compensation(compensation: str | dict[str, str]) -> str:
    if isinstance(compensation, str):
        return compensation
    return ";".join(f"{layer}={mode}" for layer, mode in compensation.items())

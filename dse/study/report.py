"""``dse report``: a study as one self-contained HTML page a designer can mail to a colleague.

The page holds everything in one file: the study's settings, the confirmed front (plot and table,
predicted, measured and held-out drops), every front point's per-layer assignment and energy (multiplier,
MAC and, with a system energy model, the whole accelerator's by component), the surrogate against real
inference, and the designs used with their error statistics and cost. Plots are PNG images embedded as
``data:`` URIs; there are no scripts, no external style sheets or fonts and no links to fetch, so the
page renders offline in any browser. It renders data the study folder already holds (the front, layers,
designs, ZigZag's cached results); nothing is measured again.
"""

from __future__ import annotations

import base64
import html
import logging
from typing import TYPE_CHECKING, Any, Sequence

from .energy import folder_system_energy, per_product_energy
from .fidelity import prediction_fidelity
from .front import Front, compensation_label
from .target import layer_compensation

if TYPE_CHECKING:
    from .directory import StudyFolder

logger = logging.getLogger(__name__)

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ccc; }
h3 { margin-top: 1.5em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.85em; }
th, td { border: 1px solid #ddd; padding: 0.2em 0.5em; text-align: right; vertical-align: top; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
tr.total td { font-weight: bold; background: #fafafa; }
img { max-width: 100%; border: 1px solid #eee; }
.note { color: #555; font-size: 0.85em; max-width: 60em; }
details { margin: 0.8em 0; } summary { cursor: pointer; font-weight: bold; }
code { background: #f5f5f5; padding: 0 0.2em; }
.wide { overflow-x: auto; }
"""


def study_report(folder: "StudyFolder", front: Front, accelerator: str = "", mapping: str = "") -> str:
    """The HTML page of a study folder's ``front`` (as :func:`dse.study.outputs.load_front` gives it)."""
    from .plots import assignment_heatmap, front_plot, predicted_vs_measured

    config = folder.config
    system = folder_system_energy(folder, accelerator, mapping) if front.system_accelerator else None
    design_energy = {d["name"]: d["energy"] for d in folder.designs}
    used = sorted({name for p in front.points for name in p.assignment.values()} | {folder.designs[0]["name"]})
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_e(config.name)}: approximate-multiplier study report</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{_e(config.name)}: approximate multipliers per layer</h1>",
        f'<p class="note">{_e(config.study.description)}</p>' if config.study.description else "",
        _summary(folder, front),
        "<h2>Confirmed front</h2>",
        _image(front_plot(front), "energy saved against top-1 drop"),
        _front_table(front),
        _levels(front),
        "<h2>Per-layer assignments</h2>",
        _image(assignment_heatmap(front, folder.searched_layers, design_energy), "per-layer assignment heat map"),
        _points(folder, front, system),
        "<h2>Surrogate against real inference</h2>",
        _image(predicted_vs_measured(front), "predicted against measured top-1 drop"),
        _measured_note(front),
        "<h2>Designs used</h2>",
        _designs(folder, used),
        "<h2>Study settings</h2>",
        _settings(folder),
        '<p class="note">Written by <code>dse report</code> (axm-dse) from the study folder '
        f"{_e(str(folder.path))}; the page is self-contained (images embedded, no scripts or external files).</p>",
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"


# -- pieces ------------------------------------------------------------------------------------------------
def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _pj(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], left: Sequence[int] = (), total: bool = False) -> str:
    """An HTML table; columns in ``left`` align left; with ``total`` the last row is bold."""
    def cell(tag: str, i: int, value: Any) -> str:
        cls = ' class="l"' if i in left else ""
        return f"<{tag}{cls}>{_e(value)}</{tag}>"

    lines = ['<div class="wide"><table>', "<tr>" + "".join(cell("th", i, h) for i, h in enumerate(header)) + "</tr>"]
    for k, row in enumerate(rows):
        cls = ' class="total"' if total and k == len(rows) - 1 else ""
        lines.append(f"<tr{cls}>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>")
    lines.append("</table></div>")
    return "\n".join(lines)


def _image(png: bytes, alt: str) -> str:
    return f'<p><img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}"></p>'


def _summary(folder: "StudyFolder", front: Front) -> str:
    config = folder.config
    approximated = len(folder.searched_layers)
    items = [
        ("network", config.network.name),
        ("quantisation", config.quantization.scheme),
        ("compensation", config.compensation.mode + (", weights tuned" if config.compensation.tune_weights else "")),
        ("layers", f"{len(folder.layers)} conv/linear, {approximated} searched"),
        ("candidate designs", f"{len(folder.designs)} (exact first: {folder.designs[0]['name']})" if folder.designs else "-"),
        ("energy model", config.objectives.energy + (f"; whole accelerator: {front.system_accelerator} (ZigZag)"
                                                     if front.system_accelerator else "")),
        ("exact baseline", f"{front.baseline_top1:.2f}% top-1 on {front.images} images"),
        ("measured", f"{len(front.measured)} assignments, {len(front.points)} on the front within "
                     f"{front.max_drop:g} points of drop"),
    ]
    if front.held_out_images:
        items.append(("held-out check", f"{front.held_out_images} other test images, exact "
                                         f"{front.held_out_baseline_top1:.2f}% top-1 there"))
    return _table(["", ""], items, left=(0, 1))


def _front_table(front: Front) -> str:
    if not front.points:
        return "<p>No confirmed point yet: continue the study with <code>dse run</code>.</p>"
    system = bool(front.system_accelerator)
    header = ["#", "multiplier energy saved %", "MAC energy saved %"] + (["system energy saved %"] if system else [])
    header += ["top-1 %", "drop ± s.e.", "predicted drop", "held-out drop ± s.e.", "distinct", "compensation", "role"]
    rows = [[i, _num(p.energy_saving, 1), _num(p.mac_saving, 1)] + ([_num(p.system_energy_saving)] if system else [])
            + [_num(p.top1), p.drop_text(), p.predicted_text(), p.held_out_text(), p.distinct,
               compensation_label(p.compensation), p.role] for i, p in enumerate(front.points)]
    note = ("Drops in top-1 points against the exact integer network on the same images, ± their paired standard "
            "error; predicted: the surrogate's; held out: re-measured on test images the confirmation did not use.")
    return _table(header, rows, left=(len(header) - 2, len(header) - 1)) + f'<p class="note">{_e(note)}</p>'


def _levels(front: Front) -> str:
    rows = []
    index = {p.key: i for i, p in enumerate(front.points)}
    for level, p in front.levels:
        if p is None:
            rows.append([f"<= {level:g}", "-", "-", "-", "-", "-"])
        else:
            rows.append([f"<= {level:g}", _num(p.energy_saving, 1),
                         _num(p.system_energy_saving) if front.system_accelerator else "-", p.drop_text(),
                         p.held_out_text(), index.get(p.key, "-")])
    return "<h3>Best saving at each drop level</h3>" + _table(
        ["max drop", "multiplier energy saved %", "system energy saved %", "measured drop ± s.e.",
         "held-out drop ± s.e.", "front #"], rows)


def _points(folder: "StudyFolder", front: Front, system: Any) -> str:
    """One collapsible table per front point: each layer's design and energy."""
    if not front.points:
        return ""
    config = folder.config
    energy = per_product_energy(folder)
    designs = {d["name"]: d for d in folder.designs}
    exact = folder.designs[0]["name"]
    out = []
    for i, p in enumerate(front.points):
        system_rows = {r["layer"]: r for r in system.breakdown(p.assignment)} if system is not None else {}
        levels = list(dict.fromkeys(lv for r in system_rows.values() for lv in r["memory_pj"]))
        header = ["layer", "MACs", "design", "compensation", "energy / product (exact = 1)", "multiplier pJ", "MAC pJ"]
        header += (["system: multiplier pJ", "adder pJ", *(f"{lv} pJ" for lv in levels), "total pJ"]
                   if system_rows else [])
        rows, totals = [], [0.0] * (len(header) - 5)
        for layer in folder.layers:
            name = layer["name"]
            design = p.assignment.get(name, exact)
            product, relative, _ = energy(name, designs[design])
            multiplier = layer["macs"] * product * config.objectives.multiply_pj
            mac = multiplier + layer["macs"] * config.objectives.accumulate_pj
            values = [multiplier, mac]
            if system_rows:
                r = system_rows[name]
                values += [r["multiplier_pj"], r["adder_pj"], *(r["memory_pj"].get(lv, 0.0) for lv in levels),
                           r["total_pj"]]
            compensation = layer_compensation(p.compensation, name) if name in p.assignment else "none"
            rows.append([name, f"{layer['macs']:,}", design, compensation, f"{relative:.3f}", *map(_pj, values)])
            totals = [t + v for t, v in zip(totals, values)]
        rows.append(["total", f"{sum(layer['macs'] for layer in folder.layers):,}", "", "", "",
                     *map(_pj, totals)])
        saving = f"{p.energy_saving:.1f}% multiplier, {p.mac_saving:.1f}% MAC energy saved"
        if p.system_energy_saving is not None:
            saving += f", {p.system_energy_saving:.2f}% of the whole accelerator's ({front.system_accelerator})"
        out.append(f"<details{' open' if i == 0 else ''}><summary>Front point {i}: {_e(saving)}; drop "
                   f"{_e(p.drop_text())} (held out {_e(p.held_out_text())})</summary>"
                   + _table(header, rows, left=(0, 2, 3), total=True) + "</details>")
    note = (f"Energy per image (pJ). Multiplier: MACs x the design's energy per product x {config.objectives.multiply_pj:g} "
            f"pJ; MAC adds a {config.objectives.accumulate_pj:g} pJ accumulator add per MAC (45 nm, Horowitz ISSCC 2014).")
    if system is not None:
        note += (f" System: ZigZag's lowest-energy mapping of each layer on {system.accelerator}: its MAC energy split "
                 f"{system.share:.2f} : {1 - system.share:.2f} between multiplier and adder, the multiplier's part "
                 "scaled by the layer's design, plus the reads and writes of every memory level.")
    return "\n".join(out) + f'<p class="note">{_e(note)}</p>'


def _measured_note(front: Front) -> str:
    predicted = [p for p in front.measured if p.predicted_drop is not None]
    return (f'<p class="note">{len(predicted)} of {len(front.measured)} measured assignments had a prediction (calibration '
            "points are measured before the drop map exists); the dashed line is measured = predicted. "
            f"{_e(prediction_fidelity(front).text())}.</p>")


def _designs(folder: "StudyFolder", used: Sequence[str]) -> str:
    """The designs of the front with their error statistics (uniform operands) and cost."""
    records = {d["name"]: d for d in folder.designs}
    stats = _statistics(folder, used)
    header = ["design", "family", "signed", "cost method", "area", "energy", "bias", "error std", "MAE", "MRED %",
              "WCE", "error rate %", "parameters", "cost source"]
    rows = []
    for name in used:
        d = records[name]
        s = stats.get(name, {})
        rows.append([name, d["family"], "yes" if d["signed"] else "no", d["cost_method"], _num(d["area"], 3),
                     _num(d["energy"], 3), _num(s.get("mean_error"), 1), _num(s.get("error_std"), 1),
                     _num(s.get("mae"), 1), _num(None if "mred" not in s else 100 * s["mred"], 2),
                     _num(s.get("wce"), 0), _num(None if "error_rate" not in s else 100 * s["error_rate"], 1),
                     ", ".join(f"{k}={v}" for k, v in d["params"].items()) or "-", d.get("cost_source", "")])
    note = ("Errors under uniform operands, in product units (MRED and error rate in %); area and energy relative to "
            "the exact multiplier of the same signedness, by the study's cost method.")
    if len(stats) < len(used):
        note += " Error statistics are missing where the study's designs could not be rebuilt (an import moved?)."
    return _table(header, rows, left=(0, 1, 3, 12, 13)) + f'<p class="note">{_e(note)}</p>'


def _statistics(folder: "StudyFolder", names: Sequence[str]) -> dict[str, dict[str, float]]:
    """Uniform-operand error statistics of the named designs (rebuilt from the zoo; {} where that fails)."""
    from multipliers import Zoo, error_statistics

    try:
        zoo = Zoo.default(list(folder.config.multipliers.imports))
    except Exception as error:  # noqa: BLE001 - a moved import: the report still renders
        logger.warning("cannot rebuild the study's designs (%s): no error statistics in the report", error)
        return {}
    sha = {d["name"]: d["lut_sha256"] for d in folder.designs}
    found = [zoo[n] for n in names if n in zoo and zoo[n].lut_sha256 == sha.get(n)]
    if not found:
        return {}
    stats = error_statistics(found)
    return {m.name: stats.record(i) for i, m in enumerate(found)}


def _settings(folder: "StudyFolder") -> str:
    rows = []
    for table, keys in folder.config.as_dict().items():
        for key, value in keys.items():
            shown = ", ".join(map(str, value)) if isinstance(value, list) else value
            rows.append([f"{table}.{key}", "" if shown in ("", None, {}) else shown])
    return _table(["key", "value"], rows, left=(0, 1)) + (
        f'<p class="note">Storage: {_e(folder.storage)}. The study file as run is <code>study.toml</code> in the '
        "study folder.</p>")


__all__ = ["study_report"]

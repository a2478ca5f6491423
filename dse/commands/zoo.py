"""``dse zoo``: list the multiplier zoo, show one design, write its LUT or error heat map."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..output import atomic_write_bytes, format_table


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dse zoo list``, ``show``, ``verilog`` and ``synth``."""
    zoo = subparsers.add_parser("zoo", help="the multiplier zoo: list designs, show one")
    commands = zoo.add_subparsers(dest="zoo_command", metavar="ZOO_COMMAND")
    zoo.set_defaults(handler=lambda args: (zoo.print_help(sys.stderr), 2)[1])

    listing = commands.add_parser("list", help="table of every design: error statistics and relative cost")
    listing.add_argument("--family", action="append", default=[], help="only this family (repeatable)")
    sign = listing.add_mutually_exclusive_group()
    sign.add_argument("--signed", dest="signed", action="store_const", const=True, default=None, help="signed designs only")
    sign.add_argument("--unsigned", dest="signed", action="store_const", const=False, help="unsigned designs only")
    _add_import(listing)
    listing.add_argument("--json", action="store_true", help="print a JSON array instead of a table")
    listing.set_defaults(handler=list_command)

    show = commands.add_parser("show", help="one design's statistics; error heat map and LUT on request")
    show.add_argument("name", help="design name (see `dse zoo list`)")
    _add_import(show)
    show.add_argument("--plot", type=Path, help="write a heat map of the error table to this PNG file")
    show.add_argument("--lut", type=Path, help="write the LUT to this .npy file")
    show.add_argument("--json", action="store_true", help="print the record as JSON")
    show.set_defaults(handler=show_command)

    verilog = commands.add_parser("verilog", help="write a design's synthesisable Verilog module")
    verilog.add_argument("name", help="design name (see `dse zoo list`)")
    _add_import(verilog)
    verilog.add_argument("--out", type=Path, default=Path("."), help="folder to write NAME.v into (default: .)")
    verilog.add_argument("--check", action="store_true",
                         help="also simulate all 65,536 operand pairs against the LUT (needs Icarus Verilog)")
    verilog.set_defaults(handler=verilog_command)

    synth = commands.add_parser("synth", help="synthesise a design with Yosys: area, depth, activity energy")
    synth.add_argument("name", help="design name (see `dse zoo list`)")
    _add_import(synth)
    synth.add_argument("--no-cache", action="store_true", help="synthesise again even when a cached result exists")
    synth.add_argument("--json", action="store_true", help="print the result as JSON")
    synth.set_defaults(handler=synth_command)


def _add_import(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--import", dest="imports", action="append", default=[], metavar="PATH",
        help="also import designs from a LUT folder or metadata file, or from their Verilog (a .v file or a folder "
        "of them; needs Yosys) (repeatable)",
    )


def load_zoo(imports: list[str]):
    """The default zoo plus imports, with import mistakes as user errors."""
    from multipliers import ImportDesignError, Zoo

    try:
        return Zoo.default(imports)
    except (ImportDesignError, ValueError) as error:
        raise UserError(str(error)) from None


def zoo_records(multipliers) -> list[dict[str, Any]]:
    """One JSON-ready record per design: identity, uniform-operand error statistics, cost."""
    from multipliers import error_statistics

    stats = error_statistics(multipliers)
    records = []
    for index, m in enumerate(multipliers):
        s = stats.record(index)
        try:
            cost = m.cost()
            area, energy, method = cost.area, cost.energy, cost.method
        except KeyError:
            area = energy = None
            method = None
        records.append(
            {
                "name": m.name,
                "family": m.family,
                "params": dict(m.params),
                "signed": m.signed,
                "bits": m.bits,
                **s,
                "area": area,
                "energy": energy,
                "cost_method": method,
            }
        )
    return records


def _num(value: float | None) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def list_command(args: argparse.Namespace) -> int:
    """Print the zoo (or a filtered part of it) as a table or JSON."""
    zoo = load_zoo(args.imports)
    try:
        selected = list(zoo.select(families=args.family or None, signed=args.signed))
    except KeyError as error:
        raise UserError(str(error)) from None
    records = zoo_records(selected)
    if args.json:
        print(json.dumps(records, indent=1))
        return 0
    header = ["name", "family", "signed", "bias", "err std", "MAE", "MRED %", "WCE", "area", "energy", "cost"]
    rows = [
        [
            r["name"], r["family"], "s" if r["signed"] else "u",
            _num(r["mean_error"]), _num(r["error_std"]), _num(r["mae"]), _num(100 * r["mred"]),
            _num(r["wce"]), _num(r["area"]), _num(r["energy"]), r["cost_method"] or "-",
        ]
        for r in records
    ]
    print(format_table(header, rows, align="llcrrrrrrrl"))
    print(f"{len(records)} designs; errors under uniform operands in product units (MRED in %); "
          "area and energy relative to the exact multiplier of the same signedness")
    return 0


def show_command(args: argparse.Namespace) -> int:
    """Print one design's statistics; write its error heat map and LUT when asked."""
    zoo = load_zoo(args.imports)
    try:
        m = zoo[args.name]
    except KeyError as error:
        raise UserError(str(error)) from None
    record = zoo_records([m])[0]
    record["lut_sha256"] = m.lut_sha256
    record["output_width"] = m.output_width
    record["costs"] = {k: {"area": c.area, "energy": c.energy, "delay": c.delay, **c.absolute, "source": c.source}
                       for k, c in m.costs.items()}
    record["source"] = m.source
    if args.lut:
        import io

        import numpy as np

        buffer = io.BytesIO()
        np.save(buffer, m.lut)
        atomic_write_bytes(args.lut, buffer.getvalue())
    if args.plot:
        from ..plots import error_heatmap

        atomic_write_bytes(args.plot, error_heatmap(m))
    if args.json:
        print(json.dumps(record, indent=1))
    else:
        width = max(len(k) for k in record)
        for key, value in record.items():
            shown = _num(value) if isinstance(value, float) else value
            print(f"{key:<{width}}  {shown}")
    for path, what in ((args.lut, "LUT"), (args.plot, "error heat map")):
        if path:
            print(f"wrote {what} to {path}", file=sys.stderr)
    return 0


def _design(args: argparse.Namespace):
    """The design named on the command line, unknown names as user errors."""
    zoo = load_zoo(args.imports)
    try:
        return zoo[args.name]
    except KeyError as error:
        raise UserError(str(error)) from None


def verilog_command(args: argparse.Namespace) -> int:
    """Write NAME.v; with --check, verify it against the LUT by exhaustive simulation."""
    from multipliers.hardware.tools import ToolNotFoundError
    from multipliers.hardware.verilog import is_structural, verilog_module

    from ..output import atomic_write_text

    m = _design(args)
    path = args.out / f"{m.name}.v"
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, verilog_module(m))
    kind = "structural" if is_structural(m) else "behavioural table"
    print(f"wrote {kind} Verilog of {m.name} to {path}", file=sys.stderr)
    if args.check:
        from multipliers.hardware.simulate import check_equivalence

        try:
            (result,) = check_equivalence([m], jobs=1)
        except ToolNotFoundError as error:
            raise UserError(str(error)) from None
        if not result.passed:
            print(f"FAIL {m.name}: {result.mismatches} of 65536 operand pairs differ ({result.first})")
            return 1
        print(f"PASS {m.name}: all 65536 operand pairs match the LUT")
    return 0


def synth_command(args: argparse.Namespace) -> int:
    """Synthesise one design; print its area, cells, depth and activity energy (uniform operands)."""
    from multipliers.hardware.activity import activity_energy
    from multipliers.hardware.precomputed import reference_design
    from multipliers.hardware.synthesis import SynthesisError, synthesize
    from multipliers.hardware.tools import ToolNotFoundError

    m = _design(args)
    try:
        result = synthesize(m, use_cache=not args.no_cache)
        reference = synthesize(reference_design(m.signed))
        energy = activity_energy(m)
    except (ToolNotFoundError, SynthesisError) as error:
        raise UserError(str(error).splitlines()[0]) from None
    record = {
        **result.summary(), "family": m.family, "signed": m.signed,
        "energy_per_op": energy.energy, "energy_pj": energy.pj,
        "relative": {"area": result.transistors / reference.transistors, "energy": energy.relative,
                     "delay": result.depth / reference.depth},
    }
    if args.json:
        print(json.dumps(record, indent=1))
        return 0
    rel = record["relative"]
    print(f"{m.name}: {result.transistors} transistors in {result.cell_count} cells, logic depth {result.depth}, "
          f"{energy.pj:.3f} pJ per multiplication (uniform operands)")
    print(f"relative to {reference.name}: area {rel['area']:.3f}, energy {rel['energy']:.3f}, delay {rel['delay']:.3f}")
    print("cells: " + ", ".join(f"{k} {v}" for k, v in result.cells.items()))
    print(f"tool: {result.tool}")
    return 0

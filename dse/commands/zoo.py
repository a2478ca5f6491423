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
    """Add ``dse zoo list`` and ``dse zoo show``."""
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


def _add_import(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--import", dest="imports", action="append", default=[], metavar="PATH",
        help="also import designs from a LUT folder or metadata file (repeatable)",
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

"""A small generic static-CMOS cell library whose area unit is the transistor.

Each cell has its textbook static CMOS transistor count (INV 2, NAND2/NOR2 4, AND2/OR2 6 as
NAND/NOR plus inverter, AOI21/OAI21 6, AOI22/OAI22 8, XOR2/XNOR2 12, MUX2 12, BUF 4), a
capacitance proxy per input pin (transistor gates it drives: 2 for a simple gate input, 4 for an
XOR input or a multiplexer select, which also feed an internal inverter) and an internal
capacitance switched when its output toggles (the inner node of two-stage cells). The same table
gives Yosys/ABC a Liberty file to map onto and the activity simulator each cell's function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Fn = Callable[..., np.ndarray]

#: Capacitance proxy of a primary output's load (a register's data input), in transistor gates.
OUTPUT_LOAD = 4.0
#: Capacitance proxy of a cell's own output node (the drains of its output stage).
OUTPUT_PARASITIC = 2.0


@dataclass(frozen=True)
class Cell:
    """One library cell: pins, Liberty function, numpy evaluation on packed bits, and cost proxies."""

    name: str
    inputs: tuple[str, ...]
    function: str
    evaluate: Fn
    transistors: int
    pin_cap: dict[str, float]
    internal_cap: float = 0.0


def _cell(name: str, inputs: str, function: str, evaluate: Fn, transistors: int,
          cap: float = 2.0, internal: float = 0.0, **pin_caps: float) -> Cell:
    pins = tuple(inputs)
    return Cell(name, pins, function, evaluate, transistors, {p: pin_caps.get(p, cap) for p in pins}, internal)


CELLS: dict[str, Cell] = {c.name: c for c in (
    _cell("BUF", "A", "A", lambda a: a.copy(), 4, internal=2.0),
    _cell("INV", "A", "(!A)", lambda a: ~a, 2),
    _cell("NAND2", "AB", "(!(A&B))", lambda a, b: ~(a & b), 4),
    _cell("NOR2", "AB", "(!(A|B))", lambda a, b: ~(a | b), 4),
    _cell("AND2", "AB", "(A&B)", lambda a, b: a & b, 6, internal=4.0),
    _cell("OR2", "AB", "(A|B)", lambda a, b: a | b, 6, internal=4.0),
    _cell("NAND3", "ABC", "(!(A&B&C))", lambda a, b, c: ~(a & b & c), 6),
    _cell("NOR3", "ABC", "(!(A|B|C))", lambda a, b, c: ~(a | b | c), 6),
    _cell("AOI21", "ABC", "(!((A&B)|C))", lambda a, b, c: ~((a & b) | c), 6),
    _cell("OAI21", "ABC", "(!((A|B)&C))", lambda a, b, c: ~((a | b) & c), 6),
    _cell("AOI22", "ABCD", "(!((A&B)|(C&D)))", lambda a, b, c, d: ~((a & b) | (c & d)), 8),
    _cell("OAI22", "ABCD", "(!((A|B)&(C|D)))", lambda a, b, c, d: ~((a | b) & (c | d)), 8),
    _cell("XOR2", "AB", "(A^B)", lambda a, b: a ^ b, 12, cap=4.0, internal=4.0),
    _cell("XNOR2", "AB", "(!(A^B))", lambda a, b: ~(a ^ b), 12, cap=4.0, internal=4.0),
    _cell("MUX2", "ABS", "((A&!S)|(B&S))", lambda a, b, s: (a & ~s) | (b & s), 12, internal=4.0, S=4.0),
)}

LIBRARY_NAME = "axm_generic_transistors"


def liberty_text() -> str:
    """The library as a Liberty file: area = transistor count, pin capacitance = the proxy above."""
    lines = [f"library({LIBRARY_NAME}) {{", '  delay_model : table_lookup;', '  capacitive_load_unit (1, ff);']
    for cell in CELLS.values():
        lines += [f"  cell({cell.name}) {{", f"    area : {cell.transistors};"]
        for pin in cell.inputs:
            lines += [f"    pin({pin}) {{ direction : input; capacitance : {cell.pin_cap[pin]}; }}"]
        lines += [f'    pin(Y) {{ direction : output; function : "{cell.function}"; }}', "  }"]
    lines.append("}")
    return "\n".join(lines) + "\n"

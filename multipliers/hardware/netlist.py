"""Gate-level netlists of synthesised designs: parsed from Yosys JSON, topologically ordered, evaluated in numpy.

Nets are numbered 0..n-1; net 0 is constant 0 and net 1 constant 1. Values are packed bits (one
bit per operand pair of a stream), so one numpy operation evaluates all cells of a type on
thousands of operand pairs at once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .liberty import CELLS, OUTPUT_LOAD, OUTPUT_PARASITIC

CONST0, CONST1 = 0, 1


@dataclass(frozen=True)
class GateNetlist:
    """A combinational netlist: operand input nets, output nets, cells in topological order."""

    a: tuple[int, ...]
    b: tuple[int, ...]
    p: tuple[int, ...]
    cells: tuple[tuple[str, tuple[int, ...], int], ...]  # (cell type, input nets, output net)
    nets: int

    @classmethod
    def from_yosys(cls, document: Mapping[str, Any], top: str) -> "GateNetlist":
        """Read module ``top`` of a Yosys ``write_json`` document."""
        module = document["modules"][top]
        index: dict[Any, int] = {"0": CONST0, "1": CONST1, "x": CONST0, "z": CONST0}

        def net(bit: Any) -> int:
            if bit not in index:
                index[bit] = len(index) - 2  # four constant spellings share nets 0 and 1
            return index[bit]

        ports = {name: tuple(net(bit) for bit in port["bits"]) for name, port in module["ports"].items()}
        raw = []
        for cell in module["cells"].values():
            kind = cell["type"]
            if kind not in CELLS:
                raise ValueError(f"{top}: cell type {kind!r} is not in the generic library")
            conn = cell["connections"]
            raw.append((kind, tuple(net(conn[pin][0]) for pin in CELLS[kind].inputs), net(conn["Y"][0])))
        return cls(ports["a"], ports["b"], ports["p"], _topological(raw, set(ports["a"] + ports["b"])), len(index) - 2)

    # -- serialisation ----------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """A compact JSON-ready form."""
        return {"a": list(self.a), "b": list(self.b), "p": list(self.p), "nets": self.nets,
                "cells": [[kind, list(ins), out] for kind, ins, out in self.cells]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "GateNetlist":
        """Inverse of :meth:`to_json`."""
        cells = tuple((kind, tuple(ins), int(out)) for kind, ins, out in data["cells"])
        return cls(tuple(data["a"]), tuple(data["b"]), tuple(data["p"]), cells, int(data["nets"]))

    # -- structure --------------------------------------------------------------------------
    def cell_counts(self) -> dict[str, int]:
        """Number of cells of each type."""
        counts: dict[str, int] = defaultdict(int)
        for kind, _, _ in self.cells:
            counts[kind] += 1
        return dict(sorted(counts.items()))

    @property
    def transistors(self) -> int:
        """Area: the cells' transistor counts summed."""
        return sum(CELLS[kind].transistors for kind, _, _ in self.cells)

    @property
    def depth(self) -> int:
        """Logic depth: cells on the longest input-to-output path (the delay proxy)."""
        level = np.zeros(self.nets, dtype=np.int64)
        for _, ins, out in self.cells:
            level[out] = 1 + max(level[i] for i in ins)
        return int(max((level[n] for n in self.p), default=0))

    def capacitance(self) -> np.ndarray:
        """Capacitance proxy per net: fan-out pin loads, the driver's output node, output-port loads."""
        cap = np.zeros(self.nets)
        for kind, ins, out in self.cells:
            cell = CELLS[kind]
            for pin, net in zip(cell.inputs, ins):
                cap[net] += cell.pin_cap[pin]
            cap[out] += OUTPUT_PARASITIC
        for net in self.p:
            cap[net] += OUTPUT_LOAD
        cap[[CONST0, CONST1]] = 0.0
        return cap

    def internal_capacitance(self) -> np.ndarray:
        """Per net, the internal capacitance its driving cell switches with each output toggle."""
        cap = np.zeros(self.nets)
        for kind, _, out in self.cells:
            cap[out] += CELLS[kind].internal_cap
        return cap

    def groups(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """Cells grouped by type: (type, input nets (cells, pins), output nets) for vectorised evaluation."""
        by_type: dict[str, list] = defaultdict(list)
        for kind, ins, out in self.cells:
            by_type[kind].append((ins, out))
        return [(kind, np.array([i for i, _ in items], dtype=np.int64).reshape(len(items), -1),
                 np.array([o for _, o in items], dtype=np.int64)) for kind, items in by_type.items()]


def _topological(cells: list[tuple[str, tuple[int, ...], int]], inputs: set[int]) -> tuple:
    """Order cells so that every cell comes after the drivers of its inputs."""
    driver = {out: k for k, (_, _, out) in enumerate(cells)}
    order: list[int] = []
    state = [0] * len(cells)  # 0 new, 1 on the stack, 2 done
    for start in range(len(cells)):
        stack = [(start, 0)]
        while stack:
            k, pin = stack.pop()
            if state[k] == 2:
                continue
            state[k] = 1
            ins = cells[k][1]
            while pin < len(ins) and (ins[pin] not in driver or state[driver[ins[pin]]] == 2):
                pin += 1
            if pin == len(ins):
                state[k] = 2
                order.append(k)
                continue
            nxt = driver[ins[pin]]
            if state[nxt] == 1:
                raise ValueError("combinational loop in netlist")
            stack += [(k, pin + 1), (nxt, 0)]
    return tuple(cells[k] for k in order)

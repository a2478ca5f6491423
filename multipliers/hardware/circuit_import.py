"""Designs imported from their Verilog: LUT by exhaustive simulation of the circuit, cost by the project's synthesis flow.

For each file (:class:`CircuitRequest`):

1. **Read.** Yosys reads it (``read_verilog; hierarchy -check; proc; flatten; check -assert``): a file that
   does not parse, instantiates a module it does not define, or whose logic has a combinational loop (or
   another problem Yosys' ``check`` reports: a net with several drivers, one used but never driven) is refused.
2. **The multiplier module** has exactly two 8-bit inputs and a 16-bit output: the one the metadata names,
   else the only such module, else the one named like the file. **Ports**: the metadata's (activation,
   weight, product), else ``A, B, O`` or ``a, b, p`` in any case, ``A``/``a`` the activation (the LUT's row).
3. **Signedness**: the metadata's ``signed``, else ``signed`` declarations of both input ports, else the
   EvoApprox8b library's naming convention: a module (or file) named ``mul8s_*`` is signed (two's complement
   operands and product), ``mul8u_*`` unsigned. Anything else is refused: the LUT's indexing depends on it.
4. **Synthesis and simulation.** The circuit behind the zoo's wrapper (:mod:`.verilog.imported`) goes
   through the flow of the built-in designs (:mod:`.synthesis`: Yosys + ABC onto the generic transistor
   library); the gate netlist, simulated in numpy on all 65,536 operand pairs (:func:`.activity.netlist_table`),
   is the design's LUT. Its transistors, logic depth and activity energy under uniform operands, relative to
   the exact multiplier of its signedness through the same flow, are its ``synthesised`` cost; the same
   netlist gives its activity energy under a layer's operands (:func:`.activity.activity_energy`).

Results are cached on disk (:mod:`.cache`, kind ``circuit-import``), keyed by the file's text, what the
metadata says about it, the flow, the library and the Yosys version, so a study's worker processes and a
rerun import a folder of circuits without running Yosys again; the netlist also lands in the synthesis cache.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import os
import re
import subprocess
import tempfile
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .._record import NAME_PATTERN, CircuitSource, InvalidDesignError, Multiplier
from ..importing import ImportDesignError, library_signedness
from . import cache
from .precomputed import relative_cost
from .activity import DEFAULT_SAMPLES, netlist_table, stream_energy
from .liberty import liberty_text
from .synthesis import SCRIPT, SynthesisError, SynthesisResult, cache_key, run_yosys, tool_version
from .tools import ToolNotFoundError, yosys
from .verilog.imported import PRODUCT_BITS, circuit_module

log = logging.getLogger(__name__)

#: Bumped whenever an import's result changes for the same inputs.
IMPORT_VERSION = 1
METHOD = "synthesised"
SEED = 0
#: Port names recognised without metadata, lowercased: (activation, weight, product).
COMMON_PORTS = (("a", "b", "o"), ("a", "b", "p"))
READ_SCRIPT = """read_verilog circuit.v
hierarchy -check
proc
flatten
check -assert
write_json parsed.json
"""
LIBRARY_SOURCE = "EvoApprox8b (Mrazek et al., DATE 2017)"


@dataclass(frozen=True)
class CircuitRequest:
    """One Verilog file to import, with what its metadata file says (None: find out from the file)."""

    path: Path
    name: str | None = None
    module: str | None = None
    ports: tuple[str, str, str] | None = None  # activation, weight, product
    signed: bool | None = None
    family: str | None = None
    source: str | None = None


def import_circuits(requests: Sequence[CircuitRequest], jobs: int | None = None) -> list[Multiplier]:
    """Designs from Verilog files, in order; the first bad file raises :class:`ImportDesignError` (nothing is returned)."""
    requests = list(requests)
    if not requests:
        return []
    try:
        tool = tool_version()
    except (ToolNotFoundError, subprocess.CalledProcessError, OSError) as error:
        raise ImportDesignError(f"{requests[0].path}: cannot synthesise the circuit: {error}") from None
    jobs = max(1, min(len(requests), jobs or os.cpu_count() or 1))
    if jobs == 1:
        return [_import_one(r, tool) for r in requests]
    with ThreadPoolExecutor(jobs) as pool:
        return list(pool.map(lambda r: _import_one(r, tool), requests))


def header_figures(text: str) -> dict[str, float]:
    """``// KEY = value [unit]`` lines before the first module (EvoApprox8b's published metrics), keys lowercased."""
    head = re.split(r"^\s*(?:module|macromodule)\b", text, maxsplit=1, flags=re.M)[0]
    figures = {}
    for key, value in re.findall(r"//\s*([A-Za-z0-9_%]+)\s*=\s*([-+]?[0-9.]+(?:[eE][-+]?[0-9]+)?)", head):
        try:
            figures[key.lower()] = float(value)
        except ValueError:
            continue
    return figures


# -- one file -------------------------------------------------------------------------------------
def _import_one(request: CircuitRequest, tool: str) -> Multiplier:
    path = request.path
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ImportDesignError(f"{path}: cannot read: {error}") from None
    key = _key(request, text, tool)
    hit = cache.load("circuit-import", key)
    if hit is not None and hit.get("version") == IMPORT_VERSION:
        log.debug("circuit import cache hit for %s", path)
        return _design(request, text, hit, tool)
    record = _characterise(request, text, tool)
    cache.store("circuit-import", key, record)
    return _design(request, text, record, tool)


def _key(request: CircuitRequest, text: str, tool: str) -> str:
    said = [request.name, request.module, request.ports, request.signed, request.family, request.source, request.path.name]
    h = hashlib.sha256(json.dumps([IMPORT_VERSION, said, SCRIPT, tool, DEFAULT_SAMPLES, SEED]).encode())
    for part in (text, liberty_text()):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()


def _characterise(request: CircuitRequest, text: str, tool: str) -> dict[str, Any]:
    """Read, choose the module, synthesise and simulate one circuit: the cache record."""
    path = request.path
    modules = _read(path, text)
    module, ports = _choose_module(request, modules)
    signed = _signedness(request, module, modules[module], ports)
    name = request.name or _default_name(path, module)
    family = request.family or ("evoapprox" if library_signedness(name) is not None else "imported")
    source = request.source or _default_source(path, module, family)
    circuit = CircuitSource(str(path), text, module, *ports)
    verilog = circuit_module(circuit, name, signed, source)
    try:
        netlist = run_yosys(verilog, name)
    except SynthesisError as error:
        raise ImportDesignError(f"{path}: synthesis failed: {_first_error(str(error))}") from None
    except ValueError as error:  # a cell outside the library, a loop the check let through
        raise ImportDesignError(f"{path}: {error}") from None
    lut = netlist_table(netlist, signed)
    try:
        design = Multiplier(name, family, signed, lut, source=source, circuit=circuit)
    except InvalidDesignError as error:
        raise ImportDesignError(f"{path}: {error}") from None
    result = SynthesisResult(name, design.lut_sha256, tool, netlist)
    cache.store("synthesis", cache_key(verilog), result.to_json())  # what synthesize(design) looks up
    energy, functional = stream_energy(netlist, signed, None, None, DEFAULT_SAMPLES, SEED, True)
    packed = base64.b64encode(zlib.compress(np.ascontiguousarray(lut, dtype="<i4").tobytes(), 6)).decode("ascii")
    return {"version": IMPORT_VERSION, "name": name, "family": family, "source": source, "module": module,
            "ports": list(ports), "signed": signed, "lut": packed, **result.summary(),
            "energy": energy, "functional_energy": functional}


def _design(request: CircuitRequest, text: str, record: dict[str, Any], tool: str) -> Multiplier:
    """The design of a cache record, with its synthesised cost relative to the exact multiplier's."""
    lut = np.frombuffer(zlib.decompress(base64.b64decode(record["lut"])), dtype="<i4").reshape(256, 256)
    signed = bool(record["signed"])
    circuit = CircuitSource(str(request.path), text, record["module"], *record["ports"])
    cost = relative_cost(record, _reference(signed, tool), f"its circuit ({request.path.name}) through {tool}", METHOD)
    try:
        return Multiplier(record["name"], record["family"], signed, lut, costs={METHOD: cost}, source=record["source"],
                          circuit=circuit)
    except InvalidDesignError as error:
        raise ImportDesignError(f"{request.path}: {error}") from None


_REFERENCE_LOCK = threading.Lock()


def _reference(signed: bool, tool: str) -> dict[str, float]:
    """Transistors, depth and uniform-operand energy of the exact multiplier through the same flow and tool."""
    with _REFERENCE_LOCK:  # imports run in threads: synthesise the reference once
        return _reference_figures(signed, tool)


@functools.lru_cache(maxsize=4)
def _reference_figures(signed: bool, tool: str) -> dict[str, float]:
    from .precomputed import cost_table, netlist_of, reference_design

    table = cost_table()
    shipped = table.get("reference", {}).get("signed" if signed else "unsigned")
    if shipped and table.get("tool") == tool and table.get("samples") == DEFAULT_SAMPLES and table.get("seed") == SEED:
        return shipped
    from .synthesis import synthesize

    exact = reference_design(signed)
    result = synthesize(exact)
    energy, _ = stream_energy(netlist_of(exact), signed, None, None, DEFAULT_SAMPLES, SEED, True)
    return {"transistors": result.transistors, "depth": result.depth, "energy": energy}


# -- reading the file -------------------------------------------------------------------------------
def _read(path: Path, text: str) -> dict[str, dict[str, Any]]:
    """The file's modules as Yosys reads them (ports with direction, width, signedness), or a one-line refusal."""
    with tempfile.TemporaryDirectory(prefix="axm-read-") as tmp:
        folder = Path(tmp)
        (folder / "circuit.v").write_text(text, encoding="utf-8")
        (folder / "read.ys").write_text(READ_SCRIPT)
        try:
            done = subprocess.run([*yosys(), "-q", "-s", "read.ys"], cwd=folder, capture_output=True, text=True)
        except (ToolNotFoundError, OSError) as error:
            raise ImportDesignError(f"{path}: cannot read the circuit: {error}") from None
        output = (done.stdout + done.stderr).replace("circuit.v", path.name)
        if done.returncode:
            loop = re.search(r"found logic loop in module (\S+):", output)
            if loop:
                places = list(dict.fromkeys(re.findall(r"source: (\S+)", output[loop.end():])))[:4]
                where = f" ({', '.join(places)})" if places else ""
                raise ImportDesignError(f"{path}: combinational loop in module {loop.group(1).lstrip(chr(92))}{where}")
            raise ImportDesignError(f"{path}: does not parse as a circuit: {_first_error(output)}")
        document = json.loads((folder / "parsed.json").read_text())
    modules = {name.lstrip("\\"): module for name, module in document.get("modules", {}).items()
               if not module.get("attributes", {}).get("blackbox")}
    if not modules:
        raise ImportDesignError(f"{path}: declares no module")
    return modules


def _first_error(output: str) -> str:
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for marker in ("ERROR", "Warning"):
        found = next((ln for ln in lines if marker in ln), None)
        if found:
            return found
    return lines[-1] if lines else "no output"


def _shape(module: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(8-bit inputs, 16-bit outputs) when those are all the module's ports, else two empty lists."""
    ports = module.get("ports", {})
    inputs = [n for n, p in ports.items() if p["direction"] == "input" and len(p["bits"]) == 8]
    outputs = [n for n, p in ports.items() if p["direction"] == "output" and len(p["bits"]) == PRODUCT_BITS]
    if len(ports) == 3 and len(inputs) == 2 and len(outputs) == 1:
        return inputs, outputs
    return [], []


def _describe(name: str, module: dict[str, Any]) -> str:
    ports = ", ".join(f"{p['direction']} {n}[{len(p['bits'])}]" for n, p in module.get("ports", {}).items())
    return f"{name} ({ports or 'no ports'})"


def _choose_module(request: CircuitRequest, modules: dict[str, dict[str, Any]]) -> tuple[str, tuple[str, str, str]]:
    path = request.path
    wanted = "two 8-bit inputs and a 16-bit output"
    if request.module is not None:
        if request.module not in modules:
            raise ImportDesignError(f"{path}: no module {request.module!r} (modules: {', '.join(modules)})")
        if not _shape(modules[request.module])[0]:
            raise ImportDesignError(f"{path}: module {_describe(request.module, modules[request.module])} does not "
                                    f"have exactly {wanted}")
        chosen = request.module
    else:
        candidates = [n for n, m in modules.items() if _shape(m)[0]]
        if not candidates:
            shown = "; ".join(_describe(n, m) for n, m in list(modules.items())[:4])
            raise ImportDesignError(f"{path}: no module with {wanted} (found {shown})")
        named = [n for n in candidates if n.lower() == path.stem.lower()]
        if len(candidates) > 1 and not named:
            raise ImportDesignError(f"{path}: several modules have {wanted} ({', '.join(candidates)}): name the "
                                    "multiplier in a metadata file (module = ...)")
        chosen = named[0] if named else candidates[0]
    inputs, outputs = _shape(modules[chosen])
    return chosen, _ports(request, chosen, inputs, outputs)


def _ports(request: CircuitRequest, module: str, inputs: list[str], outputs: list[str]) -> tuple[str, str, str]:
    """(activation, weight, product) port names of the chosen module."""
    path = request.path
    if request.ports is not None:
        activation, weight, product = request.ports
        if sorted([activation, weight]) != sorted(inputs) or product != outputs[0]:
            raise ImportDesignError(f"{path}: the metadata's ports {activation}, {weight}, {product} are not module "
                                    f"{module}'s 8-bit inputs {', '.join(inputs)} and 16-bit output {outputs[0]}")
        return activation, weight, product
    by_lower = {n.lower(): n for n in [*inputs, *outputs]}
    for names in COMMON_PORTS:
        if set(by_lower) == set(names) and by_lower[names[2]] == outputs[0]:
            return by_lower[names[0]], by_lower[names[1]], by_lower[names[2]]
    raise ImportDesignError(f"{path}: module {module} has ports {', '.join([*inputs, *outputs])}: say which input is "
                            "the activation and which the weight in a metadata file (ports = {activation = ..., "
                            "weight = ..., product = ...}), or name them A, B, O or a, b, p")


def _signedness(request: CircuitRequest, module: str, record: dict[str, Any], ports: tuple[str, str, str]) -> bool:
    path = request.path
    declared = [bool(record["ports"][p].get("signed")) for p in ports[:2]]
    if request.signed is not None:
        if any(declared) and not request.signed:
            raise ImportDesignError(f"{path}: the metadata says unsigned but module {module} declares signed inputs")
        return request.signed
    if all(declared):
        return True
    if any(declared):
        raise ImportDesignError(f"{path}: module {module} declares only one input signed; operands of mixed "
                                "signedness are not supported")
    for name in (module, path.stem):
        convention = library_signedness(name.lower())
        if convention is not None:
            return convention
    raise ImportDesignError(f"{path}: cannot tell whether module {module} is signed: declare its inputs signed, "
                            "name it like EvoApprox8b (mul8s_* signed, mul8u_* unsigned), or say signed = true/false "
                            "in a metadata file")


def _default_name(path: Path, module: str) -> str:
    name = module.lower()
    if not NAME_PATTERN.match(name):
        raise ImportDesignError(f"{path}: module name {module!r} is not a zoo name ([a-z][a-z0-9_]*); give the "
                                "design a name in a metadata file")
    return name


def _default_source(path: Path, module: str, family: str) -> str:
    if family == "evoapprox":
        return f"{LIBRARY_SOURCE}, gate-level circuit {path.name}"
    return f"circuit {module} of {path.name}"

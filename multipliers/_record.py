"""The multiplier record: an immutable design whose LUT is the single source of truth."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping, Union

import numpy as np

ParamValue = Union[int, float, str, bool]

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*\Z")
BITS = 8
LUT_SHAPE = (1 << BITS, 1 << BITS)
#: Outputs may use one bit more than an exact 8x8 product (some designs overestimate).
UNSIGNED_OUTPUT_RANGE = (0, (1 << (2 * BITS + 1)) - 1)
SIGNED_OUTPUT_RANGE = (-(1 << (2 * BITS)), (1 << (2 * BITS)) - 1)

#: Preference order when a design carries several cost estimates: a design's own circuit synthesised by the
#: project's flow (imported from Verilog: same flow, library and reference as the built-in designs'
#: "synthesis" figures), then published figures (another flow and process), then the unit-gate estimate.
COST_METHOD_PREFERENCE = ("synthesised", "published", "synthesis", "unit-gate")
#: Cost methods of one flow under two names: the built-in designs' shipped "synthesis" figures and an imported
#: circuit's "synthesised" ones come from the same synthesis flow, library and reference, so asking for either
#: (a study's ``multipliers.cost_method``) takes the other where a design has only that one.
SAME_FLOW = {"synthesis": "synthesised", "synthesised": "synthesis"}


class InvalidDesignError(ValueError):
    """A multiplier record (or an imported table) is not a valid 8x8 design."""


def operand_values(signed: bool) -> np.ndarray:
    """Operand values in LUT index order: -128..127 for signed designs, 0..255 for unsigned."""
    return np.arange(-128, 128, dtype=np.int64) if signed else np.arange(256, dtype=np.int64)


def exact_lut(signed: bool) -> np.ndarray:
    """The exact product table, int32 (256, 256), indexed like every zoo LUT."""
    v = operand_values(signed)
    return np.multiply.outer(v, v).astype(np.int32)


@dataclass(frozen=True)
class HardwareCost:
    """One cost estimate of a design, relative to the exact multiplier of the same signedness.

    ``area`` and ``energy`` (per multiplication) are ratios (exact = 1.0); ``delay`` is a ratio
    too, where the method gives one. ``absolute`` holds the method's own figures with their units
    in the key (``area_um2``, ``power_mw``, ``delay_ns``, ``unit_gates`` ...), ``source`` says
    where they come from.
    """

    method: str
    area: float
    energy: float
    delay: float | None = None
    absolute: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    source: str = ""

    def __post_init__(self) -> None:
        for key in ("area", "energy"):
            value = getattr(self, key)
            if not (np.isfinite(value) and value >= 0):
                raise InvalidDesignError(f"cost {key} must be a finite non-negative ratio, got {value!r}")
        object.__setattr__(self, "absolute", MappingProxyType(dict(self.absolute)))


@dataclass(frozen=True)
class CircuitSource:
    """The Verilog a design was imported from: the file's text, the multiplier module and which port is which.

    ``activation`` drives the LUT's row, ``weight`` its column, ``product`` is the 16-bit output.
    """

    path: str
    text: str
    module: str
    activation: str
    weight: str
    product: str

    @property
    def sha256(self) -> str:
        """SHA-256 of the file's text: identifies the circuit as written."""
        return hashlib.sha256(self.text.encode()).hexdigest()


@dataclass(frozen=True, eq=False)
class Multiplier:
    """An 8x8 approximate multiplier.

    ``lut[i, j]`` is the product of operand values ``operand_values(signed)[i]`` (row: the
    activation) and ``operand_values(signed)[j]`` (column: the weight); for unsigned designs
    that is codes ``i, j`` in 0..255, for signed designs values ``i - 128, j - 128``.
    ``circuit`` is the Verilog of a design imported from its circuit (None for the others).
    """

    name: str
    family: str
    signed: bool
    lut: np.ndarray
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    costs: Mapping[str, HardwareCost] = field(default_factory=dict)
    bits: int = BITS
    source: str = ""
    circuit: CircuitSource | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not NAME_PATTERN.match(self.name):
            raise InvalidDesignError(
                f"multiplier name {self.name!r} must be a lowercase identifier matching [a-z][a-z0-9_]*"
            )
        if self.bits != BITS:
            raise InvalidDesignError(f"{self.name}: only {BITS}-bit multipliers are supported, got {self.bits}")
        lut = check_lut(np.asarray(self.lut), self.signed, what=self.name)
        lut = lut.astype(np.int32, copy=True)
        lut.setflags(write=False)
        object.__setattr__(self, "lut", lut)
        object.__setattr__(self, "signed", bool(self.signed))
        object.__setattr__(self, "params", MappingProxyType(dict(self.params)))
        object.__setattr__(self, "costs", MappingProxyType(dict(self.costs)))

    # -- behaviour -----------------------------------------------------------------------------
    @property
    def operands(self) -> np.ndarray:
        """Operand values in LUT index order."""
        return operand_values(self.signed)

    @property
    def error_table(self) -> np.ndarray:
        """``lut - exact`` as int64 (256, 256): the error e(a, w) of every operand pair."""
        return self.lut.astype(np.int64) - exact_lut(self.signed)

    def multiply(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Products of operand values ``a`` (rows) and ``b`` (columns), looked up in the LUT."""
        offset = 128 if self.signed else 0
        return self.lut[np.asarray(a) + offset, np.asarray(b) + offset]

    @property
    def is_exact(self) -> bool:
        """True when the LUT equals the exact product everywhere."""
        return bool(np.array_equal(self.lut, exact_lut(self.signed)))

    @property
    def output_width(self) -> int:
        """Bits needed for the output port (16 unless the design's outputs need more)."""
        lo, hi = int(self.lut.min()), int(self.lut.max())
        if self.signed:
            width = max(lo.bit_length() if lo < 0 else 0, hi.bit_length()) + 1
        else:
            width = hi.bit_length()
        return max(2 * BITS, width)

    @property
    def lut_sha256(self) -> str:
        """SHA-256 of the LUT as little-endian int32, row-major: identifies the behaviour."""
        return hashlib.sha256(self.lut.astype("<i4").tobytes()).hexdigest()

    # -- cost ----------------------------------------------------------------------------------
    def cost(self, method: str | None = None) -> HardwareCost:
        """The cost estimate by ``method``, or the most trusted one available."""
        if method is not None:
            for name in (method, SAME_FLOW.get(method)):
                if name in self.costs:
                    return self.costs[name]
            have = ", ".join(self.costs) or "none"
            raise KeyError(f"{self.name} has no {method!r} cost (has: {have})")
        for preferred in COST_METHOD_PREFERENCE:
            if preferred in self.costs:
                return self.costs[preferred]
        if self.costs:
            return next(iter(self.costs.values()))
        raise KeyError(f"{self.name} has no cost estimate")

    def with_cost(self, cost: HardwareCost) -> "Multiplier":
        """A copy carrying one more cost estimate (replacing one of the same method)."""
        costs = dict(self.costs)
        costs[cost.method] = cost
        return Multiplier(self.name, self.family, self.signed, self.lut, self.params, costs, self.bits, self.source,
                          self.circuit)

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self.params.items())
        kind = "signed" if self.signed else "unsigned"
        return f"Multiplier({self.name!r}, {self.family}, {kind}{', ' + params if params else ''})"


def check_lut(lut: np.ndarray, signed: bool, what: str = "table") -> np.ndarray:
    """Validate a candidate LUT (shape, integrality, finiteness, range); return it as int64."""
    if lut.shape != LUT_SHAPE:
        raise InvalidDesignError(f"{what}: LUT must have shape {LUT_SHAPE}, got {lut.shape}")
    if lut.dtype.kind == "f":
        if not np.all(np.isfinite(lut)):
            raise InvalidDesignError(f"{what}: LUT holds non-finite values")
        if not np.all(lut == np.round(lut)):
            raise InvalidDesignError(f"{what}: LUT holds non-integer values")
    elif lut.dtype.kind not in "iub":
        raise InvalidDesignError(f"{what}: LUT must hold integers, got dtype {lut.dtype}")
    values = lut.astype(np.int64)
    lo, hi = SIGNED_OUTPUT_RANGE if signed else UNSIGNED_OUTPUT_RANGE
    if values.min() < lo or values.max() > hi:
        kind = "signed" if signed else "unsigned"
        raise InvalidDesignError(
            f"{what}: values {values.min()}..{values.max()} are outside what an 8x8 {kind} "
            f"multiplier can output ({lo}..{hi})"
        )
    return values

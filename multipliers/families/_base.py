"""The family abstraction: a generator of parameterised, bit-accurately modelled designs."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, Iterator

import numpy as np

from .._record import Multiplier, ParamValue, operand_values
from ..unit_gate import GateCount, relative_cost, sign_magnitude_wrapper

BITS = 8


def bit(x: np.ndarray, i: int) -> np.ndarray:
    """Bit ``i`` of non-negative integers ``x`` (0 or 1, same shape)."""
    return (x >> i) & 1


def operand_grid(signed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Operand values as a broadcastable (256, 1) row operand and (1, 256) column operand."""
    v = operand_values(signed)
    return v[:, None], v[None, :]


def sign_magnitude(core: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """Signed LUT of a sign-magnitude design around an unsigned ``core(|a|, |b|)``.

    Magnitudes run 0..128 (|-128| = 128 still fits the 8-bit unsigned core); the product's sign
    is the XOR of the operand signs, applied to the core's output.
    """
    a, b = operand_grid(signed=True)
    magnitude = core(np.abs(a), np.abs(b))
    return np.where((a < 0) ^ (b < 0), -magnitude, magnitude)


def baugh_wooley_bits(a: np.ndarray, b: np.ndarray, bits: int = BITS):
    """Partial-product bits of a Baugh-Wooley signed array, as (i, j, bit-array) triples.

    Returns the bits and the constant to add (2^n + 2^(2n-1)); the sum of bits times
    2^(i+j) plus the constant, taken modulo 2^(2n) as two's complement, is the exact product.
    """
    ua, ub = a & ((1 << bits) - 1), b & ((1 << bits) - 1)
    top = bits - 1
    triples = []
    for i in range(bits):
        for j in range(bits):
            p = bit(ua, i) & bit(ub, j)
            if (i == top) != (j == top):
                p = 1 - p
            triples.append((i, j, p))
    return triples, (1 << bits) + (1 << (2 * bits - 1))


def wrap_signed(x: np.ndarray, width: int = 2 * BITS) -> np.ndarray:
    """Interpret the low ``width`` bits of ``x`` as a two's complement number."""
    x = x & ((1 << width) - 1)
    return np.where(x >= (1 << (width - 1)), x - (1 << width), x)


def array_product(signed: bool, kept: np.ndarray, constant: int = 0) -> np.ndarray:
    """LUT of an (unsigned or Baugh-Wooley) array keeping partial products ``kept[i, j]``.

    ``kept[i, j]`` is the bit of weight 2^(i+j) formed from bit i of the row operand (a) and
    bit j of the column operand (b); ``constant`` is added to the reduced sum (a correction).
    """
    a, b = operand_grid(signed)
    total = np.zeros((256, 256), dtype=np.int64)
    if signed:
        triples, bw_constant = baugh_wooley_bits(a, b)
        for i, j, p in triples:
            if kept[i, j]:
                total = total + (p << (i + j))
        return wrap_signed(total + bw_constant + constant)
    for i in range(BITS):
        for j in range(BITS):
            if kept[i, j]:
                total = total + ((bit(a, i) & bit(b, j)) << (i + j))
    return total + constant


class Family(ABC):
    """A family of designs: a bit-accurate model, its structure's cost and a default grid.

    Subclasses set ``name`` (a lowercase identifier), ``title`` and ``citation``, and implement
    :meth:`lut`, :meth:`structure` and :meth:`grid`. Their docstring cites the paper and states
    the algorithm in two or three lines.
    """

    name: str = ""
    title: str = ""
    citation: str = ""

    @abstractmethod
    def grid(self, signed: bool) -> list[dict[str, ParamValue]]:
        """Parameter sets of the designs this family contributes to the default zoo."""

    @abstractmethod
    def lut(self, signed: bool, **params: ParamValue) -> np.ndarray:
        """The bit-accurate LUT of one design (int64 (256, 256), indexed like ``Multiplier.lut``)."""

    @abstractmethod
    def structure(self, signed: bool, **params: ParamValue) -> GateCount:
        """The unit-gate count of the design's structure (see :mod:`multipliers.unit_gate`)."""

    def check_params(self, signed: bool, **params: ParamValue) -> None:
        """Raise ``ValueError`` with a clear message for parameters outside the family's range."""

    def design_name(self, signed: bool, **params: ParamValue) -> str:
        """Lowercase identifier of a design: family, ``s``/``u``, then the parameters."""
        parts = [self.name, "s" if signed else "u"]
        for key, value in params.items():
            if isinstance(value, bool):  # a flag shows as its key when set, not at all otherwise
                parts += [key] if value else []
            else:
                parts.append(f"{key}{_fmt(value)}")
        return "_".join(parts)

    def make(self, signed: bool, **params: ParamValue) -> Multiplier:
        """Build one design: its LUT from the bit-accurate model and its unit-gate cost."""
        self.check_params(signed, **params)
        lut = self.lut(signed, **params)
        circuit = self.structure(signed, **params)
        return Multiplier(
            name=self.design_name(signed, **params),
            family=self.name,
            signed=signed,
            lut=lut,
            params=params,
            costs={"unit-gate": relative_cost(circuit, signed)},
            source=self.citation,
        )

    def designs(self, signed: bool | None = None) -> Iterator[Multiplier]:
        """The family's default designs (both signednesses unless one is asked for)."""
        for s in (False, True) if signed is None else (signed,):
            for params in self.grid(s):
                yield self.make(s, **params)


class SignMagnitudeFamily(Family):
    """A family built around an unsigned core; signed designs wrap it in sign-magnitude logic."""

    @abstractmethod
    def core(self, a: np.ndarray, b: np.ndarray, **params: ParamValue) -> np.ndarray:
        """Unsigned products of non-negative operands ``a``, ``b`` (broadcasting int64 arrays)."""

    @abstractmethod
    def core_structure(self, **params: ParamValue) -> GateCount:
        """Unit-gate count of the unsigned core."""

    def lut(self, signed: bool, **params: ParamValue) -> np.ndarray:
        if signed:
            return sign_magnitude(lambda a, b: self.core(a, b, **params))
        a, b = operand_grid(signed=False)
        return self.core(a, b, **params)

    def structure(self, signed: bool, **params: ParamValue) -> GateCount:
        core = self.core_structure(**params)
        return sign_magnitude_wrapper().then(core) if signed else core


def _fmt(value: ParamValue) -> str:
    if isinstance(value, float):
        return f"{value:g}".replace(".", "p").replace("-", "m")
    return str(value).lower()


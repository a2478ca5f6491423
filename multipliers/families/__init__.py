"""Multiplier families: generators of parameterised, bit-accurately modelled designs.

Every family is a :class:`Family` subclass; :data:`FAMILIES` lists one instance of each, in
the order the zoo shows them. Look a family up by name with :func:`get_family`.
"""

from __future__ import annotations

from ._base import Family, SignMagnitudeFamily
from .exact import Exact
from .truncation import ColumnTruncation

FAMILIES: tuple[Family, ...] = (
    Exact(),
    ColumnTruncation(),
)


def get_family(name: str) -> Family:
    """The family called ``name``; an unknown name lists the valid ones."""
    for family in FAMILIES:
        if family.name == name:
            return family
    raise KeyError(f"unknown family {name!r}; families: {', '.join(f.name for f in FAMILIES)}")


__all__ = ["FAMILIES", "Family", "SignMagnitudeFamily", "get_family", "Exact", "ColumnTruncation"]

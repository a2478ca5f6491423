"""Multiplier families: generators of parameterised, bit-accurately modelled designs.

Every family is a :class:`Family` subclass; :data:`FAMILIES` lists one instance of each, in
the order the zoo shows them. Look a family up by name with :func:`get_family`.
"""

from __future__ import annotations

from ._base import Family, SignMagnitudeFamily
from .bam import BrokenArray
from .drum import Drum
from .etm import ErrorTolerant
from .exact import Exact
from .kulkarni import Kulkarni
from .mbm import MinimallyBiased
from .mitchell import Mitchell
from .operand_truncation import OperandTruncation
from .perforation import Perforation
from .roba import Roba
from .ssm import StaticSegment
from .truncation import ColumnTruncation

FAMILIES: tuple[Family, ...] = (
    Exact(),
    ColumnTruncation(),
    BrokenArray(),
    Perforation(),
    OperandTruncation(),
    Kulkarni(),
    ErrorTolerant(),
    StaticSegment(),
    Drum(),
    Mitchell(),
    MinimallyBiased(),
    Roba(),
)


def get_family(name: str) -> Family:
    """The family called ``name``; an unknown name lists the valid ones."""
    for family in FAMILIES:
        if family.name == name:
            return family
    raise KeyError(f"unknown family {name!r}; families: {', '.join(f.name for f in FAMILIES)}")


__all__ = [
    "FAMILIES",
    "Family",
    "SignMagnitudeFamily",
    "get_family",
    "Exact",
    "ColumnTruncation",
    "BrokenArray",
    "Perforation",
    "OperandTruncation",
    "Kulkarni",
    "ErrorTolerant",
    "StaticSegment",
    "Drum",
    "Mitchell",
    "MinimallyBiased",
    "Roba",
]

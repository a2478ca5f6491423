"""The table of structural generators, keyed by family name."""

from __future__ import annotations

from typing import Callable

from ._circuit import Circuit, Word

#: A generator builds a design's product word on a circuit whose inputs are the operand bits.
Generator = Callable[[Circuit], Word]

GENERATORS: dict[str, Generator] = {}


def register(*families: str) -> Callable[[Generator], Generator]:
    """Decorator: ``generator`` builds the designs of ``families``."""

    def decorate(generator: Generator) -> Generator:
        for family in families:
            GENERATORS[family] = generator
        return generator

    return decorate

"""The zoo: every built-in design plus imported ones, looked up by name."""

from __future__ import annotations

import difflib
from functools import lru_cache
from typing import Iterable, Iterator, Sequence

from ._record import Multiplier


class UnknownMultiplierError(KeyError):
    """A name that is not in the zoo; the message lists the closest matches."""

    def __str__(self) -> str:  # KeyError quotes its argument; show the message as written
        return str(self.args[0])


@lru_cache(maxsize=1)
def builtin_designs() -> tuple[Multiplier, ...]:
    """Every design of every built-in family (built once per process), with its shipped synthesis cost."""
    from .families import FAMILIES
    from .hardware import attach_synthesis_costs

    return tuple(attach_synthesis_costs(m for family in FAMILIES for m in family.designs()))


class Zoo:
    """An ordered collection of uniquely named multipliers."""

    def __init__(self, multipliers: Iterable[Multiplier] = ()) -> None:
        self._by_name: dict[str, Multiplier] = {}
        self.extend(multipliers)

    @classmethod
    def default(cls, imports: Sequence[str] = ()) -> "Zoo":
        """The built-in designs plus those imported from each path in ``imports``."""
        from .importing import import_designs

        zoo = cls(builtin_designs())
        for path in imports:
            zoo.extend(import_designs(path))
        return zoo

    def extend(self, multipliers: Iterable[Multiplier]) -> None:
        """Add designs; a name already present is an error (nothing is added then)."""
        new = list(multipliers)
        seen = set(self._by_name)
        for m in new:
            if m.name in seen:
                raise ValueError(f"multiplier name {m.name!r} is already in the zoo")
            seen.add(m.name)
        self._by_name.update((m.name, m) for m in new)

    def __getitem__(self, name: str) -> Multiplier:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownMultiplierError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        """A message for an unknown name naming the closest known ones."""
        close = difflib.get_close_matches(name, self._by_name, n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `dse zoo list` shows every name"
        return f"unknown multiplier {name!r}{hint}"

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Multiplier]:
        return iter(self._by_name.values())

    def __len__(self) -> int:
        return len(self._by_name)

    @property
    def names(self) -> list[str]:
        """Names in zoo order."""
        return list(self._by_name)

    @property
    def families(self) -> list[str]:
        """Family names in zoo order, each once."""
        return list(dict.fromkeys(m.family for m in self))

    def select(
        self,
        families: Sequence[str] | None = None,
        signed: bool | None = None,
        names: Sequence[str] | None = None,
    ) -> "Zoo":
        """A sub-zoo: designs of the given families and signedness, or the named ones."""
        if families:
            unknown = [f for f in families if f not in self.families]
            if unknown:
                raise UnknownMultiplierError(
                    f"unknown family {unknown[0]!r}; families: {', '.join(self.families)}"
                )
        picked = [self[n] for n in names] if names else list(self)
        return Zoo(
            m
            for m in picked
            if (not families or m.family in families) and (signed is None or m.signed == signed)
        )


def get(name: str, imports: Sequence[str] = ()) -> Multiplier:
    """The design called ``name`` in the default zoo (plus imports)."""
    return Zoo.default(imports)[name]

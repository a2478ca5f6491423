"""Genotype of a search: integer genes that decode to a per-layer multiplier (and compensation) choice.

Layers are gathered in *units* (a unit is one layer, or a group of layers that share a multiplier).
Plain encoding: one gene per unit, its value a multiplier index. With at most ``G`` distinct
multipliers: ``G`` *slot* genes (multiplier indices, the processing-element types) and one gene per
unit naming its slot. With compensation searched: one more gene per unit, an index into
:data:`COMPENSATION_CHOICES`. Decoding is array arithmetic over a whole population.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

COMPENSATION_CHOICES = ("none", "bias", "affine")


@dataclass(frozen=True)
class Gene:
    """One integer decision: its name (the optuna parameter) and its choices (shown values)."""

    name: str
    choices: tuple
    kind: str  # "multiplier", "slot" or "compensation"

    @property
    def size(self) -> int:
        """Number of values (genes take 0 .. size - 1)."""
        return len(self.choices)


@dataclass(frozen=True)
class Encoding:
    """How genes map to layers; ``decode`` turns genotypes (pop, n_genes) into assignments (pop, L)."""

    layer_names: tuple[str, ...]
    multiplier_names: tuple[str, ...]
    units: tuple[tuple[str, ...], ...]
    slots: int
    searched_compensation: bool

    @classmethod
    def build(
        cls,
        layer_names: Sequence[str],
        multiplier_names: Sequence[str],
        groups: Sequence[Sequence[str]] = (),
        max_distinct: int = 0,
        searched_compensation: bool = False,
    ) -> "Encoding":
        """Units from ``groups`` (other layers alone, in layer order); slots when ``max_distinct`` limits."""
        grouped = {layer: tuple(g) for g in groups for layer in g}
        units: list[tuple[str, ...]] = []
        for layer in layer_names:
            unit = grouped.get(layer, (layer,))
            if unit not in units:
                units.append(unit)
        slots = max_distinct if 0 < max_distinct < min(len(multiplier_names), len(units)) else 0
        return cls(tuple(layer_names), tuple(multiplier_names), tuple(units), slots, searched_compensation)

    @property
    def genes(self) -> tuple[Gene, ...]:
        """Every gene in genotype order: slots, then one per unit, then compensations."""
        out = [Gene(f"slot{i}", self.multiplier_names, "multiplier") for i in range(self.slots)]
        for unit in self.units:
            name = unit[0] if len(unit) == 1 else "+".join(unit)
            if self.slots:
                out.append(Gene(name, tuple(range(self.slots)), "slot"))
            else:
                out.append(Gene(name, self.multiplier_names, "multiplier"))
        if self.searched_compensation:
            out += [Gene(f"compensation:{g.name}", COMPENSATION_CHOICES, "compensation")
                    for g in out[self.slots:self.slots + len(self.units)]]
        return tuple(out)

    @property
    def sizes(self) -> np.ndarray:
        """Number of values of each gene, (n_genes,)."""
        return np.array([g.size for g in self.genes], dtype=np.int64)

    @property
    def n_genes(self) -> int:
        """Length of a genotype."""
        return self.slots + len(self.units) * (2 if self.searched_compensation else 1)

    def _unit_of_layer(self) -> np.ndarray:
        index = {layer: u for u, unit in enumerate(self.units) for layer in unit}
        return np.array([index[layer] for layer in self.layer_names], dtype=np.int64)

    def decode(self, genotypes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Assignments (pop, L) of multiplier indices and compensations (pop, L) of choice indices."""
        g = np.atleast_2d(np.asarray(genotypes, dtype=np.int64))
        if g.shape[1] != self.n_genes:
            raise ValueError(f"genotypes need {self.n_genes} genes, got {g.shape[1]}")
        unit_of_layer = self._unit_of_layer()
        units = g[:, self.slots:self.slots + len(self.units)]
        per_unit = np.take_along_axis(g[:, :self.slots], units, axis=1) if self.slots else units
        X = per_unit[:, unit_of_layer]
        if self.searched_compensation:
            C = g[:, self.slots + len(self.units):][:, unit_of_layer]
        else:
            C = np.zeros_like(X)
        return X, C

    def encode(self, X: np.ndarray, C: np.ndarray | None = None) -> np.ndarray:
        """A genotype for each assignment (consistent with units; slots listed in first-use order)."""
        X = np.atleast_2d(np.asarray(X, dtype=np.int64))
        first = np.array([self.layer_names.index(unit[0]) for unit in self.units])
        per_unit = X[:, first]
        parts = []
        if self.slots:
            slot_values = np.zeros((len(X), self.slots), dtype=np.int64)
            unit_slots = np.zeros_like(per_unit)
            for row, values in enumerate(per_unit):
                distinct = list(dict.fromkeys(values.tolist()))
                if len(distinct) > self.slots:
                    raise ValueError(f"assignment uses {len(distinct)} distinct multipliers; at most {self.slots} allowed")
                slot_values[row, :len(distinct)] = distinct
                unit_slots[row] = [distinct.index(v) for v in values]
            parts += [slot_values, unit_slots]
        else:
            parts.append(per_unit)
        if self.searched_compensation:
            C = np.zeros_like(X) if C is None else np.atleast_2d(np.asarray(C, dtype=np.int64))
            parts.append(C[:, first])
        return np.concatenate(parts, axis=1)

    def params(self, genotype: Sequence[int]) -> dict[str, object]:
        """One genotype as optuna parameters: gene name -> shown choice."""
        return {gene.name: gene.choices[int(v)] for gene, v in zip(self.genes, genotype)}

    def genotype(self, params: dict[str, object]) -> np.ndarray:
        """Inverse of :meth:`params`."""
        return np.array([gene.choices.index(params[gene.name]) for gene in self.genes], dtype=np.int64)

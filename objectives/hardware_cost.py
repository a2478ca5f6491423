"""Hardware cost of a per-layer assignment: each layer's MACs times the energy of one product.

Energy is reported at two levels, in pJ per inference (one image):

* **multipliers alone** — sum over layers of MACs x (energy per product of the layer's multiplier
  relative to the exact multiplier under uniform operands, from the zoo's cost, or from a per-layer
  function such as switching activity under the layer's operands) x the exact 8-bit multiply's energy;
* **whole MACs** — the same plus one 32-bit accumulator addition per MAC, which approximation
  does not touch.

The anchors are Horowitz (ISSCC 2014) at 45 nm: an 8-bit integer multiply about 0.2 pJ, a 32-bit
integer add about 0.1 pJ. Relative costs come from the zoo (relative to the exact multiplier of
the same signedness), so the absolute figures are the relative ones scaled by the anchor.

Savings compare with the exact multiplier *in the same layers*: with a per-layer function the exact
design itself costs less than the anchor where operands toggle fewer bits, so each layer's
``relative`` energy divides by the exact design's energy in that layer (the exact design is 1 in
every layer) and all-exact is the reference of every percentage.

Everything is vectorised over a population: ``X`` of shape (pop, L) holds, per layer, an index
into the model's multiplier list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence

import numpy as np

from multipliers import Multiplier

#: Energy of an exact 8-bit integer multiplication at 45 nm (Horowitz, ISSCC 2014), pJ.
MULTIPLY_PJ = 0.2
#: Energy of a 32-bit integer addition (the accumulator) at 45 nm (Horowitz, ISSCC 2014), pJ.
ACCUMULATE_PJ = 0.1

#: Optional per-layer energy: (layer, multiplier) -> energy per product relative to the exact
#: multiplier under uniform operands (the zoo's unit: 1.0 = the 8-bit multiply anchor).
LayerEnergyFunction = Callable[["LayerShape", Multiplier], float]


@dataclass(frozen=True)
class LayerShape:
    """One approximated layer as a GEMM per image: (M, K) x (K, N), M = output positions."""

    name: str
    m: int
    k: int
    n: int

    @property
    def macs(self) -> int:
        """Multiply-accumulates per image."""
        return self.m * self.k * self.n


class LayerEnergy(NamedTuple):
    """One layer's share of an assignment's energy per image (pJ) and its multiplier."""

    layer: str
    macs: int
    multiplier: str
    relative_energy: float
    multiplier_pj: float
    accumulate_pj: float

    @property
    def mac_pj(self) -> float:
        """Multiplier plus accumulator energy of the layer."""
        return self.multiplier_pj + self.accumulate_pj


class EnergyModel:
    """Per-layer energy of assignments over a fixed list of layers and candidate multipliers."""

    def __init__(
        self,
        layers: Sequence[LayerShape],
        multipliers: Sequence[Multiplier],
        method: str | None = None,
        layer_energy: LayerEnergyFunction | None = None,
        multiply_pj: float = MULTIPLY_PJ,
        accumulate_pj: float = ACCUMULATE_PJ,
    ) -> None:
        if not layers or not multipliers:
            raise ValueError("an energy model needs at least one layer and one multiplier")
        self.layers = tuple(layers)
        self.multipliers = tuple(multipliers)
        self.multiply_pj = float(multiply_pj)
        self.accumulate_pj = float(accumulate_pj)
        self.macs = np.array([layer.macs for layer in self.layers], dtype=np.float64)
        self.product = np.array(
            [[_relative(layer, m, method, layer_energy) for m in self.multipliers] for layer in self.layers]
        )  # (L, n): energy per product in units of the anchor (exact multiplier, uniform operands)
        exact = [j for j, m in enumerate(self.multipliers) if m.is_exact]
        self.exact_product = self.product[:, exact[0]] if exact else np.ones(len(self.layers))  # (L,)
        if np.any(self.exact_product <= 0):
            raise ValueError("the exact multiplier's energy must be positive in every layer")
        self.relative = self.product / self.exact_product[:, None]  # (L, n): relative to exact in that layer
        self.area = np.array([m.cost(method).area for m in self.multipliers])

    # -- populations -----------------------------------------------------------------------------
    def _check(self, X: np.ndarray) -> np.ndarray:
        X = np.atleast_2d(np.asarray(X, dtype=np.int64))
        if X.shape[1] != len(self.layers):
            raise ValueError(f"assignments must have {len(self.layers)} columns (layers), got {X.shape[1]}")
        if X.min() < 0 or X.max() >= len(self.multipliers):
            raise ValueError(f"multiplier indices must lie in 0..{len(self.multipliers) - 1}")
        return X

    def per_layer_pj(self, X: np.ndarray) -> np.ndarray:
        """Multiplier energy per image of each layer, (pop, L) pJ."""
        X = self._check(X)
        product = self.product[np.arange(X.shape[1]), X]  # (pop, L)
        return product * self.macs * self.multiply_pj

    def multiplier_pj(self, X: np.ndarray) -> np.ndarray:
        """Multiplier energy per image, (pop,) pJ."""
        return self.per_layer_pj(X).sum(axis=1)

    def mac_pj(self, X: np.ndarray) -> np.ndarray:
        """Multiplier plus accumulator energy per image, (pop,) pJ."""
        return self.multiplier_pj(X) + self.accumulate_total_pj

    @property
    def exact_multiplier_pj(self) -> float:
        """Multiplier energy per image with exact multipliers everywhere."""
        return float((self.macs * self.exact_product).sum() * self.multiply_pj)

    @property
    def accumulate_total_pj(self) -> float:
        """Accumulator energy per image (the same for every assignment)."""
        return float(self.macs.sum() * self.accumulate_pj)

    def relative_energy(self, X: np.ndarray) -> np.ndarray:
        """Multiplier energy relative to all-exact, (pop,) (1.0 = exact)."""
        return self.multiplier_pj(X) / self.exact_multiplier_pj

    def multiplier_saving(self, X: np.ndarray) -> np.ndarray:
        """Multiplier energy saved relative to all-exact, (pop,) percent."""
        return 100.0 * (1.0 - self.relative_energy(X))

    def mac_saving(self, X: np.ndarray) -> np.ndarray:
        """Whole-MAC (multiplier + 32-bit add) energy saved relative to all-exact, (pop,) percent."""
        exact = self.exact_multiplier_pj + self.accumulate_total_pj
        return 100.0 * (1.0 - self.mac_pj(X) / exact)

    def distinct_area(self, X: np.ndarray) -> np.ndarray:
        """Sum of relative areas of the distinct multipliers an assignment uses, (pop,).

        The cost of an array that holds one processing element type per distinct multiplier.
        """
        X = self._check(X)
        used = np.zeros((X.shape[0], len(self.multipliers)), dtype=bool)
        np.put_along_axis(used, X, True, axis=1)
        return used @ self.area

    # -- one assignment --------------------------------------------------------------------------
    def breakdown(self, x: Sequence[int]) -> list[LayerEnergy]:
        """Per-layer energy of one assignment (pJ per image); the rows sum to the totals."""
        x = self._check(np.asarray(x)[None, :])[0]
        per_layer = self.per_layer_pj(x[None, :])[0]
        return [
            LayerEnergy(
                layer.name,
                layer.macs,
                self.multipliers[j].name,
                float(self.relative[i, j]),
                float(per_layer[i]),
                float(self.macs[i] * self.accumulate_pj),
            )
            for i, (layer, j) in enumerate(zip(self.layers, x))
        ]


def _relative(layer: LayerShape, m: Multiplier, method: str | None, layer_energy: LayerEnergyFunction | None) -> float:
    value = float(layer_energy(layer, m)) if layer_energy is not None else float(m.cost(method).energy)
    if not (np.isfinite(value) and value >= 0):
        raise ValueError(f"energy of {m.name} in layer {layer.name} must be finite and non-negative, got {value}")
    return value


__all__ = [
    "ACCUMULATE_PJ",
    "MULTIPLY_PJ",
    "EnergyModel",
    "LayerEnergy",
    "LayerEnergyFunction",
    "LayerShape",
]

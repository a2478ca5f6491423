"""From per-layer distortions to a network score and a predicted accuracy drop.

Each layer l and design m contribute a relative error power split in two parts, both normalised by
the layer's exact output energy ||C_l||^2: ``bias_power`` (the per-output-channel expected error,
constant over a channel's outputs) and ``variance_power`` (what varies from output to output).
Layers differ in how strongly such errors reach the logits; calibrating once per network by
injecting each kind of error into one layer at a time gives sensitivities ``s_bias[l]`` and
``s_variance[l]`` (logit mean-squared change per unit of relative power). The score of an
assignment X is the predicted logit error power

    score(X) = sum_l s_bias[l] bias_power[l, X_l] + s_variance[l] variance_power[l, X_l],

which assumes small, independent errors add their effects on the logits. The drop model
(:mod:`.drop_model`), fitted on a few real evaluations, turns the score into a predicted top-1 drop
in points with its interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ScoreTable:
    """The (layers x designs) table of score contributions: scoring is a gather and a sum."""

    layer_names: tuple[str, ...]
    multiplier_names: tuple[str, ...]
    contributions: np.ndarray  # (L, M)

    @classmethod
    def from_powers(
        cls,
        layer_names: tuple[str, ...],
        multiplier_names: tuple[str, ...],
        bias_power: np.ndarray,
        variance_power: np.ndarray,
        s_bias: np.ndarray,
        s_variance: np.ndarray,
    ) -> "ScoreTable":
        """Combine relative powers (L, M) with per-layer sensitivities (L,)."""
        table = s_bias[:, None] * bias_power + s_variance[:, None] * variance_power
        return cls(tuple(layer_names), tuple(multiplier_names), np.ascontiguousarray(table, dtype=np.float64))

    def score(self, assignments: np.ndarray) -> np.ndarray:
        """Scores of a population: ``assignments`` (pop, L) of design indices -> (pop,)."""
        x = np.asarray(assignments)
        if x.ndim == 1:
            x = x[None]
        if x.shape[1] != len(self.layer_names):
            raise ValueError(f"assignments have {x.shape[1]} layers, the network has {len(self.layer_names)}")
        flat = self.contributions.ravel()
        offsets = np.arange(len(self.layer_names)) * len(self.multiplier_names)
        return flat[x + offsets].sum(axis=1)

"""From per-layer distortions to a network score and a predicted accuracy drop.

Each layer l and design m contribute a relative error power split in two parts, both normalised by
the layer's exact output energy ||C_l||^2: ``bias_power`` (the per-output-channel expected error,
constant over a channel's outputs) and ``variance_power`` (what varies from output to output).
Layers differ in how strongly such errors reach the logits; calibrating once per network by
injecting each kind of error into one layer at a time gives sensitivities ``s_bias[l]`` and
``s_variance[l]`` (logit mean-squared change per unit of relative power). The score of an
assignment X is the predicted logit error power

    score(X) = sum_l s_bias[l] bias_power[l, X_l] + s_variance[l] variance_power[l, X_l],

which assumes small, independent errors add their effects on the logits. A monotone map, fitted on
a few real evaluations, turns the score into a predicted top-1 drop in points. The drop cannot exceed
the fall to chance accuracy (100 / classes): where the fitted drops reach that ceiling the map stays
at it, so assignments predicted to leave the network at chance are predicted equal, not ranked.
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


@dataclass
class DropMap:
    """Monotone map from score to top-1 drop (points): isotonic in log score, through (0, 0), interpolated."""

    log_scores: np.ndarray
    drops: np.ndarray

    @classmethod
    def fit(cls, scores: np.ndarray, drops: np.ndarray, ceiling: float | None = None) -> "DropMap":
        """Fit on real evaluations (score of each assignment, its measured drop); ``ceiling``: the drop to chance."""
        from sklearn.isotonic import IsotonicRegression

        scores, drops = np.asarray(scores, dtype=np.float64), np.asarray(drops, dtype=np.float64)
        keep = scores > 0
        if keep.sum() < 2:
            raise ValueError("the drop map needs at least two evaluations with a non-zero score")
        x = np.log(scores[keep])
        order = np.argsort(x)
        x = x[order]
        fitted = IsotonicRegression(increasing=True, y_min=0.0).fit(x, drops[keep][order]).predict(x)
        if ceiling is not None:
            fitted = np.minimum(fitted, ceiling)
        # each flat block of the isotonic fit becomes one knot at its mean score: interpolating between
        # knots keeps the map increasing wherever the data rise, so it preserves the score's ranking;
        # a block at the ceiling (chance accuracy) starts where its first evaluation does
        knots_x, knots_y, start = [], [], 0
        for end in range(1, len(x) + 1):
            if end == len(x) or fitted[end] != fitted[start]:
                at_chance = ceiling is not None and fitted[start] >= ceiling
                knots_x.append(x[start] if at_chance else x[start:end].mean())
                knots_y.append(fitted[start])
                start = end
        return cls(np.array(knots_x), np.array(knots_y))

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """Predicted drop for each score; interpolated, flat beyond the fitted range, 0 at score 0."""
        scores = np.asarray(scores, dtype=np.float64)
        x = np.log(np.maximum(scores, 1e-300))
        # below the smallest fitted score, fall linearly (in score) towards (0, 0)
        low = self.drops[0] * np.clip(scores / np.exp(self.log_scores[0]), 0.0, 1.0)
        inside = np.interp(x, self.log_scores, self.drops)
        return np.where(x < self.log_scores[0], low, inside)

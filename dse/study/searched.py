"""Compensation searched per layer: the study's surrogate over (layer, design, compensation).

Compensation (none, bias or affine, :mod:`objectives.compensation`) folds into requantisation and
costs no energy or area, and the surrogate's score is a sum of per-(layer, design) contributions.
So for any choice of designs the best compensation of each layer is the one whose predicted
contribution for that layer's design is least, independently of the other layers: the search's
per-layer decision (design, compensation) is solved exactly for the compensation (read off the
table) while the engine searches the designs. Searching the compensation with genes of its own
could only add dominated points (same energy, more predicted drop) and dilute the engine's moves.

:class:`SearchedSurrogate` holds the contributions of every (layer, design, compensation), built
from one pass of operand statistics and sensitivities (``NetworkSurrogate.build_many``), scores an
assignment with the best compensation per (layer, design), and says which one that is.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from objectives.distortion.network_score import ScoreTable
from objectives.distortion.surrogate import NetworkSurrogate, design_set_key, tuning_key

from .encoding import COMPENSATION_CHOICES

if TYPE_CHECKING:
    from .problem import Surrogate
    from .target import Target

logger = logging.getLogger(__name__)

SEARCHED = "searched"
CHOICES_FILE = "compensations.npz"


@dataclass
class SearchedSurrogate(NetworkSurrogate):
    """A surrogate whose every (layer, design) takes the compensation with the least predicted contribution."""

    options: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0)))  # (3, L, M), COMPENSATION_CHOICES order

    @classmethod
    def combine(cls, surrogates: dict[str, NetworkSurrogate]) -> "SearchedSurrogate":
        """The searched surrogate of one surrogate per compensation (same layers and designs)."""
        parts = [surrogates[c] for c in COMPENSATION_CHOICES]
        first = parts[0]
        for other in parts[1:]:
            if other.layer_names != first.layer_names or other.multiplier_names != first.multiplier_names:
                raise ValueError("surrogates of different layers or designs cannot be combined")
        options = np.stack([s.table.contributions for s in parts])
        choice = options.argmin(axis=0)  # ties (the exact design: all zero) go to "none"
        best = np.take_along_axis(options, choice[None], axis=0)[0]
        distortion = {
            level: np.take_along_axis(np.stack([s.distortion[level] for s in parts]), choice[None], axis=0)[0]
            for level in first.distortion if all(level in s.distortion for s in parts)
        }
        table = ScoreTable(tuple(first.layer_names), tuple(first.multiplier_names), best)
        return cls(table, SEARCHED, distortion, first.macs, margins=first.margins, options=options)

    @property
    def choice(self) -> np.ndarray:
        """(L, M) index into :data:`COMPENSATION_CHOICES` of each (layer, design)'s compensation."""
        return self.options.argmin(axis=0)

    def compensations(self, assignments: np.ndarray) -> np.ndarray:
        """The compensation index of every layer of assignments (pop, L) of design indices (our layer order)."""
        X = np.atleast_2d(np.asarray(assignments, dtype=np.int64))
        return self.choice[np.arange(X.shape[1])[None, :], X]

    def save(self, folder: str | Path) -> None:
        """Write the combined table (as any surrogate) and the per-compensation contributions."""
        from objectives.atomic_file import write_atomically

        super().save(folder)
        write_atomically(Path(folder) / CHOICES_FILE, lambda f: np.savez(f, options=self.options))

    @classmethod
    def load(cls, folder: str | Path) -> "SearchedSurrogate":
        """Read a surrogate written by :meth:`save`."""
        base = NetworkSurrogate.load(folder)
        with np.load(Path(folder) / CHOICES_FILE) as data:
            options = data["options"]
        return cls(base.table, base.compensation, base.distortion, base.macs, base.drop_map, base.calibration_points,
                   base.margins, options=options)

    def summary(self) -> dict[str, int]:
        """How many (layer, design) pairs take each compensation (the exact design left out)."""
        exact = self.exact_index()
        chosen = np.delete(self.choice, exact, axis=1)
        return {c: int((chosen == i).sum()) for i, c in enumerate(COMPENSATION_CHOICES)}


def build_study_surrogate(
    target: "Target", multipliers: Sequence[Any], compensation: str, folder: Path, progress: bool = True
) -> "Surrogate":
    """The study's surrogate for its compensation mode, loaded from ``folder`` or built and saved there."""
    responses = target.config.surrogate.response_designs
    cache = Path(folder) / design_set_key(multipliers, compensation, tuning_key(target.qnet), responses)
    ready = (cache / "surrogate.json").is_file() and (compensation != SEARCHED or (cache / CHOICES_FILE).is_file())
    if ready:
        loaded = _load_cached(cache, compensation == SEARCHED, list(target.approximated), [m.name for m in multipliers])
        if loaded is not None:
            return loaded
    seed = target.config.search.seed
    if compensation != SEARCHED:
        surrogate = NetworkSurrogate.build(target.qnet, multipliers, compensation=compensation, seed=seed, progress=progress,
                                           response_designs=responses)
    else:
        parts = NetworkSurrogate.build_many(target.qnet, multipliers, COMPENSATION_CHOICES, seed=seed, progress=progress,
                                            response_designs=responses)
        surrogate = SearchedSurrogate.combine(parts)
        logger.info("best predicted compensation of each (layer, design): %s", json.dumps(surrogate.summary()))
    surrogate.save(cache)
    return surrogate


def _load_cached(cache: Path, searched: bool, layers: list[str], names: list[str]) -> "Surrogate | None":
    """The surrogate saved in ``cache``, or None (with a warning) when its files are damaged or describe other layers
    or designs: it is then built again (a cut-short copy, a disk that filled up)."""
    try:
        surrogate = SearchedSurrogate.load(cache) if searched else NetworkSurrogate.load(cache)
        if list(surrogate.layer_names) == layers and list(surrogate.multiplier_names) == names:
            return surrogate
        reason = "it describes other layers or designs"
    except Exception as error:  # noqa: BLE001 - numpy, zipfile and json raise many kinds on damaged files
        reason = f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"
    logger.warning("the cached surrogate in %s is unusable (%s); building it again", cache, reason)
    return None

"""Surrogates cached on disk, keyed by what they were built from, with their drop map fitted once."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .surrogate import NetworkSurrogate, design_set_key, tuning_key

logger = logging.getLogger(__name__)


def surrogate_folder(key_parts: Sequence[str], designs: Sequence[Any], compensation: str, scheme: str,
                     root: Path | None = None, extra: str = "") -> Path:
    """The cache folder of a surrogate: user cache / surrogates / hash of its inputs (``extra``: weight tuning)."""
    from ..paths import cache_dir

    network_key = hashlib.sha256("\x00".join([*key_parts, scheme]).encode()).hexdigest()[:12]
    return (root or cache_dir() / "surrogates") / f"{network_key}-{design_set_key(designs, compensation, extra)}"


def fit_drop_map(
    surrogate: NetworkSurrogate, qnet: Any, evaluation: Any, points: int, designs: Sequence[Any],
    seed: int = 0, progress: bool = True, classes: int | None = None,
) -> None:
    """Measure ``points`` spread assignments with real inference and fit the surrogate's drop map.

    ``designs`` are the multipliers the surrogate was built with (imported ones included);
    ``classes`` bounds the drop by the fall to chance accuracy (100 / classes). The margin curve is taken
    on the evaluation images first (the drops are measured there).
    """
    from ..evaluate import evaluate
    from .drop_model import margins_on

    surrogate.margins = margins_on(qnet, evaluation, seed)

    by_name = {m.name: m for m in designs}
    assignments = surrogate.spread_assignments(points, seed=seed)
    saved = dict(qnet.assignment), qnet.compensation, dict(qnet.injection)
    qnet.reset()
    try:
        exact = evaluate(qnet, evaluation, progress=False).top1
        drops = []
        rows = assignments
        if progress:
            from tqdm import tqdm

            rows = tqdm(assignments, desc="fitting the drop map", unit="evaluation")
        for row in rows:
            mapping = {layer: by_name[surrogate.multiplier_names[i]] for layer, i in zip(surrogate.layer_names, row)}
            qnet.set_assignment(mapping, compensation=surrogate.compensation)
            drops.append(exact - evaluate(qnet, evaluation, progress=False).top1)
    finally:
        assignment, compensation, injection = saved
        qnet.set_assignment(assignment, compensation)
        qnet.set_injection(injection)
    ceiling = exact - 100.0 / classes if classes else None
    surrogate.fit_drop_map(assignments, np.array(drops), ceiling, len(evaluation))


def cached_surrogate(
    qnet: Any, data: Any, designs: Sequence[Any], compensation: str, key_parts: Sequence[str],
    map_points: int = 12, limit: int | None = 1000, seed: int = 0, progress: bool = True, root: Path | None = None,
) -> NetworkSurrogate:
    """Load the surrogate for these inputs from the cache, or build it (and its drop map) and save it."""
    folder = surrogate_folder(key_parts, designs, compensation, qnet.scheme, root, tuning_key(qnet))
    surrogate = None
    if (folder / "surrogate.json").is_file():
        try:
            surrogate = NetworkSurrogate.load(folder)
        except Exception as error:  # noqa: BLE001 - numpy, zipfile and json raise many kinds on damaged files
            logger.warning("ignoring unreadable cached surrogate in %s: %s: %s", folder, type(error).__name__, error)
    if surrogate is None:
        surrogate = NetworkSurrogate.build(qnet, designs, compensation, seed=seed, progress=progress)
        surrogate.save(folder)
    if surrogate.drop_map is None:
        fit_drop_map(surrogate, qnet, data.limited(limit), map_points, designs, seed=seed, progress=progress,
                     classes=data.num_classes)
        surrogate.save(folder)
    return surrogate

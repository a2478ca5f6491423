"""Assignments scored per second by the surrogate for ResNet-20 with the whole zoo (one core).

The score table is built once per network (layers x designs); a population of assignments is
then a gather and a sum. The table's values do not change the timing, so the benchmark scores a
table of the real shape (ResNet-20's layers by every signed zoo design plus the EvoApprox ones)
filled with random contributions, against a plain Python loop over the same table for reference.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from multipliers import Zoo  # noqa: E402
from objectives.distortion import DropModel, MarginCurve, ScoreTable  # noqa: E402
from objectives.paths import shared_data_dir  # noqa: E402

RESNET20_LAYERS = 20  # 19 convolutions and the classifier (see `dse layers resnet20-cifar10`)


def main() -> None:
    imports = [str(p) for p in (shared_data_dir() / "evoapprox-mul8s",) if p.is_dir()]
    designs = [m.name for m in Zoo.default(imports).select(signed=True)]
    rng = np.random.default_rng(0)
    table = ScoreTable(tuple(f"layer{i}" for i in range(RESNET20_LAYERS)), tuple(designs),
                       rng.random((RESNET20_LAYERS, len(designs))))
    logits = rng.normal(size=(256, 10)) * 3.0
    curve = MarginCurve.from_logits(logits, logits.argmax(axis=1))
    drop_map = DropModel.fit(curve, np.logspace(-3, 3, 12), np.linspace(0, 60, 12))
    population = rng.integers(0, len(designs), size=(200_000, RESNET20_LAYERS))

    table.score(population[:1000])  # warm-up
    start = time.perf_counter()
    rounds = 5
    for _ in range(rounds):
        scores = table.score(population)
        drop_map(scores)
        drop_map.interval(scores)
    vectorised = rounds * len(population) / (time.perf_counter() - start)

    sample = population[:2000]
    start = time.perf_counter()
    for row in sample:
        sum(table.contributions[layer, design] for layer, design in enumerate(row))
    loop = len(sample) / (time.perf_counter() - start)

    print(f"designs: {len(designs)}, layers: {RESNET20_LAYERS}, population: {len(population):,}")
    print(f"python loop: {loop:,.0f} assignments/s")
    print(f"vectorised score + drop and its interval: {vectorised:,.0f} assignments/s ({vectorised / loop:.0f}x the loop)")
    print(f"goal >= 100,000 assignments/s: {'met' if vectorised >= 100_000 else 'NOT met'}")


if __name__ == "__main__":
    main()

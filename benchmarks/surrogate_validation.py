"""Does the surrogate's predicted top-1 drop rank real assignments right? ResNet-20 on the shared CIFAR-10 set.

1. Builds the surrogate for every signed zoo design (plus the EvoApprox8b signed ones) and fits its
   drop map on a few real evaluations of spread assignments.
2. Draws random per-layer assignments of mixed error levels (a random share of layers made
   approximate, each with a random design), predicts their drop and measures it by bit-exact
   emulation: prints the Spearman correlation.
3. For a fixed multiplier-energy band, draws candidate assignments, ranks them by predicted drop
   and measures all of them: prints how many of the surrogate's best 10 are among the measured
   best 10.

    python benchmarks/surrogate_validation.py [--assignments 100] [--limit 1000] [--pool 30]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignments", type=int, default=100)
    parser.add_argument("--pool", type=int, default=30, help="candidates in the equal-energy band")
    parser.add_argument("--limit", type=int, default=1000, help="evaluation images per assignment")
    parser.add_argument("--map-points", type=int, default=12)
    parser.add_argument("--compensation", default="none")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write every measurement to this JSON file")
    args = parser.parse_args()

    import torch
    from scipy.stats import spearmanr

    from multipliers import Zoo
    from objectives.data import load_data
    from objectives.distortion import DropMap
    from objectives.distortion.cache import cached_surrogate
    from objectives.evaluate import evaluate
    from objectives.networks import get_network
    from objectives.paths import shared_data_dir
    from objectives.quantize import quantize

    torch.manual_seed(args.seed)
    shared = shared_data_dir()
    network = get_network("resnet20-cifar10", shared / "resnet-cifar10" / "resnet20-12fca82f.th")
    data = load_data(network, shared / "cifar10-test-jpg")
    qnet = quantize(network.model, data.calibration, network.input_shape, "int8", name=network.name)
    designs = list(Zoo.default([str(shared / "evoapprox-mul8s")]).select(signed=True))
    evaluation = data.limited(args.limit)

    start = time.perf_counter()
    weights = shared / "resnet-cifar10" / "resnet20-12fca82f.th"
    surrogate = cached_surrogate(  # reused from the user cache when run again
        qnet, data, designs, args.compensation, key_parts=(network.name, str(weights), str(shared / "cifar10-test-jpg"), "256"),
        map_points=args.map_points, limit=args.limit, seed=args.seed,
    )
    points = surrogate.calibration_points
    surrogate.drop_map = DropMap.fit(np.array(points["scores"]), np.array(points["drops"]))  # current map form
    print(f"surrogate ready (built and its drop map fitted, or loaded from the cache) in {time.perf_counter() - start:.0f} s "
          f"({len(designs)} designs x {len(surrogate.layer_names)} layers, {args.map_points} real evaluations)")

    exact_top1 = evaluate(qnet, evaluation, progress=False).top1
    print(f"exact int8 top-1 on {len(evaluation)} images: {exact_top1:.2f}%")

    def measure(rows: np.ndarray) -> np.ndarray:
        drops = []
        for row in rows:
            mapping = {layer: designs[i] for layer, i in zip(surrogate.layer_names, row)}
            qnet.set_assignment(mapping, compensation=args.compensation)
            drops.append(exact_top1 - evaluate(qnet, evaluation, progress=False).top1)
        qnet.reset()
        return np.array(drops)

    rng = np.random.default_rng(args.seed + 2)
    n_layers, n_designs = len(surrogate.layer_names), len(designs)
    exact = surrogate.exact_index()
    rows = rng.integers(0, n_designs, size=(args.assignments, n_layers))
    approximate = rng.random((args.assignments, n_layers)) < rng.uniform(0.1, 0.9, size=(args.assignments, 1))
    rows = np.where(approximate, rows, exact)
    start = time.perf_counter()
    measured = measure(rows)
    predicted = surrogate.predict_drop(rows)
    rho = spearmanr(predicted, measured)[0]
    rho_score = spearmanr(surrogate.score(rows), measured)[0]
    print(f"{args.assignments} random assignments measured in {time.perf_counter() - start:.0f} s; "
          f"measured drop {measured.min():.2f}..{measured.max():.2f} points")
    print(f"Spearman(predicted drop, measured drop) = {rho:.3f}   (goal >= 0.9)")
    print(f"Spearman(surrogate score, measured drop) = {rho_score:.3f}")

    energy = np.array([m.cost().energy for m in designs])
    macs = surrogate.macs / surrogate.macs.sum()
    candidates = rng.integers(0, n_designs, size=(200_000, n_layers))
    share = rng.uniform(0.1, 0.9, size=(200_000, 1))
    candidates = np.where(rng.random((200_000, n_layers)) < share, candidates, exact)
    saving = 100 * (1 - (energy[candidates] * macs).sum(axis=1))
    band = np.flatnonzero(np.abs(saving - 25.0) < 1.0)[: args.pool]
    pool = candidates[band]
    pool_predicted = surrogate.predict_drop(pool)
    pool_scores = surrogate.score(pool)
    pool_measured = measure(pool)
    best_predicted = set(np.lexsort((pool_scores, pool_predicted))[:10].tolist())
    best_measured = set(np.argsort(pool_measured, kind="stable")[:10].tolist())
    if args.out:
        import json

        args.out.write_text(json.dumps({
            "random": {"assignments": rows.tolist(), "predicted": predicted.tolist(), "measured": measured.tolist()},
            "band": {"assignments": pool.tolist(), "predicted": pool_predicted.tolist(), "measured": pool_measured.tolist()},
            "designs": surrogate.multiplier_names, "layers": surrogate.layer_names, "exact_top1": exact_top1,
        }))
    print(f"equal-energy band (multiplier energy saved 24-26%, {len(pool)} candidates): "
          f"{len(best_predicted & best_measured)} of the surrogate's best 10 are among the measured best 10 (goal >= 8)")


if __name__ == "__main__":
    main()

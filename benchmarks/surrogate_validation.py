"""Does the surrogate's predicted top-1 drop rank real assignments right? ResNet-20 on the shared CIFAR-10 set.

1. Builds the surrogate for every signed zoo design (plus the EvoApprox8b signed ones) and fits its
   drop map on a few real evaluations of spread assignments (both cached in the user cache).
2. Rank correlation: draws ``--assignments`` random per-layer assignments of mixed error levels from
   the pool ``--pool`` (below), predicts their drop, measures it by bit-exact emulation on the first
   ``--limit`` images, and prints the Spearman correlation (goal >= 0.9).
3. Best 10 at equal energy: candidates are drawn from the same pool until ``--band-size`` of them
   have a multiplier energy saving (MAC-weighted energy per product, against the exact multiplier)
   of 25 +- 1%; every band member is measured. The surrogate's best 10 are the 10 lowest predicted
   drops (ties broken by the score); a pick counts as among the measured best 10 when its measured
   drop is at most the 10th lowest measured drop of the band (so ties at that drop count). Prints
   how many of the 10 picks count (goal >= 8), and the expected count for 10 random picks.

Pools (``--pool``), both seeded by ``--seed``:

* ``levels`` (default; the regime a search visits): each assignment draws a target predicted drop
  T, uniform in 0-30 points (0-20 for the equal-energy band), and a share, uniform in 10-90%, of
  its layers to approximate (each layer independently; the others stay exact). T is turned into a
  target network score S with the inverse of the surrogate's drop map, and each approximate layer
  gets a design drawn uniformly among the non-exact designs whose score contribution in that layer
  (the surrogate's per-layer table) lies within a factor 2 of S / (number of approximate layers);
  where none does, the nearest one. So every layer errs at a comparable level, levels are mixed
  across assignments, and the drops spread over 0-30 points instead of piling up at chance. The
  selection uses only the surrogate's table and drop map (fitted on its own ``--map-points``
  calibration evaluations), never the measurements made here.
* ``uniform`` (the earlier pool): a random share, uniform in 10-90%, of the layers is approximate,
  each with a design drawn uniformly from all of them. About a third of such assignments leave
  ResNet-20 within 2 points of chance accuracy (measured drops 54-72), whose order among themselves
  is noise, and so does every candidate of its 25%-saving band.

Real evaluations are cached by assignment in ``--cache`` (top-1 per file), so a rerun only measures
what it has not seen; ``--out`` writes every assignment with its predicted and measured drop.

    python benchmarks/surrogate_validation.py [--pool levels|uniform] [--assignments 100] [--limit 1000]
        [--band-size 30] [--out sv.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignments", type=int, default=100)
    parser.add_argument("--pool", choices=("levels", "uniform"), default="levels",
                        help="how random assignments are drawn (see the module docstring)")
    parser.add_argument("--band-size", type=int, default=30, help="candidates in the equal-energy band, all measured")
    parser.add_argument("--limit", type=int, default=1000, help="evaluation images per assignment")
    parser.add_argument("--map-points", type=int, default=12)
    parser.add_argument("--compensation", default="none")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/axm-dse-evaluations"), help="measured top-1 per assignment")
    parser.add_argument("--out", type=Path, help="also write every measurement to this JSON file")
    args = parser.parse_args()

    import torch
    from scipy.stats import spearmanr

    from multipliers import Zoo
    from objectives.data import load_data
    from objectives.distortion.cache import cached_surrogate
    from objectives.evaluate import evaluate
    from objectives.networks import get_network
    from objectives.paths import shared_data_dir
    from objectives.quantize import quantize

    torch.manual_seed(args.seed)
    shared = shared_data_dir()
    weights = shared / "resnet-cifar10" / "resnet20-12fca82f.th"
    network = get_network("resnet20-cifar10", weights)
    data = load_data(network, shared / "cifar10-test-jpg")
    qnet = quantize(network.model, data.calibration, network.input_shape, "int8", name=network.name)
    designs = list(Zoo.default([str(shared / "evoapprox-mul8s")]).select(signed=True))
    evaluation = data.limited(args.limit)
    args.cache.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    surrogate = cached_surrogate(  # reused from the user cache when run again
        qnet, data, designs, args.compensation, key_parts=(network.name, str(weights), str(shared / "cifar10-test-jpg"), "256"),
        map_points=args.map_points, limit=args.limit, seed=args.seed,
    )
    print(f"surrogate ready (built and its drop map fitted, or loaded from the cache) in {time.perf_counter() - start:.0f} s "
          f"({len(designs)} designs x {len(surrogate.layer_names)} layers, {args.map_points} real evaluations)")

    def top1(row: np.ndarray) -> float:
        names = [designs[i].name for i in row]
        blob = json.dumps({"net": network.name, "weights": str(weights), "limit": args.limit, "comp": args.compensation,
                           "assign": names})
        path = args.cache / f"{hashlib.sha256(blob.encode()).hexdigest()[:20]}.json"
        if path.is_file():
            return float(json.loads(path.read_text())["top1"])
        qnet.set_assignment({layer: designs[i] for layer, i in zip(surrogate.layer_names, row)}, compensation=args.compensation)
        value = evaluate(qnet, evaluation, progress=False).top1
        qnet.reset()
        path.write_text(json.dumps({"top1": value, "assign": names}))
        return value

    exact = surrogate.exact_index()
    n_layers, n_designs = len(surrogate.layer_names), len(designs)
    exact_top1 = top1(np.full(n_layers, exact))
    print(f"exact int8 top-1 on {len(evaluation)} images: {exact_top1:.2f}%")

    def measure(rows: np.ndarray) -> np.ndarray:
        return np.array([exact_top1 - top1(row) for row in rows])

    rng = np.random.default_rng(args.seed + 2)
    if args.pool == "uniform":
        rows = uniform_pool(rng, args.assignments, n_layers, n_designs, exact)
    else:
        rows = level_pool(surrogate, rng, args.assignments, max_drop=30.0)
    start = time.perf_counter()
    measured = measure(rows)
    predicted = surrogate.predict_drop(rows)
    rho = spearmanr(predicted, measured)[0]
    rho_score = spearmanr(surrogate.score(rows), measured)[0]
    print(f"{args.assignments} random assignments ({args.pool} pool) measured (or read from {args.cache}) in {time.perf_counter() - start:.0f} s; "
          f"measured drop {measured.min():.2f}..{measured.max():.2f} points")
    print(f"Spearman(predicted drop, measured drop) = {rho:.3f}   (goal >= 0.9)")
    print(f"Spearman(surrogate score, measured drop) = {rho_score:.3f}")
    ceiling = surrogate.calibration_points.get("ceiling")
    if ceiling is not None:
        live = predicted < ceiling - 1e-9
        if (~live).any():
            print(f"{int((~live).sum())} assignments predicted at chance (drop {ceiling:.2f}, measured "
                  f"{np.median(measured[~live]):.2f} median); Spearman over the other "
                  f"{int(live.sum())} = {spearmanr(predicted[live], measured[live])[0]:.3f}")
        else:
            print(f"no assignment predicted at chance (drop {ceiling:.2f})")

    energy = np.array([m.cost().energy for m in designs])
    macs = surrogate.macs / surrogate.macs.sum()
    if args.pool == "uniform":
        candidates = uniform_pool(rng, 200_000, n_layers, n_designs, exact, share_first=True)
    else:
        candidates = level_pool(surrogate, rng, 5_000, max_drop=20.0)
    saving = 100 * (1 - (energy[candidates] * macs).sum(axis=1))
    band = np.flatnonzero(np.abs(saving - 25.0) < 1.0)[: args.band_size]
    pool = candidates[band]
    pool_predicted = surrogate.predict_drop(pool)
    pool_measured = measure(pool)
    picks = np.lexsort((surrogate.score(pool), pool_predicted))[:10]
    tenth = np.sort(pool_measured)[min(9, len(pool) - 1)]
    hits = int(np.sum(pool_measured[picks] <= tenth))
    chance = 10 * np.sum(pool_measured <= tenth) / len(pool)
    if args.out:
        args.out.write_text(json.dumps({
            "random": {"assignments": rows.tolist(), "predicted": predicted.tolist(), "measured": measured.tolist(),
                       "score": surrogate.score(rows).tolist(), "spearman": rho},
            "band": {"assignments": pool.tolist(), "predicted": pool_predicted.tolist(), "measured": pool_measured.tolist(),
                     "saving_percent": saving[band].tolist(),
                     "picks": picks.tolist(), "hits": hits},
            "designs": surrogate.multiplier_names, "layers": surrogate.layer_names, "exact_top1": exact_top1,
            "limit": args.limit, "compensation": args.compensation, "seed": args.seed, "pool": args.pool,
        }))
    print(f"equal-energy band ({args.pool} pool, multiplier energy saved 24-26%, {len(pool)} candidates, all measured; "
          f"10th best measured drop {tenth:.2f}): {hits} of the surrogate's best 10 are among the measured best 10 "
          f"(goal >= 8; 10 random picks: {chance:.1f} expected)")


def uniform_pool(rng: np.random.Generator, count: int, n_layers: int, n_designs: int, exact: int,
                 share_first: bool = False) -> np.ndarray:
    """A random share (10-90%) of the layers approximate, each with a design drawn uniformly from all.

    ``share_first``: draw the shares before the layer coins (the order of the band's earlier draws,
    kept so its cached evaluations still match).
    """
    rows = rng.integers(0, n_designs, size=(count, n_layers))
    if share_first:
        share = rng.uniform(0.1, 0.9, size=(count, 1))
        approximate = rng.random((count, n_layers)) < share
    else:
        approximate = rng.random((count, n_layers)) < rng.uniform(0.1, 0.9, size=(count, 1))
    return np.where(approximate, rows, exact)


def level_pool(surrogate, rng: np.random.Generator, count: int, max_drop: float) -> np.ndarray:
    """Assignments of mixed error levels: a target predicted drop uniform in 0..``max_drop`` points each.

    Uses only the surrogate's per-layer score table and drop map (see the module docstring).
    """
    contributions = surrogate.table.contributions
    n_layers = contributions.shape[0]
    exact_designs = np.all(contributions == 0, axis=0)
    log_c = np.log(np.where(contributions > 0, contributions, 1e-300))
    knots_x, knots_y = surrogate.drop_map.log_scores, surrogate.drop_map.drops
    targets = rng.uniform(0.0, max_drop, size=count)
    share = rng.uniform(0.1, 0.9, size=count)
    approximate = rng.random((count, n_layers)) < share[:, None]
    # inverse of the drop map: linear in score below its first knot, interpolated in log score above
    scores = np.where(targets < knots_y[0], np.exp(knots_x[0]) * targets / knots_y[0],
                      np.exp(np.interp(targets, knots_y, knots_x)))
    rows = np.full((count, n_layers), surrogate.exact_index(), dtype=np.int64)
    for i in range(count):
        layers = np.flatnonzero(approximate[i])
        if not len(layers) or scores[i] <= 0:
            continue
        level = np.log(scores[i] / len(layers))
        for layer in layers:
            distance = np.abs(log_c[layer] - level)
            distance[exact_designs] = np.inf
            near = np.flatnonzero(distance <= np.log(2.0))
            rows[i, layer] = rng.choice(near) if len(near) else int(np.argmin(distance))
    return rows


if __name__ == "__main__":
    main()

"""Is the surrogate's predicted top-1 drop right? Its ranking, and its value where studies operate (0-3 points).

    python benchmarks/surrogate_validation.py                     # ResNet-20 as the shipped study runs it
    python benchmarks/surrogate_validation.py --network resnet32-cifar10 \\
        --weights ../shared/data/resnet-cifar10/resnet32-d509ac18.th
    python benchmarks/surrogate_validation.py --compensation none --no-tune-weights --pool levels

The configuration is a study's (``--study``, default ``studies/resnet20_cifar10.toml``: weights tuned,
compensation searched per layer), changed by ``--network``, ``--weights``, ``--data``, ``--scheme``,
``--tune-weights`` / ``--no-tune-weights``, ``--compensation`` and ``--set TABLE.KEY=VALUE``. It builds
the study's surrogate (cached in the user cache), fits its drop model on ``--map-points`` real
evaluations of spread assignments (as a study's calibration does), then measures assignments of three
pools by bit-exact emulation on the first ``--limit`` test images:

* ``levels`` (the regime a search visits): each assignment draws a target predicted drop T, uniform in
  0-30 points, and a share, uniform in 10-90 %, of its layers to approximate; T becomes a target score
  through the drop model's inverse, and each approximate layer gets a design drawn among those whose
  score contribution in that layer lies within a factor 2 of that score / (approximate layers), so
  every layer errs at a comparable level and drops spread instead of piling up at chance.
* ``uniform``: a random share (10-90 %) of the layers approximate, each with a design drawn uniformly.
* ``small``: as ``levels`` with T uniform in 0-3 points: where studies operate.

Printed: the Spearman correlation of predicted and measured drops per pool (assignments measured within
2 points of chance excluded, and counted); the best 10 at equal energy (``--band-size`` candidates of
the levels pool, T in 0-20, whose multiplier energy saving is 25 +- 1 %, all measured: how many of
the surrogate's 10 lowest predicted drops are among the 10 lowest measured); over every assignment
measured at <= 3 points of drop, the median |predicted - measured| and how often the measured drop
lies in the predicted interval, next to the measurements' own noise: a drop on N images counts the
images an assignment flips to wrong less those it flips to right, so its standard error (the paired
one a study reports) grows with the images whose hit changes either way; the median |error| a
prediction exact in expectation would show with that noise is printed as the floor.
The last line:

    fidelity: spearman=<levels pool> top10=<hits, - when skipped> small_mae=<median abs error> n=<assignments <= 3 points>

Real evaluations are cached by assignment in ``--cache``, so a rerun measures only what it has not
seen; ``--out`` writes every assignment with its score, predicted drop, interval and measured drop.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

POOLS = ("levels", "uniform", "small")
CHANCE_MARGIN = 2.0  # points: measured drops this close to chance are excluded from the rank correlations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=_absolute, default=REPO / "studies" / "resnet20_cifar10.toml")
    parser.add_argument("--network", help="network name (as in study files)")
    parser.add_argument("--weights", type=_absolute, help="checkpoint of the network")
    parser.add_argument("--data", type=_absolute, help="test image folder")
    parser.add_argument("--scheme", choices=("int8", "uint8"))
    parser.add_argument("--tune-weights", action=argparse.BooleanOptionalAction, default=None,
                        help="tune weights to each design (default: the study's)")
    parser.add_argument("--compensation", choices=("none", "bias", "affine", "searched"),
                        help="default: the study's")
    parser.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE", help="any other study key")
    parser.add_argument("--pool", choices=(*POOLS, "all"), default="all")
    parser.add_argument("--assignments", type=int, default=100, help="assignments of the levels pool")
    parser.add_argument("--uniform", type=int, default=100, help="assignments of the uniform pool")
    parser.add_argument("--small", type=int, default=30, help="assignments of the small pool")
    parser.add_argument("--band-size", type=int, default=30, help="candidates in the equal-energy band (0: skip)")
    parser.add_argument("--limit", type=int, default=2000, help="test images per evaluation")
    parser.add_argument("--map-points", type=int, default=12, help="real evaluations the drop model is fitted on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=_absolute, default=Path("/tmp/axm-dse-evaluations"), help="measured top-1 per assignment")
    parser.add_argument("--out", type=_absolute, help="also write every measurement to this JSON file")
    args = parser.parse_args()

    from scipy.stats import spearmanr

    from dse.errors import UserError

    try:
        bench = Bench(args)
    except UserError as error:  # a bad flag or study key: one line, as dse says it
        raise SystemExit(f"surrogate_validation: {error}") from None
    surrogate = bench.surrogate
    n_layers = len(surrogate.layer_names)
    exact = surrogate.exact_index()
    print(f"exact int top-1 on {bench.images} images: {bench.exact_top1:.2f}%; drop to chance {bench.ceiling:.2f}")
    print(f"drop model: kappa=exp({surrogate.drop_map.log_kappa:.2f}) gamma={surrogate.drop_map.gamma:.2f} "
          f"spread (log sigma)={surrogate.drop_map.spread:.2f}")

    rng = np.random.default_rng(args.seed + 2)
    pools = POOLS if args.pool == "all" else (args.pool,)
    results: dict[str, dict] = {}
    for pool in pools:
        count = {"levels": args.assignments, "uniform": args.uniform, "small": args.small}[pool]
        if count <= 0:
            continue
        if pool == "uniform":
            rows = uniform_pool(rng, count, n_layers, len(surrogate.multiplier_names), exact)
        else:
            rows = level_pool(surrogate, rng, count, 0.0, 3.0 if pool == "small" else 30.0)
        results[pool] = bench.measure(rows, pool)

    for pool, r in results.items():
        live = r["measured"] < bench.ceiling - CHANCE_MARGIN
        rho = spearmanr(r["predicted"][live], r["measured"][live])[0] if live.sum() > 2 else float("nan")
        r["spearman"] = float(rho)
        print(f"{pool} pool: {len(live)} assignments, measured drop {r['measured'].min():.2f}..{r['measured'].max():.2f}; "
              f"Spearman(predicted, measured) = {rho:.3f} over {int(live.sum())} ({int((~live).sum())} within "
              f"{CHANCE_MARGIN:.0f} points of chance excluded)")

    hits = None
    if args.band_size > 0:
        hits = bench.band(rng, args.band_size)

    small = {k: np.concatenate([r[k] for r in results.values()]) for k in ("predicted", "measured", "low", "high")}
    within = small["measured"] <= 3.0
    n = int(within.sum())
    errors = np.abs(small["predicted"] - small["measured"])[within]
    small_mae = float(np.median(errors)) if n else float("nan")
    covered = float(np.mean((small["measured"][within] >= small["low"][within])
                            & (small["measured"][within] <= small["high"][within]))) if n else float("nan")
    bias = float(np.median((small["predicted"] - small["measured"])[within])) if n else float("nan")
    print(f"assignments measured at <= 3 points: {n}; median |predicted - measured| {small_mae:.2f} points "
          f"(median signed {bias:+.2f}); {100 * covered:.0f}% inside the predicted 80% interval")
    if n:
        noise = np.concatenate([r["noise"] for r in results.values()])[within]
        print(f"their measurement noise on {bench.images} images: median standard error {np.median(noise):.2f} points; "
              f"floor (median |error| of a prediction exact in expectation) {noise_floor(noise, bench.images):.2f}")
    if args.out:
        args.out.write_text(json.dumps({
            "pools": {p: {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in r.items()} for p, r in results.items()},
            "band": bench.band_record, "designs": surrogate.multiplier_names, "layers": surrogate.layer_names,
            "exact_top1": bench.exact_top1, "ceiling": bench.ceiling, "images": bench.images,
            "drop_model": surrogate.drop_map.to_dict(), "map_points": bench.map_record, "args": {
                k: str(v) for k, v in vars(args).items()},
        }))
    spearman = results.get("levels", {}).get("spearman", float("nan"))
    print(f"fidelity: spearman={spearman:.3f} top10={hits if hits is not None else '-'} small_mae={small_mae:.2f} n={n}")


def _absolute(path: str) -> Path:
    """A path on the command line: the shell's (relative to the working directory, not to the study file), made
    absolute so that the results file names it wherever it is read."""
    return Path(path).resolve()


def noise_floor(standard_errors: np.ndarray, images: int, draws: int = 2000, seed: int = 0) -> float:
    """Median |error| of measurements on ``images`` images with these standard errors around predictions exact in
    expectation. A measurement in which no image changed its hit has a standard error of 0 as computed, yet its
    expected drop is not known better than one image: each is taken as at least one image's worth (100 / images
    points, as the drop model's noise)."""
    rng = np.random.default_rng(seed)
    errors = np.maximum(np.asarray(standard_errors, dtype=np.float64), 100.0 / images)
    return float(np.median(np.abs(rng.standard_normal((draws, len(errors))) * errors)))


class Bench:
    """The study's target and surrogate, its fitted drop model, and cached real evaluations."""

    def __init__(self, args: argparse.Namespace, fit_map: bool = True) -> None:
        """``fit_map``: also measure the exact network and fit the drop model on ``args.map_points`` real evaluations
        (off: the surrogate's score alone, no evaluation)."""
        import logging

        from dse.study.config import load_study
        from dse.study.searched import SEARCHED, build_study_surrogate
        from dse.study.target import build_target
        from objectives.paths import cache_dir

        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        overrides = list(args.set)
        for key, value in (("network.name", args.network), ("network.weights", args.weights), ("data.test", args.data),
                           ("quantization.scheme", args.scheme), ("compensation.mode", args.compensation)):
            if value is not None:
                overrides.append(f"{key}={json.dumps(str(value))}")
        if args.tune_weights is not None:
            overrides.append(f"compensation.tune_weights={'true' if args.tune_weights else 'false'}")
        if args.network and not args.weights:  # another network: not the study's checkpoint (its data stays)
            overrides.append('network.weights=""')
        self.config = load_study(args.study, overrides)
        self.args = args
        self.mode = self.config.compensation.mode
        self.searched = self.mode == SEARCHED
        start = time.perf_counter()
        self.target = build_target(self.config)
        designs = self.target.multipliers
        folder = cache_dir() / "surrogates" / "validation" / self.config.digest()[:16]  # keyed inside by design set
        self.surrogate = build_study_surrogate(self.target, designs, self.mode, folder)
        self.images = min(args.limit, len(self.target.data.labels)) if args.limit else len(self.target.data.labels)
        if not fit_map:
            print(f"{self.config.network.name}, {self.target.qnet.scheme}, compensation {self.mode}: surrogate of "
                  f"{len(designs)} designs x {len(self.surrogate.layer_names)} layers ready in "
                  f"{time.perf_counter() - start:.0f} s")
            return
        args.cache.mkdir(parents=True, exist_ok=True)
        self.exact_top1, self.exact_hits = self.evaluation(np.full(len(self.surrogate.layer_names),
                                                                  self.surrogate.exact_index()))
        self.surrogate.margins = self.target.margins(self.images, args.seed)  # as a study: on the measured images
        self.ceiling = self.exact_top1 - 100.0 / self.target.data.num_classes
        rows = self.surrogate.spread_assignments(args.map_points, seed=args.seed)
        drops = np.array([self.exact_top1 - self.top1(row) for row in rows])
        self.surrogate.fit_drop_map(rows, drops, self.ceiling, self.images)
        self.map_record = {"assignments": rows.tolist(), "measured": drops.tolist(),
                           "score": self.surrogate.score(rows).tolist()}
        self.band_record: dict = {}
        print(f"{self.config.network.name}, {self.target.qnet.scheme}, compensation {self.mode}, weights "
              f"{'tuned' if self.config.compensation.tune_weights else 'as trained'}: surrogate of "
              f"{len(designs)} designs x {len(self.surrogate.layer_names)} layers and its drop model on "
              f"{args.map_points} real evaluations ready in {time.perf_counter() - start:.0f} s")

    def assignment(self, row: np.ndarray) -> tuple[dict[str, str], object]:
        """The design names of a surrogate row and its compensation (per layer when searched)."""
        names = self.surrogate.multiplier_names
        layers = self.surrogate.layer_names
        assignment = {layer: names[int(i)] for layer, i in zip(layers, row)}
        if not self.searched:
            return assignment, self.mode
        from dse.study.encoding import COMPENSATION_CHOICES

        choice = self.surrogate.compensations(np.asarray(row)[None])[0]
        return assignment, {layer: COMPENSATION_CHOICES[int(c)] for layer, c in zip(layers, choice)}

    def top1(self, row: np.ndarray) -> float:
        """Measured top-1 of an assignment (cached by configuration and assignment)."""
        return self.evaluation(row)[0]

    def evaluation(self, row: np.ndarray) -> tuple[float, bytes]:
        """Measured top-1 of an assignment and every image's hit, packed (cached by configuration and assignment)."""
        import base64

        assignment, compensation = self.assignment(row)
        blob = json.dumps({"config": self.config.digest(), "limit": self.images, "assign": assignment,
                           "comp": compensation}, sort_keys=True)
        path = self.args.cache / f"{hashlib.sha256(blob.encode()).hexdigest()[:20]}.json"
        cached = json.loads(path.read_text()) if path.is_file() else {}
        if "hits" not in cached:  # (older caches kept only the top-1)
            result = self.target.evaluate(assignment, compensation, self.images)
            cached = {"top1": float(result["top1"]), "hits": result["hits"]}
            path.write_text(json.dumps(cached))
        return float(cached["top1"]), base64.b64decode(cached["hits"])

    def measure(self, rows: np.ndarray, desc: str) -> dict[str, np.ndarray]:
        """Predicted drop, interval, measured drop and its standard error (points) of each row."""
        from tqdm import tqdm

        from objectives.evaluate import drop_standard_error

        measured, noise = [], []
        for row in tqdm(rows, desc=f"{desc} pool", unit="eval"):
            top1, hits = self.evaluation(row)
            measured.append(self.exact_top1 - top1)
            noise.append(drop_standard_error(self.exact_hits, hits, self.images))
        low, high = self.surrogate.predict_interval(rows)
        return {"assignments": rows, "score": self.surrogate.score(rows), "predicted": self.surrogate.predict_drop(rows),
                "low": low, "high": high, "measured": np.array(measured), "noise": np.array(noise)}

    def band(self, rng: np.random.Generator, size: int) -> int | None:
        """Best 10 at equal energy: prints and returns how many of the surrogate's best 10 are measured best 10."""
        from objectives.hardware_cost import EnergyModel

        energy = EnergyModel(self.target.layers, self.target.multipliers)
        names = [m.name for m in self.target.multipliers]
        to_energy = np.array([names.index(n) for n in self.surrogate.multiplier_names])
        columns = np.array([[layer.name for layer in self.target.layers].index(n) for n in self.surrogate.layer_names])
        candidates = level_pool(self.surrogate, rng, 5_000, 0.0, 20.0)
        full = np.zeros((len(candidates), len(self.target.layers)), dtype=np.int64)
        full[:, columns] = to_energy[candidates]
        saving = 100 * (1 - energy.relative_energy(full))
        band = np.flatnonzero(np.abs(saving - 25.0) < 1.0)[:size]
        if len(band) < 10:
            print(f"equal-energy band: only {len(band)} candidates save 24-26% of the multiplier energy; skipped")
            return None
        pool = candidates[band]
        r = self.measure(pool, "equal-energy band")
        picks = np.lexsort((r["score"], r["predicted"]))[:10]
        tenth = np.sort(r["measured"])[9]
        hits = int(np.sum(r["measured"][picks] <= tenth))
        chance = 10 * np.sum(r["measured"] <= tenth) / len(pool)
        self.band_record = {k: v.tolist() for k, v in r.items()} | {"picks": picks.tolist(), "hits": hits}
        print(f"equal-energy band (multiplier energy saved 24-26%, {len(pool)} candidates, all measured; 10th best "
              f"measured drop {tenth:.2f}): {hits} of the surrogate's best 10 are among the measured best 10 "
              f"(10 random picks: {chance:.1f} expected)")
        return hits


def uniform_pool(rng: np.random.Generator, count: int, n_layers: int, n_designs: int, exact: int) -> np.ndarray:
    """A random share (10-90%) of the layers approximate, each with a design drawn uniformly from all."""
    rows = rng.integers(0, n_designs, size=(count, n_layers))
    approximate = rng.random((count, n_layers)) < rng.uniform(0.1, 0.9, size=(count, 1))
    return np.where(approximate, rows, exact)


def level_pool(surrogate, rng: np.random.Generator, count: int, min_drop: float, max_drop: float) -> np.ndarray:
    """Assignments of mixed error levels: a target predicted drop uniform in ``min_drop``..``max_drop`` each.

    Uses only the surrogate's per-layer score table and drop model (see the module docstring).
    """
    contributions = surrogate.table.contributions
    n_layers = contributions.shape[0]
    exact_designs = np.all(contributions == 0, axis=0)
    log_c = np.log(np.where(contributions > 0, contributions, 1e-300))
    targets = rng.uniform(min_drop, max_drop, size=count)
    share = rng.uniform(0.1, 0.9, size=count)
    approximate = rng.random((count, n_layers)) < share[:, None]
    scores = surrogate.drop_map.inverse(targets)
    finite = np.isfinite(scores)
    scores = np.where(finite, scores, surrogate.drop_map.inverse(np.array([0.99 * surrogate.drop_map.curve.drops[-1]]))[0])
    rows = np.full((count, n_layers), surrogate.exact_index(), dtype=np.int64)
    for i in range(count):
        layers = np.flatnonzero(approximate[i])
        if not len(layers) or not scores[i] > 0:
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

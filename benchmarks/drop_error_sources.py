"""Where does the predicted drop's error come from: the score, or the step from logit error to drop?

    python benchmarks/surrogate_validation.py --assignments 40 --uniform 30 --small 30 --out results.json
    python benchmarks/drop_error_sources.py results.json                  # its uniform and small pools

The surrogate predicts an assignment's drop in two steps: the score (the predicted logit error power
E||d logits||^2 per image of the logits centred over classes, a sum over layers) and the drop model
(the score as isotropic logit noise through the exact network's margin curve,
:mod:`objectives.distortion.drop_model`). This runs the assignments a validation run measured
(``--pools``) again, keeping their logits, and splits the error between the steps:

* score vs the (centred) logit error power measured on the same images: their ratio and rank correlation,
  and the share of the whole power that shifts every logit of an image alike (it moves no decision);
* the **oracle**: the margin curve given each assignment's *measured* logit error power (sigma^2 =
  power / (classes - 1)), so no score error at all; if it is off by as much as the surrogate, the score
  is not what limits it;
* the **shuffled oracle**: each assignment's measured logit errors added to the exact logits of
  other images (the error's own distribution, independent of which images it hits);
* the noise floor: the median |error| a prediction exact in expectation would show, given each
  measurement's standard error (from the images whose hit changes).

For each: the median |predicted - measured| over the assignments measured at <= 3 points, and the
Spearman correlation per pool.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

SHUFFLES = 8  # permutations of the images per assignment in the shuffled oracle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="JSON written by surrogate_validation.py --out")
    parser.add_argument("--pools", default="uniform,small", help="comma-separated pools to run again (levels, "
                        "uniform, small, band)")
    args = parser.parse_args()
    from scipy.stats import spearmanr

    import surrogate_validation as validation

    try:
        record = json.loads(args.results.read_text())
        run = argparse.Namespace(**{k: _value(v) for k, v in record["args"].items()})
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SystemExit(f"drop_error_sources: {args.results}: not a surrogate_validation --out file ({error})")
    for key in ("study", "cache"):
        setattr(run, key, Path(getattr(run, key)))
    pools = [p for p in args.pools.split(",") if p]
    rows, measured, names = [], [], []
    for pool in pools:
        part = record["band"] if pool == "band" else record["pools"].get(pool)
        if not part:
            raise SystemExit(f"drop_error_sources: {args.results} has no {pool!r} pool")
        rows += part["assignments"]
        measured += part["measured"]
        names += [pool] * len(part["measured"])
    rows, measured, names = np.array(rows), np.array(measured), np.array(names)
    bench = validation.Bench(run)
    surrogate = bench.surrogate

    exact, labels = logits(bench, np.full(rows.shape[1], surrogate.exact_index()))
    classes = exact.shape[1]
    hit = exact.argmax(axis=1) == labels
    packed = np.packbits(hit).tobytes()
    from tqdm import tqdm

    from objectives.evaluate import drop_standard_error

    power, common, shuffled, noise, drops = [], [], [], [], []
    rng = np.random.default_rng(0)
    for row in tqdm(rows, desc="logits", unit="eval"):
        z, _ = logits(bench, row)
        error = z - exact
        alike = error.mean(axis=1, keepdims=True)  # the part that shifts every logit of an image alike
        power.append(float(((error - alike) ** 2).sum(axis=1).mean()))
        common.append(float(classes * (alike**2).mean()))
        hits = z.argmax(axis=1) == labels
        drops.append(100.0 * (hit.mean() - hits.mean()))
        noise.append(drop_standard_error(packed, np.packbits(hits).tobytes(), len(labels)))
        kept = [np.mean((exact + error[rng.permutation(len(labels))]).argmax(axis=1) == labels) for _ in range(SHUFFLES)]
        shuffled.append(100.0 * (hit.mean() - np.mean(kept)))
    power, common, shuffled, noise, drops = map(np.array, (power, common, shuffled, noise, drops))
    if np.max(np.abs(drops - measured)) > 1e-6:
        print(f"warning: the drops measured again differ from the file's by up to {np.max(np.abs(drops - measured)):.2f}")
    score = surrogate.score(rows)
    curve = surrogate.margins
    approximate = score > 0
    q1, median, q3 = np.percentile(power[approximate] / score[approximate], [25, 50, 75])
    print(f"{len(rows)} assignments of the {', '.join(pools)} pool(s), {bench.images} images")
    print(f"measured logit error power / score: median {median:.2f} (quartiles {q1:.2f}-{q3:.2f}); "
          f"Spearman(score, power) {spearmanr(score, power)[0]:.3f}")
    whole = power + common
    share = common[whole > 0] / whole[whole > 0]
    print(f"share of the whole logit error power alike in every logit (moves no decision): "
          f"median {np.median(share):.1%}, max {np.max(share):.1%}" if len(share) else "no logit error measured")
    predictions = {
        "surrogate (score, fitted model)": surrogate.predict_drop(rows),
        "oracle (measured power, curve)": curve(np.sqrt(power / curve.directions)),
        "shuffled oracle (measured errors)": shuffled,
    }
    small = measured <= 3.0
    print(f"{'prediction':36s} {'small_mae':>9s} {'signed':>7s}  " + "  ".join(f"{p:>9s}" for p in pools))
    for name, predicted in predictions.items():
        ranks = [spearmanr(predicted[names == p], measured[names == p])[0] for p in pools]
        print(f"{name:36s} {np.median(np.abs(predicted - measured)[small]):9.2f} "
              f"{np.median((predicted - measured)[small]):+7.2f}  " + "  ".join(f"{r:9.3f}" for r in ranks))
    print(f"{'noise floor (exact in expectation)':36s} {validation.noise_floor(noise[small], bench.images):9.2f}   "
          f"(median standard error {np.median(noise[small]):.2f}; {int(small.sum())} assignments at <= 3 points)")


def logits(bench, row: np.ndarray, dataset=None) -> tuple[np.ndarray, np.ndarray]:
    """Logits (N, C) and labels (N,) of an assignment on ``dataset`` (default: the benchmark's evaluation images)."""
    from dse.study.target import apply_assignment
    from objectives.distortion.drop_model import logits_on

    assignment, compensation = bench.assignment(np.asarray(row))
    by_name = {m.name: m for m in bench.target.multipliers}
    apply_assignment(bench.target.qnet, {k: by_name[v] for k, v in assignment.items()}, compensation)
    return logits_on(bench.target.qnet, bench.target.data.limited(bench.images) if dataset is None else dataset)


def _value(text: str):
    """An argument as surrogate_validation wrote it (str of the value) back to the value."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


if __name__ == "__main__":
    main()

"""Each layer's response to real designs, checked between the designs it measured, on held-out test images.

    python benchmarks/layer_response.py                      # ResNet-20 as the shipped study runs it
    python benchmarks/layer_response.py --designs 4 --images 1000

The surrogate maps every design's linearised contribution through its layer's response, measured with
:data:`objectives.distortion.layer_response.RESPONSE_DESIGNS` real designs alone in the layer on the
calibration images (at evenly spaced ranks of its contributions, smallest to largest). This puts ``--designs``
designs per layer, at the ranks halfway between (sixteenths with the default 8), alone in that layer, runs the
quantised network by bit-exact emulation on the first ``--images`` test images (held out: not the calibration
images) and measures the centred logit error power each causes, against the surrogate's contribution for it. The
ranks are taken on the surrogate's table; with compensation searched that table takes each design's best of three
compensations, whose responses measured designs at their own ranks, so a pick is mostly, not surely, a design the
response did not measure; the images are held out either way. Per layer it prints the measured power of the
smallest design (what any error at all costs: requantisation rounding downstream), the ratio measured /
contribution at the smallest and the largest design, and how well the contributions order the measurements.
Ratios near 1 everywhere say the response carries over to designs and images it did not see; with
``--set surrogate.response_designs=0`` the same check runs against the linearised table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", type=lambda p: Path(p).resolve(), default=REPO / "studies" / "resnet20_cifar10.toml")
    parser.add_argument("--set", action="append", default=[], metavar="TABLE.KEY=VALUE", help="any other study key")
    parser.add_argument("--designs", type=int, default=8, help="designs measured alone per layer (>= 2)")
    parser.add_argument("--images", type=int, default=500, help="held-out test images per evaluation")
    args = parser.parse_args()
    if args.designs < 2 or args.images < 1:
        raise SystemExit("layer_response: --designs must be >= 2 and --images >= 1")
    from scipy.stats import spearmanr
    from tqdm import tqdm

    import drop_error_sources
    import surrogate_validation as validation
    from dse.errors import UserError
    from dse.output import format_table

    run = argparse.Namespace(study=args.study, network=None, weights=None, data=None, scheme=None, tune_weights=None,
                             compensation=None, set=args.set, limit=None)
    try:
        bench = validation.Bench(run, fit_map=False)  # the score alone: no drop model, no test-image evaluation
    except UserError as error:
        raise SystemExit(f"layer_response: {error}") from None
    surrogate = bench.surrogate
    images = bench.target.data.limited(args.images)
    exact = surrogate.exact_index()
    table = surrogate.table.contributions
    n_layers = table.shape[0]
    reference, _ = drop_error_sources.logits(bench, np.full(n_layers, exact), images)

    def power(row: np.ndarray) -> float:
        """Centred logit error power per image of an assignment against the exact network."""
        error = drop_error_sources.logits(bench, row, images)[0] - reference
        error -= error.mean(axis=1, keepdims=True)
        return float((error**2).sum(axis=1).mean())

    rows, ratios = [], []
    for li in tqdm(range(n_layers), desc="layers", unit="layer"):
        candidates = [m for m in np.argsort(table[li]) if m != exact and table[li, m] > 0]
        if len(candidates) < 2:
            continue
        ranks = (np.arange(args.designs) + 0.5) / args.designs  # halfway between the response's ranks
        picks = sorted({candidates[int(round(q * (len(candidates) - 1)))] for q in ranks}, key=lambda m: table[li, m])
        measured = []
        for m in picks:
            row = np.full(n_layers, exact)
            row[li] = m
            measured.append(power(row))
        contribution = table[li, picks]
        ratio = np.array(measured) / contribution
        ratios.append(np.log(ratio))
        rho = spearmanr(contribution, measured)[0] if len(picks) > 2 else float("nan")
        rows.append([surrogate.layer_names[li], f"{measured[0]:.3g}", f"{ratio[0]:.2f}", f"{ratio[-1]:.2f}",
                     f"{contribution[-1]:.3g}", f"{rho:.2f}"])
    print(format_table(["layer", "smallest design: measured", "ratio there", "ratio at largest", "largest contribution",
                        "Spearman"], rows, "lrrrrr"))
    spread = np.concatenate(ratios)
    print(f"measured centred logit error power / score contribution over {len(spread)} single-layer evaluations on "
          f"{len(images)} held-out test images: median {np.exp(np.median(spread)):.2f}, quartiles "
          f"{np.exp(np.percentile(spread, 25)):.2f}-{np.exp(np.percentile(spread, 75)):.2f}, std of its log "
          f"{spread.std():.3f}")


if __name__ == "__main__":
    main()

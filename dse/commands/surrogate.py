"""``dse distortion``, ``dse inject`` and ``dse predict``: the distortion surrogate, validated on real networks."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import UserError
from ..errors import objective_errors as _user_errors
from ..output import atomic_write_bytes, atomic_write_text, format_table
from .inference import DATA_HELP, NETWORK_HELP, add_device_argument, network_data, resolve_device_argument

SCHEMES = ("int8", "uint8")
COMPENSATIONS = ("none", "bias", "affine")
DEFAULT_MAGNITUDES = (0.0, 0.001, 0.003, 0.01, 0.03, 0.1)


def _network_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--network", required=True, help=NETWORK_HELP)
    parser.add_argument("--weights", help="checkpoint (state dict, loaded with weights_only=True)")
    parser.add_argument("--data", help=DATA_HELP)
    parser.add_argument("--scheme", choices=SCHEMES, default="int8", help="int8 (signed designs) or uint8 (unsigned designs)")
    parser.add_argument("--calibration", type=int, default=256, metavar="N", help="calibration images (default 256)")
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="PATH",
                        help="also import designs from a LUT folder or metadata file (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice (default 0)")
    add_device_argument(parser)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dse distortion``, ``dse inject`` and ``dse predict``."""
    dist = subparsers.add_parser(
        "distortion", help="predicted vs measured layer distortion ||dC||_F for every layer and design",
        description="For each layer and design: ||dC||_F predicted at three levels (uniform: the paper's closed "
        "form; histogram: moments under the layer's operands; weight-aware) against the value measured by "
        "bit-exact emulation on real images.",
    )
    _network_arguments(dist)
    dist.add_argument("--multiplier", action="append", default=[], metavar="NAME", help="only these designs (repeatable; default: every design of the scheme's signedness)")
    dist.add_argument("--limit", type=int, default=32, metavar="N", help="images whose ||dC||_F is measured (default 32)")
    dist.add_argument("--json", action="store_true", help="print the records (layer, multiplier, level, predicted, measured) as JSON")
    dist.add_argument("--plot", type=Path, metavar="PATH", help="write a log-log scatter of predicted vs measured (PNG)")
    dist.set_defaults(handler=distortion_command)

    inject = subparsers.add_parser(
        "inject", help="the paper's experiment: synthetic errors of chosen (mean, std) in every layer",
        description="Every product of every conv/linear layer gets a Gaussian error of the given mean and standard "
        "deviation, relative to the layer's product RMS; accuracy is measured for every (mean, std) of the grid.",
    )
    _network_arguments(inject)
    inject.add_argument("--grid", type=_floats, default=DEFAULT_MAGNITUDES, metavar="X,Y,...",
                        help="relative magnitudes used for both the mean and the std (default 0,0.001,0.003,0.01,0.03,0.1)")
    inject.add_argument("--axes", action="store_true",
                        help="measure only all-bias (mean x, std 0) and all-variance (mean 0, std x) points: "
                        "2n-1 evaluations instead of n^2")
    inject.add_argument("--limit", type=int, default=1000, metavar="N", help="evaluation images (default 1000)")
    inject.add_argument("--out", type=Path, default=Path("inject"), metavar="DIR", help="folder for JSON and PNG (default ./inject)")
    inject.add_argument("--json", action="store_true", help="print the grid's records as JSON")
    inject.set_defaults(handler=inject_command)

    predict = subparsers.add_parser("predict", help="predicted top-1 drop of one per-layer assignment")
    _network_arguments(predict)
    predict.add_argument("--assign", type=Path, required=True, metavar="FILE.json", help="JSON object layer -> multiplier")
    predict.add_argument("--compensate", choices=COMPENSATIONS, default="none", help="compensation the assignment runs with")
    predict.add_argument("--map-points", type=int, default=12, metavar="N", help="real evaluations fitting the score -> drop map (default 12)")
    predict.add_argument("--limit", type=int, default=1000, metavar="N", help="images of each of those evaluations (default 1000)")
    predict.add_argument("--json", action="store_true", help="print the prediction as JSON")
    predict.set_defaults(handler=predict_command)


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError("expected non-negative numbers")
    return values


def _positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise UserError(f"--{name.replace('_', '-')} must be a positive number, got {value}")


def _quantised(args: argparse.Namespace, device):
    """Network, data split and quantised network (on ``device``) from the common arguments."""
    from objectives.networks import get_network
    from objectives.quantize import quantize

    network = get_network(args.network, args.weights)
    data = network_data(network, args.data, calibration_size=args.calibration)
    qnet = quantize(network.model, data.calibration, network.input_shape, args.scheme, name=network.name, device=device)
    return network, data, qnet


def _designs(args: argparse.Namespace, names: list[str] | None = None):
    from multipliers import ImportDesignError, Zoo

    try:
        zoo = Zoo.default(args.imports)
        signed = args.scheme == "int8"
        if names:
            chosen = [zoo[n] for n in names]
            wrong = [m.name for m in chosen if m.signed != signed]
            if wrong:
                kind = "signed" if signed else "unsigned"
                raise UserError(f"scheme {args.scheme} takes {kind} designs; not {', '.join(wrong)}")
            return chosen
        return list(zoo.select(signed=signed))
    except (ImportDesignError, KeyError, ValueError) as error:
        raise UserError(str(error).strip("'\"")) from None


# -- dse distortion ---------------------------------------------------------------------------------
def distortion_command(args: argparse.Namespace) -> int:
    """Handler of ``dse distortion``."""
    _positive(args, "limit", "calibration")
    device = resolve_device_argument(args)
    designs = _designs(args, args.multiplier or None)
    with _user_errors():
        import torch

        from objectives.distortion.operands import collect_operands
        from objectives.distortion.validation import compare_distortion, kinds, summarise

        _, data, qnet = _quantised(args, device)
        operands = collect_operands(qnet, seed=args.seed, progress=not args.json)
        evaluation = data.limited(args.limit)
        images = torch.stack([evaluation[i][0] for i in range(len(evaluation))])
        records = compare_distortion(qnet, operands, images, designs, progress=not args.json)
    summary = summarise(records)
    if args.plot:
        from ..plots import distortion_scatter

        atomic_write_bytes(args.plot, distortion_scatter(records, summary))
    if args.json:
        print(json.dumps([r.as_dict() for r in records]))
        return 0
    rows = []
    for kind in kinds(records):
        for level, s in summarise(records, kind).items():
            label = "operand-aware" if kind == "matmul" and level == "weight-aware" else level
            rows.append((kind, label, s["pairs"], f"{100 * s['median_abs_rel_error']:.1f}%",
                         f"{100 * s['median_rel_error']:+.1f}%", f"{100 * s['p90_abs_rel_error']:.1f}%",
                         f"{s['pearson_log']:.3f}", f"{s['spearman']:.3f}"))
    print(format_table(("layers", "level", "pairs", "median |rel err|", "median rel err", "90% |rel err|",
                        "Pearson (log)", "Spearman"), rows, "llrrrrrr"))
    print(f"||dC||_F predicted vs measured on {images.shape[0]} images, {len(designs)} designs x {len(qnet.layers)} layers "
          "(products of two activations: the operand-aware level in place of the weight-aware one)")
    if args.plot:
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


# -- dse inject -------------------------------------------------------------------------------------
def inject_command(args: argparse.Namespace) -> int:
    """Handler of ``dse inject``."""
    _positive(args, "limit", "calibration")
    device = resolve_device_argument(args)
    out = args.out
    with _user_errors():
        from objectives.distortion.injection_study import injection_grid

        _, data, qnet = _quantised(args, device)
        result = injection_grid(qnet, data.limited(args.limit), args.grid, seed=args.seed, progress=not args.json,
                                axes=args.axes)
    from ..plots import injection_plots

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create {out}: {error.strerror}") from None
    atomic_write_text(out / "inject.json", json.dumps(result, indent=1))
    heatmap, scatter = injection_plots(result)
    atomic_write_bytes(out / "accuracy_map.png", heatmap)
    atomic_write_bytes(out / "accuracy_vs_distortion.png", scatter)
    if args.json:
        print(json.dumps(result))
        return 0
    rows = [(f"{r['mean']:g}", f"{r['std']:g}", f"{r['distortion']:.4f}", f"{r['top1']:.2f}") for r in result["grid"]]
    print(format_table(("mean (rel)", "std (rel)", "predicted D", "top-1 %"), rows, "rrrr"))
    print(f"exact int8: {result['exact_top1']:.2f}% on {result['images']} images")
    if result["equal_power"]:
        exact = result["exact_top1"]
        rows = [(f"{r['power']:.2g}", f"{r['bias_top1']:.2f}", f"{exact - r['bias_top1']:.2f}",
                 f"{r['variance_top1']:.2f}", f"{exact - r['variance_top1']:.2f}") for r in result["equal_power"]]
        print("equal error power per product (relative to the product RMS squared), in every layer:")
        print(format_table(("power", "all bias top-1 %", "drop", "all variance top-1 %", "drop"), rows, "rrrrr"))
    print(f"wrote {out / 'inject.json'}, {out / 'accuracy_map.png'}, {out / 'accuracy_vs_distortion.png'}", file=sys.stderr)
    return 0


# -- dse predict ------------------------------------------------------------------------------------
def _check_mapping(path: Path, mapping: dict[str, str], layers: list[str], designs: list[str]) -> None:
    """Every layer of the assignment file ``path`` is a GEMM layer, every design one the surrogate covers."""
    import difflib

    for layer, design in mapping.items():
        if layer not in layers:
            close = difflib.get_close_matches(layer, layers, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else "; `dse layers NETWORK` lists them"
            raise UserError(f"{path}: unknown layer {layer!r}{hint}")
        if design not in designs:
            close = difflib.get_close_matches(design, designs, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UserError(f"{path}: layer {layer!r}: design {design!r} is not among the surrogate's designs (the "
                            f"zoo's designs of this scheme, plus --import){hint}")


def predict_command(args: argparse.Namespace) -> int:
    """Handler of ``dse predict``."""
    _positive(args, "limit", "calibration", "map_points")
    device = resolve_device_argument(args)
    designs = _designs(args)
    with _user_errors():
        from objectives.assignment import load_assignment
        from objectives.distortion.cache import cached_surrogate

        mapping = load_assignment(args.assign)
        network, data, qnet = _quantised(args, device)
        _check_mapping(args.assign, mapping, list(qnet.layers), [m.name for m in designs])  # before the surrogate
        # the cache key leaves the device out: the surrogate is the same on every device
        surrogate = cached_surrogate(
            qnet, data, designs, args.compensate, key_parts=(network.name, str(args.weights), str(args.data), str(args.calibration)),
            map_points=args.map_points, limit=args.limit, seed=args.seed, progress=not args.json,
        )
        try:
            row = surrogate.indices(mapping)
        except KeyError as error:
            raise UserError(f"{args.assign}: {str(error).strip(chr(39) + chr(34))}") from None
    score = float(surrogate.score(row[None])[0])
    drop = float(surrogate.predict_drop(row[None])[0])
    low, high = (float(v[0]) for v in surrogate.predict_interval(row[None]))
    if args.json:
        print(json.dumps({"predicted_drop": drop, "predicted_drop_low": low, "predicted_drop_high": high, "score": score,
                          "compensation": args.compensate}))
    else:
        print(f"{network.name} with {args.assign}: predicted top-1 drop {drop:.2f} points, 80% interval "
              f"[{low:.2f}, {high:.2f}] on {args.limit} images (score {score:.3g}, {args.compensate} compensation)")
    return 0

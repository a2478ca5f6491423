"""``dse eval`` (accuracy of a float, quantised or AxM-emulated network) and ``dse layers`` (its GEMMs)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import UserError
from ..errors import objective_errors as _user_errors

SCHEMES = ("int8", "uint8")
COMPENSATIONS = ("none", "bias", "affine", "threshold")  # objectives.compensation.MODES, without importing torch here
METHODS = ("auto", "exact", "lowrank", "gather", "reference")
NETWORK_HELP = ("digits-cnn, digits-vit, resnet{20,32,44,56,110}-cifar10, torchvision:<name>, or your own: "
                "path/to/file.py:function or package.module:function returning an nn.Module (README: your own network)")
DATA_HELP = ("ImageFolder of evaluation images (not needed for digits-cnn and digits-vit), or a data set factory "
             "package.module:function / path/to/file.py:function returning a torch data set of (image, label)")


def network_data(network, data, download: bool = False, calibration_size: int = 256):
    """The calibration and evaluation split of ``--data``: an ImageFolder (or none), or a data set factory."""
    from objectives.networks.user import factory_split, is_factory_spec

    if data is not None and is_factory_spec(data):
        return factory_split(network, data, calibration_size)
    from objectives.data import load_data

    return load_data(network, data, download=download, calibration_size=calibration_size)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dse eval`` and ``dse layers``."""
    ev = subparsers.add_parser(
        "eval", help="accuracy of a network: float, exact int8/uint8, or with approximate multipliers",
        description="Quantise a network (post-training, calibrated on a few hundred images) and evaluate it. "
        "LUT convention everywhere: row = activation operand, column = weight operand.",
    )
    ev.add_argument("--network", required=True, help=NETWORK_HELP)
    ev.add_argument("--weights", help="checkpoint (state dict, loaded with weights_only=True); torchvision: also a weights name such as DEFAULT (downloads)")
    ev.add_argument("--data", help=DATA_HELP)
    ev.add_argument("--download", action="store_true", help="CIFAR-10: fetch it with torchvision into the cache (needs a network)")
    ev.add_argument("--scheme", choices=SCHEMES, default="int8", help="int8: signed symmetric (default); uint8: unsigned codes with zero points")
    mode = ev.add_mutually_exclusive_group()
    mode.add_argument("--float", action="store_true", help="evaluate the unquantised float network")
    mode.add_argument("--multiplier", metavar="NAME", help="one zoo design in every layer")
    mode.add_argument("--assign", type=Path, metavar="FILE.json", help="per-layer assignment: JSON object layer -> multiplier")
    ev.add_argument("--compensate", choices=COMPENSATIONS, default="none", help="per-channel error compensation folded into requantisation (threshold: offset unbiased at each channel's ReLU threshold; see objectives/INFERENCE.md)")
    ev.add_argument("--tune-weights", action="store_true", help="store each approximate layer's weights tuned to its design (ALWANN; objectives/weight_tuning.py)")
    ev.add_argument("--limit", type=int, metavar="N", help="evaluate a fixed class-balanced subset of N images")
    ev.add_argument("--calibration", type=int, default=256, metavar="N", help="calibration images (default 256)")
    ev.add_argument("--method", choices=METHODS, default="auto", help="emulation kernel path (default auto)")
    ev.add_argument("--batch-size", type=int, default=256, help="images per batch (default 256)")
    ev.add_argument("--import", dest="imports", action="append", default=[], metavar="PATH", help="also import designs from a LUT folder or metadata file (repeatable)")
    add_device_argument(ev)
    ev.add_argument("--json", action="store_true", help='print {"top1", "top5", "images", "seconds"} as JSON')
    ev.set_defaults(handler=eval_command)

    layers = subparsers.add_parser(
        "layers", help="a network's GEMM layers (conv, linear, matmul: products of two activations) with GEMM dims "
        "(M per image, K, N) and MACs")
    layers.add_argument("network", help=NETWORK_HELP)
    layers.add_argument("--json", action="store_true", help="print a JSON array")
    layers.set_defaults(handler=layers_command)


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    """``--device`` (checked by :func:`resolve_device_argument` in the handler, so a mistake is one line)."""
    parser.add_argument("--device", default="auto", metavar="DEVICE",
                        help="where inference runs: cpu, cuda, cuda:N or auto (default: CUDA when present, else cpu); "
                        "results are identical on every device")


def resolve_device_argument(args: argparse.Namespace):
    """The torch device of ``--device``; a device that is unknown or not on this machine is a one-line user error."""
    with _user_errors():
        from objectives.device import resolve_device

        return resolve_device(args.device)


def eval_command(args: argparse.Namespace) -> int:
    """Handler of ``dse eval``."""
    if args.float and (args.compensate != "none" or args.tune_weights):
        raise UserError("--compensate and --tune-weights apply to quantised networks; drop them or --float")
    for flag, value in (("--limit", args.limit), ("--calibration", args.calibration), ("--batch-size", args.batch_size)):
        if value is not None and value <= 0:
            raise UserError(f"{flag} must be a positive number, got {value}")
    device = resolve_device_argument(args)  # first: nothing is loaded for a device this machine lacks
    with _user_errors():
        from objectives.evaluate import evaluate
        from objectives.networks import get_network

        network = get_network(args.network, args.weights)
        data = network_data(network, args.data, download=args.download, calibration_size=args.calibration)
        if args.float:
            result = evaluate(network.model.to(device), data, args.limit, args.batch_size)
            label = "float"
        else:
            from objectives.assignment import load_assignment
            from objectives.errors import AssignmentError
            from objectives.quantize import quantize

            net = quantize(network.model, data.calibration, network.input_shape, args.scheme, batch_size=args.batch_size,
                           name=network.name, device=device)
            mapping = {}
            if args.multiplier:
                mapping = {layer: args.multiplier for layer in net.layers}
            elif args.assign:
                mapping = load_assignment(args.assign)
            net.weight_tuning = args.tune_weights
            try:
                net.set_assignment(mapping, compensation=args.compensate, method=args.method, imports=args.imports)
            except AssignmentError as error:  # a layer or design the file names: say which file
                raise UserError(f"{args.assign}: {error}" if args.assign else str(error)) from None
            result = evaluate(net, data, args.limit, args.batch_size)
            what = args.multiplier or (str(args.assign) if args.assign else "exact")
            label = f"{args.scheme}, {what}" + (f", {args.compensate} compensation" if mapping and args.compensate != "none" else "")
            label += ", weights tuned" if mapping and args.tune_weights else ""
    if args.json:
        print(json.dumps(result.as_dict()))
    else:
        print(
            f"{network.name} ({label}): top-1 {result.top1:.2f}%  top-5 {result.top5:.2f}%  "
            f"({result.images} images, {result.seconds:.1f} s)"
        )
    return 0


def layers_command(args: argparse.Namespace) -> int:
    """Handler of ``dse layers``."""
    with _user_errors():
        from objectives.layers import gemm_layers
        from objectives.networks import get_network

        network = get_network(args.network, pretrained=False)
        layers = gemm_layers(network.model, network.input_shape)
    if args.json:
        print(json.dumps([info.as_dict() for info in layers.values()], indent=1))
        return 0
    from ..output import format_table

    rows = [(i.name, i.kind, i.m, i.k, i.n, i.heads, f"{i.macs:,}") for i in layers.values()]
    total = sum(i.macs for i in layers.values())
    print(format_table(("layer", "type", "M/image", "K", "N", "heads", "MACs"), rows, "llrrrrr"))
    kinds = {kind: sum(1 for i in layers.values() if i.kind == kind) for kind in ("conv", "linear", "matmul")}
    counts = ", ".join(f"{count} {kind}" for kind, count in kinds.items() if count)
    print(f"{len(rows)} layers ({counts}), {total:,} MACs per image; M/image counts the rows of every head "
          "(matmul: products of two activations, heads x rows)")
    return 0

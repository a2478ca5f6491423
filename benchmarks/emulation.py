"""Whole-network emulation speed: float32, exact int8 and each zoo family's emulation, side by side.

    python benchmarks/emulation.py [--device cpu|cuda] [--network resnet20-cifar10|torchvision:resnet50]
                                   [--batch N] [--reps 5] [--threads N] [--scheme int8|uint8] [--check auto|reference|cpu|none]

One representative design per family (the middle of its grid) goes into every layer. Each
configuration's forward passes are interleaved with float32 forward passes of the same batch on
the same device (PyTorch defaults: cuDNN, TF32 convolutions on GPUs), and its ratio is
median(emulated) / median(float32) from that same loop, so load on the machine affects both alike.
The last line is the geometric mean of the families' ratios.

Networks: ``resnet20-cifar10`` (the published weights and the shared CIFAR-10 JPEGs when they are
there, else random), batch 256 on the CPU and 1024 on a GPU by default; ``torchvision:resnet50``
(random weights, random 224x224 inputs: enough for speed), batch 256. Before timing, every emulated
configuration's logits on two images are checked bit-exact: against the reference kernel (one LUT
lookup per product; ``--check reference``, the default for ResNet-20), or against the same network
emulated on the CPU (``--check cpu``, the default for ResNet-50 on a GPU, whose reference pass would
take minutes).

The float32 baseline is the network as torchvision-style code builds it (NCHW). The emulated layers
run their integer convolutions channels-last (faster in oneDNN, see objectives/emulation/_stacked.py);
a "float32 channels-last" row shows what the same layout does for the float network, for reference.
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from multipliers.families import FAMILIES  # noqa: E402
from objectives.paths import shared_data_dir  # noqa: E402


def load(network_name: str, batch: int, calibration: int):
    """The float network, its calibration data and a batch of inputs, and where they came from."""
    from torch.utils.data import TensorDataset

    from objectives.data import load_data
    from objectives.networks import get_network

    if network_name != "resnet20-cifar10":
        torch.manual_seed(0)
        network = get_network(network_name, pretrained=False)
        shape = network.input_shape
        calib = TensorDataset(torch.randn(calibration, *shape), torch.zeros(calibration, dtype=torch.long))
        return network, calib, torch.randn(batch, *shape), "random weights and inputs"
    data_dir = shared_data_dir()
    weights = data_dir / "resnet-cifar10" / "resnet20-12fca82f.th"
    images = data_dir / "cifar10-test-jpg"
    if weights.is_file() and images.is_dir():
        network = get_network(network_name, weights)
        data = load_data(network, images, calibration_size=calibration)
        x = torch.stack([data.evaluation[i % len(data.evaluation)][0] for i in range(batch)])
        return network, data.calibration, x, "published weights, CIFAR-10 JPEGs"
    torch.manual_seed(0)
    network = get_network(network_name, pretrained=False)
    calib = TensorDataset(torch.randn(calibration, 3, 32, 32), torch.zeros(calibration, dtype=torch.long))
    return network, calib, torch.randn(batch, 3, 32, 32), "random weights and images (no shared data)"


def side_by_side(run, baseline, reps: int, device: torch.device) -> tuple[float, float]:
    """Median seconds of ``run`` and ``baseline``, calls interleaved (after one warm-up each)."""
    from objectives.device import synchronize

    run()
    baseline()
    ts, tb = [], []
    for _ in range(reps):
        for fn, times in ((baseline, tb), (run, ts)):
            synchronize(device)
            start = time.perf_counter()
            fn()
            synchronize(device)
            times.append(time.perf_counter() - start)
    return statistics.median(ts), statistics.median(tb)


def representatives(signed: bool) -> list:
    """One design per family (the middle of its grid), exact excluded."""
    out = []
    for family in FAMILIES:
        designs = list(family.designs(signed=signed))
        if family.name != "exact" and designs:
            out.append(designs[len(designs) // 2])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    parser.add_argument("--network", default="resnet20-cifar10", help="resnet20-cifar10 (default) or torchvision:<name>")
    parser.add_argument("--batch", type=int, default=None, help="default: 256, or 1024 for ResNet-20 on a GPU")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--scheme", choices=("int8", "uint8"), default="int8")
    parser.add_argument("--calibration", type=int, default=256)
    parser.add_argument("--check", choices=("auto", "reference", "cpu", "none"), default="auto",
                        help="bit-exactness check of every configuration before timing (see the module doc)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from objectives.device import resolve_device
    from objectives.errors import ObjectiveInputError
    from objectives.quantize import quantize

    try:
        device = resolve_device(args.device)
    except ObjectiveInputError as error:
        raise SystemExit(f"emulation.py: {error}") from None
    gpu = device.type == "cuda"
    small = args.network == "resnet20-cifar10"
    batch = args.batch or (1024 if gpu and small else 256)
    check = args.check if args.check != "auto" else ("reference" if small or not gpu else "cpu")
    network, calibration, x, source = load(args.network, batch, min(args.calibration, 64) if not small else args.calibration)
    float_model = network.model.eval().to(device)
    x = x.to(device)
    net = quantize(network.model, calibration, network.input_shape, args.scheme, device=device)
    where = torch.cuda.get_device_name(device) if gpu else f"{torch.get_num_threads()} threads"
    print(f"{args.network} ({source}), {args.scheme}, batch {batch}, {device} ({where}), torch {torch.__version__}, "
          f"{args.reps} reps (medians)")
    print(f"{'configuration':<24} {'paths':<16} {'img/s':>9} {'float32 img/s':>14} {'ratio':>7}")

    def baseline():
        with torch.no_grad():
            float_model(x)

    def report(label: str, paths: str) -> float:
        t, tb = side_by_side(lambda: net(x), baseline, args.reps, device)
        print(f"{label:<24} {paths:<16} {len(x) / t:9.0f} {len(x) / tb:14.0f} {t / tb:6.2f}x", flush=True)
        return t / tb

    t, _ = side_by_side(baseline, baseline, args.reps, device)
    print(f"{'float32':<24} {'-':<16} {len(x) / t:9.0f} {len(x) / t:14.0f} {1:6.2f}x")
    # For reference only: the float network in channels-last memory (the emulated layers run their
    # convolutions channels-last); the ratios below are against the network as given.
    cl_model = copy.deepcopy(float_model).to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)

    def channels_last_float():
        with torch.no_grad():
            cl_model(x_cl)

    t, tb = side_by_side(channels_last_float, baseline, args.reps, device)
    print(f"{'float32 channels-last':<24} {'-':<16} {len(x) / t:9.0f} {len(x) / tb:14.0f} {t / tb:6.2f}x")
    net.set_assignment({})
    report(f"exact {args.scheme}", "exact")
    checker = None
    if check == "cpu" and gpu:
        checker = quantize(network.model, calibration, network.input_shape, args.scheme)
    ratios = []
    probe = x[:2]
    for multiplier in representatives(args.scheme == "int8"):
        mapping = {layer: multiplier for layer in net.layers}
        if check == "reference":
            net.set_assignment(mapping, method="reference")
            want = net(probe).cpu()
        elif checker is not None:
            checker.set_assignment(mapping)
            want = checker(probe.cpu())
        net.set_assignment(mapping)
        if check != "none" and not torch.equal(net(probe).cpu(), want):
            raise SystemExit(f"MISMATCH: {multiplier.name} differs from the {check} logits")
        paths = ",".join(sorted({net.layer(n).arithmetic.kernel.method for n in net.layers}))
        ratios.append(report(f"{multiplier.family}: {multiplier.name}", paths))
    geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print(f"emulation slowdown geomean: {geomean:.2f}x")


if __name__ == "__main__":
    main()

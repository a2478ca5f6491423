"""Images per second of ResNet-20 on CPU: float32, exact int8 and each zoo family's emulation, side by side.

    python benchmarks/emulation.py [--batch 256] [--reps 5] [--threads N] [--scheme int8|uint8]

One representative design per family (the middle of its grid) goes into every layer. Each
configuration's forward passes are interleaved with float32 forward passes of the same batch,
and its ratio is median(emulated) / median(float32) from that same loop, so load on the machine
affects both alike. Logits of every emulated configuration are checked bit-exact against the
reference kernel on two images. The last line is the geometric mean of the families' ratios.

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


def load(batch: int, calibration: int):
    """ResNet-20 (published weights when the shared data is there) and a batch of CIFAR-10 images."""
    from objectives.data import load_data
    from objectives.networks import get_network

    data_dir = shared_data_dir()
    weights = data_dir / "resnet-cifar10" / "resnet20-12fca82f.th"
    images = data_dir / "cifar10-test-jpg"
    if weights.is_file() and images.is_dir():
        network = get_network("resnet20-cifar10", weights)
        data = load_data(network, images, calibration_size=calibration)
        x = torch.stack([data.evaluation[i][0] for i in range(batch)])
        return network, data.calibration, x, "published weights, CIFAR-10 JPEGs"
    from torch.utils.data import TensorDataset

    torch.manual_seed(0)
    network = get_network("resnet20-cifar10", pretrained=False)
    calib = TensorDataset(torch.randn(calibration, 3, 32, 32), torch.zeros(calibration, dtype=torch.long))
    return network, calib, torch.randn(batch, 3, 32, 32), "random weights and images (no shared data)"


def side_by_side(run, baseline, reps: int) -> tuple[float, float]:
    """Median seconds of ``run`` and ``baseline``, calls interleaved (after one warm-up each)."""
    run()
    baseline()
    ts, tb = [], []
    for _ in range(reps):
        for fn, times in ((baseline, tb), (run, ts)):
            start = time.perf_counter()
            fn()
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
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--scheme", choices=("int8", "uint8"), default="int8")
    parser.add_argument("--calibration", type=int, default=256)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    from objectives.quantize import quantize

    network, calibration, x, source = load(args.batch, args.calibration)
    float_model = network.model.eval()
    net = quantize(float_model, calibration, network.input_shape, args.scheme)
    print(f"ResNet-20 ({source}), {args.scheme}, batch {args.batch}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {args.reps} reps (medians)")
    print(f"{'configuration':<24} {'paths':<16} {'img/s':>9} {'float32 img/s':>14} {'ratio':>7}")

    def baseline():
        with torch.no_grad():
            float_model(x)

    def report(label: str, paths: str) -> float:
        t, tb = side_by_side(lambda: net(x), baseline, args.reps)
        print(f"{label:<24} {paths:<16} {len(x) / t:9.0f} {len(x) / tb:14.0f} {t / tb:6.2f}x", flush=True)
        return t / tb

    t, _ = side_by_side(baseline, baseline, args.reps)
    print(f"{'float32':<24} {'-':<16} {len(x) / t:9.0f} {len(x) / t:14.0f} {1:6.2f}x")
    # For reference only: the float network in channels-last memory (the emulated layers run their
    # convolutions channels-last); the ratios below are against the network as given.
    cl_model = copy.deepcopy(float_model).to(memory_format=torch.channels_last)
    x_cl = x.contiguous(memory_format=torch.channels_last)

    def channels_last_float():
        with torch.no_grad():
            cl_model(x_cl)

    t, tb = side_by_side(channels_last_float, baseline, args.reps)
    print(f"{'float32 channels-last':<24} {'-':<16} {len(x) / t:9.0f} {len(x) / tb:14.0f} {t / tb:6.2f}x")
    net.set_assignment({})
    report(f"exact {args.scheme}", "exact")
    ratios = []
    probe = x[:2]
    for multiplier in representatives(args.scheme == "int8"):
        mapping = {layer: multiplier for layer in net.layers}
        net.set_assignment(mapping, method="reference")
        reference = net(probe)
        net.set_assignment(mapping)
        if not torch.equal(net(probe), reference):
            raise SystemExit(f"MISMATCH: {multiplier.name} differs from the reference kernel")
        paths = ",".join(sorted({net.layer(n).arithmetic.kernel.method for n in net.layers}))
        ratios.append(report(f"{multiplier.family}: {multiplier.name}", paths))
    geomean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print(f"emulation slowdown geomean: {geomean:.2f}x")


if __name__ == "__main__":
    main()

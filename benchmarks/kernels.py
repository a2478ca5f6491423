"""Timing of the emulation kernels against float32 conv/linear, side by side in one run.

    python benchmarks/kernels.py [--reps 15] [--threads N] [--device cpu|cuda] [--no-reference]

Layers: a ResNet-20-like 3x3 conv (N=64, C=32, 16x16, O=32, padding 1 done by the caller) and
two linear layers: N=256, K=512, O=128 (the gather path caches its per-layer table) and N=64,
K=1024, O=256 (its table, 1 KiB per weight, is too big to cache: one lookup per product). For the exact table it times the exact path; for one
representative design of each zoo family (and two EvoApprox tables, when the shared data is
there) the path ``auto`` picks and the gather path; once, the reference path. Every kernel time
is the best of ``--reps`` calls interleaved with calls of the float32 op, and its ratio is to
the float32 time measured in the same loop. Outputs of the fast paths are compared with each
other (and with the reference, where it is timed).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from multipliers._record import exact_lut
from multipliers.families import FAMILIES
from objectives.emulation import make_kernel

REPO = Path(__file__).resolve().parents[1]


def operands(shape, signed, weight, gen):
    """Realistic integer operands: weights ~ N(0, 25) (unsigned: around code 128); activations ReLU-like."""
    if weight:
        v = torch.randn(shape, generator=gen) * 25
        v = v if signed else v + 128
    else:
        v = (torch.randn(shape, generator=gen) * 50).clamp(min=0)
    lo, hi = (-128, 127) if signed else (0, 255)
    return v.round().clamp(lo, hi)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def side_by_side(fn, baseline, reps, device):
    """Best-of-``reps`` seconds of ``fn`` and of ``baseline``, calls interleaved.

    The minimum, not the median: on a shared machine other jobs only ever add time.
    """
    fn()
    baseline()
    ts, tb = [], []
    for _ in range(reps):
        for f, acc in ((baseline, tb), (fn, ts)):
            sync(device)
            t0 = time.perf_counter()
            f()
            sync(device)
            acc.append(time.perf_counter() - t0)
    return min(ts), min(tb)


def representatives():
    """(label, lut, signed): one design of each family (the middle of its signed grid), plus EvoApprox."""
    out = []
    for family in FAMILIES:
        designs = list(family.designs(signed=True))
        if family.name == "exact" or not designs:
            continue
        m = designs[len(designs) // 2]
        out.append((m.name, m.lut, True))
    data = Path(os.environ.get("DSE_SHARED_DATA", REPO.parent / "shared" / "data"))
    for name, signed in (("evoapprox-mul8u/mul8u_L40.bin", False), ("evoapprox-mul8s/mul8s_1KVL.bin", True)):
        path = data / name
        if path.exists():
            raw = np.fromfile(path, "<i2" if signed else "<u2").reshape(256, 256).astype(np.int64)
            lut = np.roll(raw, 128, axis=(0, 1)) if signed else raw
            out.append((path.stem.lower(), lut, signed))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--no-reference", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads, best of {args.reps} reps")

    layers = {
        "conv 3x3 N64 C32 16x16 O32": dict(x=(64, 32, 18, 18), w=(32, 32, 3, 3)),
        "linear N256 K512 O128 (table cached)": dict(x=(256, 512), w=(128, 512)),
        "linear N64 K1024 O256 (table too big to cache)": dict(x=(64, 1024), w=(256, 1024)),
    }
    for title, shapes in layers.items():
        conv = len(shapes["w"]) == 4
        print(f"\n== {title}")
        print(f"{'design':<28} {'path':<9} {'detail':<22} {'ms':>9} {'float32 ms':>11} {'ratio':>7}")
        cases = [("exact_s", exact_lut(True), True)] + representatives()
        results = {}
        for name, lut, signed in cases:
            x = operands(shapes["x"], signed, False, gen).to(device)
            w = operands(shapes["w"], signed, True, gen).to(device)
            xf, wf = x.float(), w.float()
            baseline = (lambda: F.conv2d(xf, wf)) if conv else (lambda: F.linear(xf, wf))
            methods = ["auto", "gather"] if name != "exact_s" else ["exact"]
            if name == "exact_s" and not args.no_reference:
                methods.append("reference")
            outputs = []
            for method in methods:
                kernel = make_kernel(lut, signed, method)
                if method == "gather" and kernel.method == "gather" and "gather" in [o[0] for o in outputs]:
                    continue
                prepared = kernel.prepare_weight(w)
                run = (lambda: kernel.conv2d(x, prepared)) if conv else (lambda: kernel.linear(x, prepared))
                reps = 3 if kernel.method == "reference" else args.reps
                t, tb = side_by_side(run, baseline, reps, device)
                outputs.append((kernel.method, run()))
                detail = ""
                if kernel.method in ("lowrank", "exact"):
                    detail = f"channels {getattr(kernel, 'channels', 1)}, limbs {prepared.data['limbs'].shape[0]}"
                    detail += ", f64" if prepared.data["dtype"] == torch.float64 else ""
                elif kernel.method == "gather":
                    detail = f"{prepared.data['source']} table, limbs {prepared.data['n_limbs']}"
                print(f"{name:<28} {kernel.method:<9} {detail:<22} {t * 1e3:9.2f} {tb * 1e3:11.2f} {t / tb:7.1f}")
                results[(name, kernel.method)] = t / tb
            for method, out in outputs[1:]:
                if not torch.equal(out, outputs[0][1]):
                    raise SystemExit(f"MISMATCH: {name} {method} differs from {outputs[0][0]}")


if __name__ == "__main__":
    main()

"""Predicted against measured layer distortion: the validation behind ``dse distortion``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .layer_model import LEVELS, predict_error_energy
from .moments import error_tables


@dataclass(frozen=True)
class DistortionRecord:
    """One (layer, design, level): predicted and measured ||dC||_F per image, and ||C||_F; ``kind`` the layer's
    (conv, linear, matmul)."""

    layer: str
    multiplier: str
    level: str
    predicted: float
    measured: float
    output_norm: float
    kind: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready record."""
        return {
            "layer": self.layer, "kind": self.kind, "multiplier": self.multiplier, "level": self.level,
            "predicted": self.predicted, "measured": self.measured, "output_norm": self.output_norm,
        }


def measure_error_energy(qnet: Any, images: Any, multipliers: Sequence[Any], method: str = "auto", progress: bool = True) -> dict[str, np.ndarray]:
    """Per layer, the measured mean ||dC||_F^2 per image of every design (inputs from the exact network)."""
    import torch

    from ..kernels import get_kernel

    names = list(qnet.layers)
    signed = qnet.scheme == "int8"
    saved = dict(qnet.assignment), qnet.compensation, dict(qnet.injection)
    qnet.reset()
    try:
        with qnet.capture(names) as records, torch.no_grad():
            qnet(images)
    finally:
        assignment, compensation, injection = saved
        qnet.set_assignment(assignment, compensation)
        qnet.set_injection(injection)
    count = images.shape[0]
    work = [(name, m) for name in names for m in multipliers]
    if progress:
        from tqdm import tqdm

        work = tqdm(work, desc="measuring ||dC||", unit="layer-design")
    measured = {name: np.zeros(len(multipliers)) for name in names}
    exact: dict[str, Any] = {}  # the exact output of the layer at hand (work runs layer by layer)
    position = {m.name: i for i, m in enumerate(multipliers)}
    with torch.no_grad():
        for name, m in work:
            layer = qnet.layer(name)
            codes = layer.join_codes(records[name])
            if name not in exact:
                exact = {name: layer.products(codes, layer.exact_arithmetic())}
            if m.is_exact:
                continue
            kernel = get_kernel(m.lut, signed, method, qnet.device, products=qnet.layers[name].kind == "matmul")
            approx = layer.products(codes, layer.arithmetic_for(kernel))
            measured[name][position[m.name]] = float(((approx - exact[name]) ** 2).sum()) / count
    return measured


def compare_distortion(
    qnet: Any, operands: dict[str, list], images: Any, multipliers: Sequence[Any], compensation: str = "none",
    progress: bool = True,
) -> list[DistortionRecord]:
    """Records of predicted vs measured ||dC||_F for every layer, design and level (no compensation measured)."""
    measured = measure_error_energy(qnet, images, multipliers, progress=progress)
    errors = error_tables(multipliers)
    records = []
    for name, ops in operands.items():
        output = sum(op.output_energy for op in ops)
        for level in LEVELS:
            predicted = sum(predict_error_energy(op, errors, level, compensation) for op in ops)
            for i, m in enumerate(multipliers):
                if m.is_exact:
                    continue
                records.append(DistortionRecord(name, m.name, level, float(np.sqrt(predicted[i])),
                                                float(np.sqrt(measured[name][i])), float(np.sqrt(output)),
                                                qnet.layers[name].kind))
    return records


def summarise(records: Sequence[DistortionRecord], kind: str | None = None) -> dict[str, dict[str, float]]:
    """Per level: median absolute relative error, Pearson (of logs) and Spearman correlations (``kind``: of the
    layers of that kind only)."""
    from scipy.stats import pearsonr, spearmanr

    out = {}
    for level in LEVELS:
        rows = [r for r in records if r.level == level and r.measured > 0 and r.predicted > 0
                and (kind is None or r.kind == kind)]
        if len(rows) < 3:
            continue
        p = np.array([r.predicted for r in rows])
        m = np.array([r.measured for r in rows])
        rel = (p - m) / m
        out[level] = {
            "pairs": len(rows),
            "median_abs_rel_error": float(np.median(np.abs(rel))),
            "median_rel_error": float(np.median(rel)),
            "p90_abs_rel_error": float(np.quantile(np.abs(rel), 0.9)),
            "pearson_log": float(pearsonr(np.log(p), np.log(m))[0]),
            "spearman": float(spearmanr(p, m)[0]),
        }
    return out


def kinds(records: Sequence[DistortionRecord]) -> list[str]:
    """The layer kinds among ``records``, in the order conv, linear, matmul."""
    seen = {r.kind for r in records}
    return [k for k in ("conv", "linear", "matmul") if k in seen] + sorted(seen - {"conv", "linear", "matmul"})

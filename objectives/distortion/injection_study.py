"""The paper's injection experiment: synthetic errors of chosen (mean, std) in every layer, against accuracy."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .closed_form import expected_error_energy


def injection_grid(
    qnet: Any, evaluation: Any, magnitudes: Sequence[float], seed: int = 0, progress: bool = True,
    axes: bool = False,
) -> dict[str, Any]:
    """Accuracy for every (mean, std) in ``magnitudes`` x ``magnitudes``, relative to each layer's product RMS.

    Returns the exact accuracy, one record per grid point (mean, std, predicted network distortion
    D = RMS over layers of ||dC||_F / ||C||_F from the closed form, top-1) and, for every magnitude
    x > 0, the accuracy at equal per-product error power x^2 as all bias (mean x) or all variance
    (std x). ``axes`` measures only those points (mean x, std 0) and (mean 0, std x): 2n - 1
    evaluations instead of n^2.
    """
    from ..evaluate import evaluate
    from ..injection import ErrorSpec, product_rms
    from .operands import collect_operands

    operands = collect_operands(qnet, seed=seed, progress=False, covariance=False)
    output_energy = {name: sum(op.output_energy for op in ops) for name, ops in operands.items()}
    units = {name: product_rms(h.activation, h.weight, qnet.scheme) for name, h in qnet.histograms.items()}
    saved = dict(qnet.assignment), qnet.compensation, dict(qnet.injection)
    qnet.reset()
    points = grid_points(magnitudes, axes)
    iterator = points
    if progress:
        from tqdm import tqdm

        iterator = tqdm(points, desc="injection grid", unit="point")
    try:
        exact = evaluate(qnet, evaluation, progress=False).top1
        grid = []
        for mean, std in iterator:
            distortion = _network_distortion(qnet, output_energy, units, mean, std)
            if mean == 0 and std == 0:
                top1 = exact
            else:
                qnet.set_injection({name: ErrorSpec(mean, std, relative=True) for name in qnet.layers}, seed=seed)
                top1 = evaluate(qnet, evaluation, progress=False).top1
            grid.append({"mean": mean, "std": std, "distortion": distortion, "top1": top1})
    finally:
        assignment, compensation, injection = saved
        qnet.set_assignment(assignment, compensation)
        qnet.set_injection(injection)
    by_point = {(r["mean"], r["std"]): r["top1"] for r in grid}
    equal_power = [
        {"power": x * x, "bias_top1": by_point[(x, 0.0)], "variance_top1": by_point[(0.0, x)]}
        for x in sorted(set(float(m) for m in magnitudes))
        if x > 0 and (x, 0.0) in by_point and (0.0, x) in by_point
    ]
    return {"network": qnet.name, "scheme": qnet.scheme, "images": len(evaluation), "exact_top1": exact,
            "grid": grid, "equal_power": equal_power}


def grid_points(magnitudes: Sequence[float], axes: bool = False) -> list[tuple[float, float]]:
    """(mean, std) pairs: the full grid, or only all-bias and all-variance points (and the origin)."""
    values = sorted(set(float(m) for m in magnitudes))
    if not axes:
        return [(m, s) for m in values for s in values]
    return [(0.0, 0.0)] * (0.0 in values) + [(x, 0.0) for x in values if x > 0] + [(0.0, x) for x in values if x > 0]


def _network_distortion(qnet: Any, output_energy: dict, units: dict, mean: float, std: float) -> float:
    """RMS over layers of the closed-form relative distortion for per-product errors (mean, std) x unit."""
    squares = []
    for name, info in qnet.layers.items():
        energy = expected_error_energy(info.m, info.k, info.n, mean * units[name], (std * units[name]) ** 2)
        squares.append(float(energy) / max(output_energy[name], 1e-300))
    return float(np.sqrt(np.mean(squares)))

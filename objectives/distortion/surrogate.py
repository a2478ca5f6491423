"""The network surrogate: predicted accuracy drop of per-layer assignments, as array arithmetic.

Built once per (network, design set, compensation, weight tuning) from calibration data:
per-layer operand statistics (:mod:`.operands`), the weight-aware error model of every design
in every layer (:mod:`.layer_model`) and per-layer sensitivities (:mod:`.sensitivity`); then, given
the exact network's logit-margin curve on the images the drops are measured on, the drop model from
the predicted logit error to the top-1 drop with its interval (:mod:`.drop_model`), fitted on a few
real evaluations.
Saved to and reloaded from a folder, so a study pays for it once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..atomic_file import write_atomically
from .closed_form import relative_distortion
from .layer_model import COMPENSATIONS, LEVELS, channel_moments, predict_error_energy, residual_variance
from .drop_model import COVERAGE, DropModel, MarginCurve
from .layer_response import RESPONSE_DESIGNS, apply_responses, measure_responses
from .moments import error_tables
from .network_score import ScoreTable

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2: the margin curve and the drop model (was: an isotonic map)
#: Revision of the model behind a surrogate's numbers, part of its cache key: bump it when they change.
MODEL_REVISION = 7  # 6, 7: each layer's response measured with 5, then 9 real designs


@dataclass
class NetworkSurrogate:
    """Score table (layers x designs), relative distortions per level, the margin curve and the drop model."""

    table: ScoreTable
    compensation: str
    distortion: dict[str, np.ndarray]  # level -> (L, M) predicted relative distortion ||dC|| / ||C||
    macs: np.ndarray  # (L,) per image
    drop_map: DropModel | None = None
    calibration_points: dict[str, list] = field(default_factory=dict)
    margins: MarginCurve | None = None  # the exact network's drop under logit noise, on the evaluation images

    @property
    def layer_names(self) -> list[str]:
        """Layers in network order."""
        return list(self.table.layer_names)

    @property
    def multiplier_names(self) -> list[str]:
        """Designs, in the order assignment indices refer to."""
        return list(self.table.multiplier_names)

    # -- prediction -------------------------------------------------------------------------------
    def score(self, assignments: np.ndarray) -> np.ndarray:
        """Predicted logit error power of each assignment, (pop, L) design indices -> (pop,)."""
        return self.table.score(assignments)

    def predict_drop(self, assignments: np.ndarray) -> np.ndarray:
        """Predicted top-1 drop in points; needs a fitted drop model."""
        return self._fitted()(self.score(assignments))

    def predict_interval(self, assignments: np.ndarray, coverage: float = COVERAGE) -> tuple[np.ndarray, np.ndarray]:
        """(low, high): the central ``coverage`` interval of each assignment's drop; needs a fitted drop model."""
        return self._fitted().interval(self.score(assignments), coverage)

    def _fitted(self) -> DropModel:
        if self.drop_map is None:
            raise RuntimeError("the drop model is not fitted yet: call fit_drop_map")
        return self.drop_map

    def indices(self, assignment: dict[str, str]) -> np.ndarray:
        """A {layer: design} mapping as a row of design indices (layers left out: the exact design)."""
        exact = self.exact_index()
        position = {name: i for i, name in enumerate(self.multiplier_names)}
        row = np.full(len(self.layer_names), exact, dtype=np.int64)
        for i, layer in enumerate(self.layer_names):
            if layer in assignment:
                name = assignment[layer]
                if name not in position:
                    raise KeyError(f"design {name!r} is not among the surrogate's designs")
                row[i] = position[name]
        unknown = sorted(set(assignment) - set(self.layer_names))
        if unknown:
            raise KeyError(f"unknown layer {unknown[0]!r}; layers: {', '.join(self.layer_names)}")
        return row

    def exact_index(self) -> int:
        """Index of a design with zero contribution everywhere (the exact multiplier)."""
        zero = np.flatnonzero(np.all(self.table.contributions == 0, axis=0))
        if not len(zero):
            raise KeyError("the surrogate has no exact design; include the exact multiplier")
        return int(zero[0])

    # -- calibration of the drop map ---------------------------------------------------------------
    @property
    def classes(self) -> int:
        """Classes of the network's output (from its margin curve)."""
        return self._margins().classes

    def _margins(self) -> MarginCurve:
        if self.margins is None:
            raise RuntimeError("the surrogate has no margin curve yet: set margins (drop_model.margins_on) first")
        return self.margins

    def fit_drop_map(self, assignments: np.ndarray, measured_drops: np.ndarray, ceiling: float | None = None,
                     images: int | None = None) -> None:
        """Fit the score -> drop model on real evaluations on ``images`` images; ``ceiling``: the drop to chance."""
        scores = self.score(assignments)
        self.drop_map = DropModel.fit(self._margins(), scores, np.asarray(measured_drops, dtype=np.float64), ceiling,
                                      images)
        self.calibration_points = {"scores": scores.tolist(), "drops": np.asarray(measured_drops).tolist(),
                                   "assignments": np.asarray(assignments).tolist(), "ceiling": ceiling, "images": images}

    def spread_assignments(self, count: int, seed: int = 0) -> np.ndarray:
        """``count`` random assignments whose scores spread over the range that matters (for the map)."""
        rng = np.random.default_rng(seed)
        n_layers, n_designs = self.table.contributions.shape
        candidates = rng.integers(0, n_designs, size=(4000, n_layers))
        # vary how many layers are approximate, so scores span several decades
        keep = rng.random((4000, n_layers)) < rng.uniform(0.05, 1.0, size=(4000, 1))
        candidates = np.where(keep, candidates, self.exact_index())
        scores = self.score(candidates)
        positive = scores > 0
        candidates, scores = candidates[positive], scores[positive]
        targets = np.quantile(np.log(scores), np.linspace(0.02, 0.98, count))
        chosen = [int(np.argmin(np.abs(np.log(scores) - t))) for t in targets]
        return candidates[chosen]

    # -- persistence --------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        """Write the surrogate into ``folder`` (arrays in one .npz, metadata in JSON), atomically."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {"contributions": self.table.contributions, "macs": self.macs}
        arrays.update({f"distortion_{level}": d for level, d in self.distortion.items()})
        if self.margins is not None:
            arrays.update(margin_sigmas=self.margins.sigmas, margin_drops=self.margins.drops)
            if self.margins.flips is not None:
                arrays.update(margin_flips=self.margins.flips)
        meta = {
            "format": FORMAT_VERSION,
            "layers": self.layer_names,
            "multipliers": self.multiplier_names,
            "compensation": self.compensation,
            "calibration_points": self.calibration_points,
            "classes": None if self.margins is None else self.margins.classes,
            "drop_model": None if self.drop_map is None else self.drop_map.to_dict(),
        }
        write_atomically(folder / "surrogate.npz", lambda f: np.savez(f, **arrays))
        write_atomically(folder / "surrogate.json", lambda f: f.write(json.dumps(meta, indent=1).encode()))

    @classmethod
    def load(cls, folder: str | Path) -> "NetworkSurrogate":
        """Read a surrogate written by :meth:`save`."""
        folder = Path(folder)
        meta = json.loads((folder / "surrogate.json").read_text())
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"{folder}: surrogate format {meta.get('format')} is not {FORMAT_VERSION}")
        with np.load(folder / "surrogate.npz") as data:
            arrays = {key: data[key] for key in data.files}
        margins = drop_map = None
        if "margin_sigmas" in arrays:
            margins = MarginCurve(arrays["margin_sigmas"], arrays["margin_drops"], int(meta["classes"]),
                                  arrays.get("margin_flips"))
            if meta.get("drop_model"):
                drop_map = DropModel(margins, **meta["drop_model"])
        return cls(
            table=ScoreTable(tuple(meta["layers"]), tuple(meta["multipliers"]), arrays["contributions"]),
            compensation=meta["compensation"],
            distortion={level: arrays[f"distortion_{level}"] for level in LEVELS if f"distortion_{level}" in arrays},
            macs=arrays["macs"],
            drop_map=drop_map,
            calibration_points=meta.get("calibration_points", {}),
            margins=margins,
        )

    # -- construction ---------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        qnet: Any,
        multipliers: Sequence[Any],
        compensation: str = "none",
        seed: int = 0,
        progress: bool = True,
        response_designs: int = RESPONSE_DESIGNS,
    ) -> "NetworkSurrogate":
        """Compute operand statistics, sensitivities and every design's score contribution per layer."""
        return cls.build_many(qnet, multipliers, (compensation,), seed, progress, response_designs)[compensation]

    @classmethod
    def build_many(
        cls,
        qnet: Any,
        multipliers: Sequence[Any],
        compensations: Sequence[str] = COMPENSATIONS,
        seed: int = 0,
        progress: bool = True,
        response_designs: int = RESPONSE_DESIGNS,
    ) -> dict[str, "NetworkSurrogate"]:
        """One surrogate per compensation, sharing the operand statistics and sensitivities (computed once);
        ``response_designs``: real designs measured alone per layer for its response (0: the linearised table)."""
        from .operands import collect_operands
        from .sensitivity import calibrate_by_injection, linearised_sensitivities

        for compensation in compensations:
            if compensation not in COMPENSATIONS:
                raise ValueError(f"unknown compensation {compensation!r}; choose from {', '.join(COMPENSATIONS)}")
        wrong = [m.name for m in multipliers if m.signed != (qnet.scheme == "int8")]
        if wrong:
            kind = "signed" if qnet.scheme == "int8" else "unsigned"
            raise ValueError(f"scheme {qnet.scheme} needs {kind} multipliers; not: {', '.join(wrong[:5])}")
        operands = collect_operands(qnet, seed=seed, progress=progress)
        sensitivities = linearised_sensitivities(qnet, progress=progress)
        energy = {name: sum(op.output_energy for op in ops) for name, ops in operands.items()}
        calibrate_by_injection(qnet, sensitivities, energy, seed=seed, progress=progress)
        tuned = getattr(qnet, "weight_tuning", False)
        errors = None if tuned else error_tables(multipliers)  # with tuning, per layer below
        names = list(qnet.layers)
        contributions = {c: np.zeros((len(names), len(multipliers))) for c in compensations}
        distortion = {c: {level: np.zeros((len(names), len(multipliers))) for level in LEVELS} for c in compensations}
        iterator = enumerate(names)
        if progress:
            from tqdm import tqdm

            iterator = tqdm(iterator, total=len(names), desc="surrogate table", unit="layer")
        for li, name in iterator:
            by_tuning: dict[bool, tuple[np.ndarray, list]] = {}
            for compensation in compensations:
                # with weight tuning, each design's error with the layer's weights tuned to it (for this mode)
                compensated = tuned and compensation != "none"
                if compensated not in by_tuning:
                    layer_errors = errors if not tuned else np.stack(
                        [qnet.error_table(name, m, compensation) for m in multipliers]).astype(np.float64)
                    by_tuning[compensated] = layer_errors, [channel_moments(op, layer_errors) for op in operands[name]]
                layer_errors, moments = by_tuning[compensated]
                parts = [_error_parts(mo, compensation) for mo in moments]
                bias, gain, residual = (np.concatenate([p[i] for p in parts], axis=1) for i in range(3))
                for level in LEVELS:
                    if level == "weight-aware":
                        predicted = sum(op.m * _energy_per_row(mo, compensation) for op, mo in zip(operands[name], moments))
                    else:
                        predicted = sum(
                            predict_error_energy(op, layer_errors, level, compensation) for op in operands[name])
                    distortion[compensation][level][li] = relative_distortion(predicted, max(energy[name], 1e-300))
                relative_power = distortion[compensation]["weight-aware"][li] ** 2  # the factor at each design's level
                contributions[compensation][li] = sensitivities[name].logit_error(bias, gain, residual, relative_power)
        designs = tuple(m.name for m in multipliers)
        macs = np.array([qnet.layers[name].macs for name in names], dtype=np.float64)
        tables = {c: np.maximum(contributions[c], 0.0) for c in compensations}
        if response_designs > 0:
            responses = measure_responses(qnet, multipliers, tables, response_designs, progress=progress)
            tables = {c: apply_responses(tables[c], names, responses[c]) for c in compensations}
        return {c: cls(ScoreTable(tuple(names), designs, tables[c]), c, distortion[c], macs) for c in compensations}


def _energy_per_row(moments: dict[str, np.ndarray], compensation: str) -> np.ndarray:
    """Level-3 E||dC||^2 of one GEMM row, per design (as in ``predict_error_energy``)."""
    per_channel = residual_variance(moments, compensation)
    if compensation == "none":
        per_channel = per_channel + moments["bias"] ** 2
    return per_channel.sum(axis=1)


def _error_parts(moments: dict[str, np.ndarray], compensation: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per design and channel: constant error, gain error and residual variance after compensation."""
    var_c = moments["output_variance"][None]
    gain = np.divide(moments["covariance"], var_c, out=np.zeros_like(moments["covariance"]), where=var_c > 0)
    if compensation == "affine":
        zeros = np.zeros_like(gain)
        return zeros, zeros, residual_variance(moments, "affine")
    residual = np.maximum(moments["variance"] - gain**2 * var_c, 0.0)
    bias = moments["bias"] if compensation == "none" else np.zeros_like(gain)
    return bias, gain, residual


def design_set_key(multipliers: Sequence[Any], compensation: str, extra: str = "",
                   response_designs: int = RESPONSE_DESIGNS) -> str:
    """A short hash naming a surrogate built for these designs and this compensation (``extra``: anything else
    deciding it, such as weight tuning; ``response_designs``: the designs measured per layer for its response)."""
    digest = hashlib.sha256()
    for m in multipliers:
        digest.update(m.name.encode() + m.lut_sha256.encode())
    digest.update(compensation.encode() + extra.encode() + f"model {MODEL_REVISION}".encode())
    digest.update(f"response {response_designs}".encode())
    return digest.hexdigest()[:16]


def tuning_key(qnet: Any) -> str:
    """The part of a surrogate's key that says whether the network tunes its weights to its designs."""
    return "tuned weights" if getattr(qnet, "weight_tuning", False) else ""

"""The closed-form distortion surrogate: per-layer GEMM distortion from error moments, network score."""

from .closed_form import error_energy_variance_gaussian, expected_error_energy, relative_distortion
from .layer_model import (
    COMPENSATIONS,
    LEVELS,
    LayerOperands,
    activation_features,
    channel_moments,
    compensation_constants,
    predict_error_energy,
    residual_variance,
)
from .drop_model import DropModel, MarginCurve
from .network_score import ScoreTable
from .moments import conditional_moments, error_tables, histogram_moments, uniform_moments

__all__ = [
    "COMPENSATIONS",
    "LEVELS",
    "LayerOperands",
    "DropModel",
    "MarginCurve",
    "ScoreTable",
    "activation_features",
    "channel_moments",
    "compensation_constants",
    "residual_variance",
    "conditional_moments",
    "error_energy_variance_gaussian",
    "error_tables",
    "expected_error_energy",
    "histogram_moments",
    "predict_error_energy",
    "relative_distortion",
    "uniform_moments",
]

from .surrogate import NetworkSurrogate, design_set_key  # noqa: E402

__all__ += ["NetworkSurrogate", "design_set_key"]

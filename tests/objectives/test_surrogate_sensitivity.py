"""Layer sensitivities: the linearised prediction, the injection calibration and the saturating response."""

import numpy as np
import pytest

from objectives.distortion.sensitivity import (
    INJECTION_POWER,
    RESPONSE_POWERS,
    LayerSensitivity,
    calibrate_by_injection,
    linearised_sensitivities,
)


def sensitivity_with_response(linear, measured):
    n = 3
    return LayerSensitivity(np.eye(n), np.eye(n), np.ones(n), 2.0, np.array([linear, measured], dtype=np.float64))


def test_saturate_is_linear_below_the_curve_follows_it_and_stays_flat_beyond():
    s = sensitivity_with_response([1.0, 10.0, 100.0, 1000.0], [1.0, 8.0, 30.0, 25.0])  # last point: a noisy dip
    assert s.saturate(np.array([0.0, 0.25, 1.0])).tolist() == pytest.approx([0.0, 0.25, 1.0])
    assert s.saturate(np.array([10.0, 100.0])).tolist() == pytest.approx([8.0, 30.0])
    assert s.saturate(np.array([1000.0, 1e6])).tolist() == pytest.approx([30.0, 30.0])  # monotone, then flat
    grid = np.logspace(-3, 5, 300)
    assert np.all(np.diff(s.saturate(grid)) >= -1e-12)
    # between knots: log-log interpolation
    assert s.saturate(np.array([np.sqrt(10.0)]))[0] == pytest.approx(np.sqrt(8.0))


def test_without_a_response_curve_the_linear_prediction_stands():
    s = LayerSensitivity(np.eye(2), np.eye(2), np.ones(2), 1.5)
    values = np.array([0.0, 3.0, 1e9])
    assert np.array_equal(s.saturate(values), values)
    bias, gain, residual = np.array([[1.0, 2.0]]), np.zeros((1, 2)), np.array([[4.0, 0.0]])
    assert s.logit_error(bias, gain, residual)[0] == pytest.approx(1.5 * (1 + 4 + 4))


@pytest.mark.parametrize("digits_net", ["int8"], indirect=True)
def test_injection_calibration_measures_each_layers_response(digits_net):
    import torch

    from objectives.distortion.operands import collect_operands

    torch.manual_seed(0)
    qnet = digits_net
    operands = collect_operands(qnet, progress=False, covariance=False)
    energy = {name: sum(op.output_energy for op in ops) for name, ops in operands.items()}
    sensitivities = linearised_sensitivities(qnet, max_images=64)
    calibrate_by_injection(qnet, sensitivities, energy, max_images=64)
    for name, s in sensitivities.items():
        assert s.factor > 0
        linear, measured = s.response
        assert linear.shape == measured.shape == (1 + len(RESPONSE_POWERS),)
        # the smallest power defines the factor: there the curve is the calibrated linear prediction
        assert measured[0] == pytest.approx(linear[0]) and linear[0] == pytest.approx(s.factor * s.white.sum() * INJECTION_POWER * energy[name] / (qnet.layers[name].m * qnet.layers[name].n))
        assert np.allclose(linear / linear[0], np.array((INJECTION_POWER, *RESPONSE_POWERS)) / INJECTION_POWER)
        assert measured[-1] > measured[0]  # larger errors move the logits more
    # ... but a hidden layer's large errors move them less than linearly: clipping and ReLUs saturate them
    first = sensitivities[next(iter(sensitivities))]
    assert first.response[1, -1] < 0.8 * first.response[0, -1]
    assert not qnet.injection and all(qnet.layer(n).noise is None for n in qnet.layers)

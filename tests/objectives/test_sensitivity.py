"""Layer sensitivities on planted cases: the last layer's error reaches the logits exactly, a shift of every logit
alike moves no decision, and the share of the error that can move one follows the error's level."""

import numpy as np
import pytest

from objectives.distortion.sensitivity import (
    INJECTION_POWERS,
    LayerSensitivity,
    calibrate_by_injection,
    linearised_sensitivities,
)


@pytest.fixture(scope="module")
def digits_sensitivities(digits_nets):
    from objectives.distortion.operands import collect_operands

    qnet = digits_nets["int8"]
    sensitivities = linearised_sensitivities(qnet)
    energy = {name: sum(op.output_energy for op in ops) for name, ops in collect_operands(qnet, progress=False).items()}
    calibrate_by_injection(qnet, sensitivities, energy, seed=0)
    return qnet, sensitivities


def test_an_error_that_shifts_every_logit_alike_scores_nothing(digits_sensitivities):
    qnet, sensitivities = digits_sensitivities
    last = list(qnet.layers)[-1]  # the classifier: its requantised output is the logits
    s = sensitivities[last]
    scale = qnet.layer(last).requant_scale.double().numpy()
    classes = len(scale)
    zeros = np.zeros((1, classes))
    common = (1.0 / scale)[None]  # one logit unit added to every class
    assert s.logit_error(common, zeros, zeros)[0] == pytest.approx(0.0, abs=1e-9 * s.factor)
    one = zeros.copy()
    one[0, 3] = 1.0 / scale[3]  # one logit unit on one class: its centred power is 1 - 1/classes
    assert s.logit_error(one, zeros, zeros)[0] / s.factor == pytest.approx(1 - 1 / classes, rel=1e-6)


def test_white_noise_in_the_last_layer_reaches_the_logits_as_predicted_at_every_level(digits_sensitivities):
    qnet, sensitivities = digits_sensitivities
    s = sensitivities[list(qnet.layers)[-1]]
    assert s.levels.tolist() == list(INJECTION_POWERS)
    # no rounding or clipping after the classifier: measured / linearised is 1 up to the draws' noise, and white noise
    # on its outputs keeps the centred share of isotropic noise, 1 - 1/classes, at every level
    assert s.factor == pytest.approx(1.0, abs=0.1)
    classes = qnet.layers[list(qnet.layers)[-1]].n
    assert np.all(np.abs(s.shares - (1 - 1 / classes)) < 0.05), s.shares
    assert s.factor_at(np.array([1e-3, 1.0])) == pytest.approx([s.factor, s.factor], rel=0.06)
    for name in list(qnet.layers)[:-1]:  # inner layers: a share per level, each measured
        shares = sensitivities[name].shares
        assert np.all((shares > 0) & (shares <= 1.0 + 1e-12))


def test_a_designs_contribution_takes_the_centred_share_at_its_own_level():
    white = np.array([1.0, 2.0])
    s = LayerSensitivity(np.zeros((2, 2)), np.zeros((2, 2)), white, factor=2.0,
                         levels=np.array([1e-3, 1e-1]), shares=np.array([0.8, 0.2]))
    # the share interpolated in log power, flat beyond the levels, relative to the share at the first
    assert s.factor_at(np.array([1e-2]))[0] == pytest.approx(2.0 * 0.5 / 0.8)
    assert s.factor_at(np.array([1e-6, 1.0])).tolist() == pytest.approx([2.0, 2.0 * 0.2 / 0.8])
    residual = np.ones((3, 2))
    zeros = np.zeros((3, 2))
    got = s.logit_error(zeros, zeros, residual, relative_power=np.array([1e-5, 1e-2, 1.0]))
    assert got.tolist() == pytest.approx([2.0 * 3, 2.0 * 0.625 * 3, 2.0 * 0.25 * 3])
    assert s.logit_error(zeros, zeros, residual).tolist() == pytest.approx([6.0] * 3)  # no level: the layer's factor


def test_a_large_error_in_the_last_convolution_reaches_the_digits_logits_largely_as_a_common_shift(
        digits_sensitivities):
    qnet, sensitivities = digits_sensitivities
    conv = [name for name in qnet.layers if "conv" in name][-1]
    shares = sensitivities[conv].shares
    # rectified by the ReLU and pooled, a large error raises many features at once: every class's logit alike
    assert shares[0] > 0.9 and shares[-1] < 0.6, shares

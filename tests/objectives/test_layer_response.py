"""Each layer's response to real designs: the monotone log-log map, the designs it measures, and planted cases on the
digits CNN where the right answer is known (a design measured alone, rounding-only errors, a pure bias)."""

import numpy as np
import pytest

from multipliers import Zoo
from multipliers._record import Multiplier
from objectives.distortion import NetworkSurrogate
from objectives.distortion.layer_response import (
    GAIN_FLOOR,
    LayerResponse,
    apply_responses,
    decision_power,
    monotone,
    response_designs,
)
from objectives.distortion.sensitivity import _first_images

VALUES = np.arange(-128, 128)
EXACT = np.outer(VALUES, VALUES)


def test_the_map_passes_through_its_points_and_extends_them_by_the_stated_slopes():
    response = LayerResponse(np.array([1e-4, 1e-2, 1.0]), np.array([0.1, 0.2, 0.8]))
    assert np.allclose(response(np.array([1e-4, 1e-2, 1.0])), [0.1, 0.2, 0.8])
    # halfway in log contribution: the geometric mean of the neighbours
    assert response(np.array([1e-3]))[0] == pytest.approx(np.sqrt(0.1 * 0.2))
    # below the smallest point power grows like |error| (slope 1/2), above the largest like the error power
    assert response(np.array([1e-6]))[0] == pytest.approx(0.1 * 0.1)
    assert response(np.array([100.0]))[0] == pytest.approx(80.0)
    assert response(np.array([0.0]))[0] == 0.0


def test_a_non_monotone_measurement_is_pooled_so_more_error_never_costs_less():
    assert np.allclose(monotone(np.array([1.0, 3.0, 2.0, 4.0])), [1.0, 2.5, 2.5, 4.0])
    assert np.allclose(monotone(np.array([3.0, 2.0, 1.0])), [2.0, 2.0, 2.0])
    response = LayerResponse(np.array([1.0, 2.0, 3.0]), np.array([0.3, 0.1, 0.5]))
    mapped = response(np.linspace(0.5, 4.0, 50))
    assert np.all(np.diff(mapped) >= 0)
    # a layer where no design changed anything measurable maps everything to 0
    assert np.all(LayerResponse(np.array([1.0, 2.0]), np.zeros(2))(np.array([1.0, 5.0])) == 0)


def test_bad_points_are_refused():
    for contributions, powers in (([1.0, 1.0], [0.1, 0.2]), ([0.0, 1.0], [0.1, 0.2]), ([1.0], [-0.1]),
                                  ([1.0, 2.0], [0.1])):
        with pytest.raises(ValueError):
            LayerResponse(np.array(contributions), np.array(powers))


def test_the_designs_measured_span_the_layers_contributions_once_each():
    row = np.array([0.0, 5.0, 1.0, 3.0, 1.0, 9.0, 2.0, 7.0])
    chosen = response_designs(row, 3)
    assert [row[i] for i in chosen] == [1.0, 3.0, 9.0]  # smallest, middle, largest positive
    assert len(set(row[response_designs(row, 10)])) == len(response_designs(row, 10)) == 6  # duplicates once
    assert response_designs(np.zeros(4), 5) == [] and response_designs(row, 0) == []
    table = np.array([[1.0, 2.0], [3.0, 4.0]])
    mapped = apply_responses(table, ["a", "b"], {"b": LayerResponse(np.array([3.0, 4.0]), np.array([30.0, 40.0]))})
    assert np.allclose(mapped, [[1.0, 2.0], [30.0, 40.0]], rtol=1e-12, atol=0)


def test_rescaling_each_images_own_logits_has_no_decision_power_and_isotropic_noise_keeps_its_centred_power():
    rng = np.random.default_rng(0)
    reference = rng.normal(0.0, 3.0, (4000, 10))
    own = reference - reference.mean(axis=1, keepdims=True)
    # any per-image gain of the logits (1 in common), plus any per-image constant: the argmax never moves
    gains = rng.normal(0.0, 0.3, (4000, 1))
    norms = (own**2).sum(axis=1, keepdims=True)
    gains -= (gains * norms).sum() / norms.sum()
    rescaled = gains * own + rng.normal(0.0, 5.0, (4000, 1))
    assert decision_power(rescaled, reference) < 1e-20 * (rescaled**2).sum()
    # isotropic noise: in expectation its centred power, (classes - 1) sigma^2 per image
    noise = rng.normal(0.0, 0.5, reference.shape)
    assert decision_power(noise, reference) == pytest.approx(9 * 0.25, rel=0.02)
    # a centred change orthogonal to every image's own logits is kept whole, scaled to the isotropic equivalent
    other = noise - noise.mean(axis=1, keepdims=True)
    other -= ((other * own).sum(axis=1, keepdims=True) / (own**2).sum(axis=1, keepdims=True)) * own
    whole = (other**2).sum(axis=1).mean() * 9 / 8
    assert decision_power(other + rescaled, reference) == pytest.approx(whole, rel=1e-12)
    # logits halved in common: every margin halves, so the same rest counts 4 times; collapsed or reversed logits
    # count as shrunk to GAIN_FLOOR
    assert decision_power(other - 0.5 * own, reference) == pytest.approx(4 * whole, rel=1e-12)
    assert decision_power(other - 1.5 * own, reference) == pytest.approx(whole / GAIN_FLOOR**2, rel=1e-12)
    # two classes: the centred logits have one direction, so the centred power is all there is
    pair = rng.normal(0.0, 1.0, (50, 2))
    centred_pair = pair - pair.mean(axis=1, keepdims=True)
    assert decision_power(pair, rng.normal(0.0, 1.0, (50, 2))) == pytest.approx((centred_pair**2).sum() / 50)
    # an image whose logits are all equal has no own direction: its change is only centred
    change = rng.normal(0.0, 1.0, (1, 10))
    assert decision_power(change, np.zeros((1, 10))) == pytest.approx(((change - change.mean()) ** 2).sum() * 9 / 8)
    assert decision_power(np.zeros((0, 10)), np.zeros((0, 10))) == 0.0


@pytest.fixture(scope="module")
def digits_int8():
    import torch

    from objectives.data import load_data
    from objectives.networks import get_network
    from objectives.quantize import quantize

    torch.manual_seed(0)
    network = get_network("digits-cnn")
    data = load_data(network, calibration_size=128)
    return quantize(network.model, data.calibration, network.input_shape, "int8", name=network.name)


def alone_power(qnet, layer, design, compensation):
    """Decision power per image of ``design`` alone in ``layer``, on the surrogate's calibration images."""
    from objectives.distortion.drop_model import logits_on

    images = _first_images(qnet.calibration, 256)
    qnet.reset()
    exact, _ = logits_on(qnet, images)
    qnet.set_assignment({layer: design}, compensation=compensation)
    try:
        approximate, _ = logits_on(qnet, images)
    finally:
        qnet.reset()
    return decision_power(approximate - exact, exact)


def test_a_rounding_only_design_costs_what_it_measures_alone_far_above_its_linearised_contribution(digits_int8):
    qnet = digits_int8
    zoo = Zoo.default()
    # exact but for one LSB on odd products: an error far below any output's quantisation step
    rounding = Multiplier("odd_plus_one_s", "test", True, EXACT + (EXACT % 2 != 0))
    designs = [zoo["exact_s"], rounding, zoo["trunc_s_t8"]]
    linearised = NetworkSurrogate.build(qnet, designs, "affine", progress=False, response_designs=0)
    measured = NetworkSurrogate.build(qnet, designs, "affine", progress=False, response_designs=2)
    assert measured.exact_index() == 0  # the exact design still costs nothing
    for li, layer in enumerate(qnet.layers):
        truth = alone_power(qnet, layer, rounding, "affine")
        # both designs are measured (the smallest and the largest): each gets exactly its own power
        assert measured.table.contributions[li, 1] == pytest.approx(truth, rel=1e-9)
        assert measured.table.contributions[li, 2] == pytest.approx(alone_power(qnet, layer, designs[2], "affine"),
                                                                    rel=1e-9)
        if layer.startswith("conv"):  # requantised after: a floor of flipped roundings the linearisation misses
            assert truth > 30 * linearised.table.contributions[li, 1]


def test_a_pure_bias_under_bias_compensation_is_free_in_the_table_and_in_fact(digits_int8):
    qnet = digits_int8
    zoo = Zoo.default()
    biased = Multiplier("plus_three_s", "test", True, EXACT + 3)  # every product, padding included, off by 3
    surrogate = NetworkSurrogate.build(qnet, [zoo["exact_s"], biased], "bias", progress=False)
    assert np.all(surrogate.table.contributions == 0)
    for layer in qnet.layers:
        # the correction folded into requantisation takes it out exactly: only float round-off is left
        assert alone_power(qnet, layer, biased, "bias") < 1e-9 * alone_power(qnet, layer, biased, "none")

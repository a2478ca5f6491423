"""Each layer's response to real designs: the monotone log-log map, the designs it measures, and planted cases on the
digits CNN where the right answer is known (a design measured alone, rounding-only errors, a pure bias)."""

import numpy as np
import pytest

from multipliers import Zoo
from multipliers._record import Multiplier
from objectives.distortion import NetworkSurrogate
from objectives.distortion.layer_response import LayerResponse, apply_responses, monotone, response_designs
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
    """Centred logit error power per image of ``design`` alone in ``layer``, on the surrogate's calibration images."""
    from objectives.distortion.drop_model import logits_on

    images = _first_images(qnet.calibration, 256)
    qnet.reset()
    exact, _ = logits_on(qnet, images)
    qnet.set_assignment({layer: design}, compensation=compensation)
    try:
        approximate, _ = logits_on(qnet, images)
    finally:
        qnet.reset()
    change = approximate - exact
    change -= change.mean(axis=1, keepdims=True)
    return float((change**2).sum(axis=1).mean())


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


def test_the_response_fits_each_rounds_compensation_constants_in_one_calibration_pass():
    """Under affine compensation, the constants of the designs measured are fitted one pass per round (the i-th design
    of every layer), not once per design; bias fits nothing."""
    from objectives.data import load_data
    from objectives.distortion.layer_response import measure_responses
    from objectives.networks import get_network
    from objectives.quantize import quantize

    zoo = Zoo.default()
    designs = [zoo[name] for name in ("exact_s", "trunc_s_t6_corrected", "trunc_s_t8", "bam_s_hbl4_vbl10")]
    network = get_network("digits-cnn")
    data = load_data(network, calibration_size=128)
    qnet = quantize(network.model, data.calibration, network.input_shape, "int8")  # no constants fitted yet
    passes = []
    qnet._run_calibration = lambda what, run=qnet._run_calibration: (passes.append(what), run(what))[1]
    table = np.tile(np.array([0.0, 1.0, 2.0, 3.0]), (len(qnet.layers), 1))  # three designs per layer
    responses = measure_responses(qnet, designs, {"affine": table, "bias": table}, count=3)
    assert passes.count("affine fit") == 3  # not 3 x the number of layers
    for compensation in ("affine", "bias"):
        assert set(responses[compensation]) == set(qnet.layers)
        assert all(len(r.contributions) == 3 for r in responses[compensation].values())

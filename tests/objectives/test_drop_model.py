"""The drop model: logit-margin curve and the score -> drop fit, on planted cases whose answer is known."""

import numpy as np
import pytest
from scipy.stats import norm

from objectives.distortion import DropModel, MarginCurve


def test_two_class_margin_curve_is_the_gaussian_flip_probability():
    # every image of two classes leads by margin d: noise of std s per logit flips it with P = Phi(-d / (s sqrt 2))
    d = 2.0
    logits = np.tile([[d, 0.0]], (4000, 1))
    curve = MarginCurve.from_logits(logits, np.zeros(4000, dtype=int), seed=3)
    for sigma in (0.3, 0.7, 1.5, 4.0):
        expected = 100 * norm.cdf(-d / (sigma * np.sqrt(2)))
        assert curve(np.array([sigma]))[0] == pytest.approx(expected, abs=0.6)
    assert np.all(np.diff(curve.drops) >= 0) and curve(np.array([0.0]))[0] == 0.0
    assert curve.drops[-1] == pytest.approx(50.0, abs=1.0)  # at huge noise: a coin between the two classes


def test_flips_count_images_that_change_either_way_and_set_the_measurement_noise():
    # half the images right, half wrong, all at margin d between two classes: noise flips each with
    # P = Phi(-d / (s sqrt 2)), so the drop nets to ~0 while 100 P % of the images change their hit
    d = 2.0
    logits = np.tile([[d, 0.0]], (4000, 1))
    labels = np.repeat([0, 1], 2000)
    curve = MarginCurve.from_logits(logits, labels, seed=4)
    for sigma in (0.7, 1.5, 4.0):
        flipped = 100 * norm.cdf(-d / (sigma * np.sqrt(2)))
        assert curve.flipped(np.array([sigma]))[0] == pytest.approx(flipped, abs=0.6)
        assert curve(np.array([sigma]))[0] < 0.6
        # a drop measured on N images: each changed image moves it by 100 / N points, one way or the other
        assert curve.noise(np.array([sigma]), 2000)[0] == pytest.approx(np.sqrt(100 * flipped / 2000), rel=0.05)
    # no error, no flips: the noise is one image's worth
    assert curve.noise(np.array([0.0]), 2000)[0] == pytest.approx(np.sqrt(100 * 0.05 / 2000))
    model = DropModel(curve, 0.0, images=2000)
    assert model.measurement_noise(np.array([1.5]))[0] == pytest.approx(curve.noise(np.array([1.5]), 2000)[0])
    assert DropModel(curve, 0.0).measurement_noise(np.array([1.5]))[0] == 0.0


def test_curve_inverse_returns_the_sigma_of_a_drop():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(500, 10)) * 3
    curve = MarginCurve.from_logits(logits, logits.argmax(axis=1))
    for drop in (0.5, 5.0, 40.0):
        sigma = curve.inverse(drop)
        assert curve(np.array([sigma]))[0] == pytest.approx(drop, rel=1e-6)
    assert curve.inverse(0.0) is None and curve.inverse(1e9) is None


def _curve(seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(1000, 10)) * 2 + 4 * np.eye(10)[rng.integers(0, 10, 1000)]
    return MarginCurve.from_logits(logits, logits.argmax(axis=1), seed=seed)


def test_fit_recovers_a_planted_scale_and_predicts_its_drops():
    curve = _curve()
    kappa = 2.5
    scores = np.logspace(-3, 1.5, 12) * curve.classes
    truth = DropModel(curve, np.log(kappa))
    model = DropModel.fit(curve, scores, truth(scores))
    assert model.log_kappa == pytest.approx(np.log(kappa), abs=0.05)
    assert model.gamma == pytest.approx(1.0, abs=0.03)
    fresh = np.logspace(-2.5, 1.2, 30) * curve.classes
    assert np.max(np.abs(model(fresh) - truth(fresh))) < 0.3
    assert model(np.array([0.0]))[0] == 0.0


def test_interval_reaches_its_coverage_on_points_scattered_as_planted():
    curve = _curve(1)
    rng = np.random.default_rng(5)
    truth = DropModel(curve, np.log(0.8))

    def draw(n):
        scores = np.exp(rng.uniform(np.log(1e-3), np.log(3.0), n)) * curve.classes
        drops = curve(truth.sigma(scores) * np.exp(rng.normal(0, 0.3, n)))  # planted spread: 0.3 in log sigma
        return scores, drops

    model = DropModel.fit(curve, *draw(300))
    assert model.spread == pytest.approx(0.3, abs=0.05)
    scores, drops = draw(2000)
    low, high = model.interval(scores)
    inside = np.mean((drops >= low) & (drops <= high))
    assert 0.75 <= inside <= 0.85  # an 80% interval
    # few points: the spread leans on its prior instead of two residuals
    assert DropModel.fit(curve, *draw(2)).spread > 0.3


def test_fit_and_interval_on_drops_measured_with_the_noise_of_their_flips():
    # drops measured on 2,000 images: each scattered by the standard error its changed hits give it
    curve = _curve(3)
    rng = np.random.default_rng(7)
    truth = DropModel(curve, np.log(1.5))
    images = 2000

    def draw(n):
        scores = np.exp(rng.uniform(np.log(1e-3), np.log(3.0), n)) * curve.classes
        sigma = truth.sigma(scores)
        return scores, truth(scores) + curve.noise(sigma, images) * rng.standard_normal(n)

    model = DropModel.fit(curve, *draw(200), images=images)
    assert model.log_kappa == pytest.approx(np.log(1.5), abs=0.1) and model.gamma == pytest.approx(1.0, abs=0.05)
    assert model.spread < 0.15  # the scatter is the measurements', not the model's
    scores, drops = draw(4000)
    low, high = model.interval(scores)
    small = truth(scores) <= 5.0  # where studies operate (beyond, the prior's bit of spread widens it on the steep curve)
    assert 0.75 <= np.mean(((drops >= low) & (drops <= high))[small]) <= 0.88


def test_points_at_chance_only_say_the_error_is_large():
    curve = _curve(2)
    truth = DropModel(curve, np.log(1.5))
    scores = np.logspace(-3, 0, 8) * curve.classes
    drops = truth(scores)
    ceiling = 60.0
    at_chance = np.array([1e3, 1e4]) * curve.classes  # far beyond: measured at chance
    model = DropModel.fit(curve, np.append(scores, at_chance), np.append(drops, [ceiling, ceiling]), ceiling)
    assert model.log_kappa == pytest.approx(np.log(1.5), abs=0.1)
    assert model(at_chance).tolist() == pytest.approx([ceiling, ceiling])


def test_inverse_of_the_model_gives_the_score_of_a_drop():
    curve = _curve(3)
    model = DropModel(curve, np.log(0.5), gamma=1.2)
    for drop in (0.3, 2.0, 20.0):
        score = model.inverse(np.array([drop]))[0]
        assert model(np.array([score]))[0] == pytest.approx(drop, rel=1e-6)
    assert model.inverse(np.array([0.0]))[0] == 0.0 and np.isinf(model.inverse(np.array([1e9]))[0])


def test_noise_in_the_last_layer_drops_accuracy_as_the_margin_curve_says():
    # a single layer whose error is known exactly: isotropic noise added to the classifier's outputs (the logits)
    import torch

    from objectives.data import load_data
    from objectives.evaluate import batches, evaluate
    from objectives.networks import get_network
    from objectives.quantize import quantize

    network = get_network("digits-cnn")
    data = load_data(network, calibration_size=128)
    qnet = quantize(network.model, data.calibration, network.input_shape, "int8", name=network.name)
    evaluation = data.evaluation
    logits, labels = [], []
    for x, y in batches(evaluation, 256, progress=False):
        logits.append(qnet(x).double().numpy())
        labels.append(y.numpy())
    curve = MarginCurve.from_logits(np.concatenate(logits), np.concatenate(labels), draws=64)
    exact = evaluate(qnet, evaluation, progress=False).top1
    layer = qnet.layer("fc")
    for sigma in (2.0, 6.0):
        drops = []
        for seed in range(6):
            g = torch.Generator().manual_seed(seed)
            layer.noise = lambda lay, sums, s=sigma, g=g: torch.randn(sums.shape, generator=g, dtype=torch.float64) * (
                s / lay.requant_scale.double())
            drops.append(exact - evaluate(qnet, evaluation, progress=False).top1)
        layer.noise = None
        predicted = curve(np.array([sigma]))[0]
        assert predicted > 1.0  # a drop worth measuring (2 and 35 points here)
        assert np.mean(drops) == pytest.approx(predicted, abs=max(1.0, 0.2 * predicted)), (sigma, drops, predicted)


def test_margins_on_a_data_set_are_the_exact_networks_and_keep_the_assignment():
    import torch

    from multipliers import Zoo
    from objectives.data import load_data
    from objectives.distortion.drop_model import margins_on
    from objectives.evaluate import batches
    from objectives.networks import get_network
    from objectives.quantize import quantize

    network = get_network("digits-cnn")
    data = load_data(network, calibration_size=64)
    qnet = quantize(network.model, data.calibration, network.input_shape, "int8", name=network.name)
    evaluation = data.limited(200)
    exact = [(qnet(x).double().numpy(), y.numpy()) for x, y in batches(evaluation, 256, progress=False)]
    qnet.set_assignment({"conv2": Zoo.default()["trunc_s_t8"]}, compensation="bias")
    curve = margins_on(qnet, evaluation, seed=4)
    expected = MarginCurve.from_logits(np.concatenate([z for z, _ in exact]), np.concatenate([y for _, y in exact]), seed=4)
    assert np.array_equal(curve.drops, expected.drops) and np.array_equal(curve.sigmas, expected.sigmas)
    assert qnet.assignment["conv2"].name == "trunc_s_t8" and qnet.compensation == "bias"
    with torch.no_grad():
        assert not torch.equal(qnet(next(iter(batches(evaluation, 256, progress=False)))[0]).double(),
                               torch.from_numpy(exact[0][0]))

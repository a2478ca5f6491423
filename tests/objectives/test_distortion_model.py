"""The closed form and the three prediction levels against Monte-Carlo and direct computation."""

import numpy as np
import pytest

from multipliers import builtin_designs, exact_lut, operand_values
from objectives.distortion import (
    LayerOperands,
    activation_features,
    error_energy_variance_gaussian,
    error_tables,
    expected_error_energy,
    histogram_moments,
    predict_error_energy,
    uniform_moments,
)


@pytest.mark.parametrize("mu, sigma", [(0.0, 3.0), (0.5, 1.0), (-2.0, 4.0)])
def test_closed_form_mean_and_variance_match_monte_carlo_on_random_gemms(mu, sigma):
    rng = np.random.default_rng(7)
    m, k, n, trials = 6, 40, 5, 4000
    errors = rng.normal(mu, sigma, size=(trials, m, k, n))
    energy = (errors.sum(axis=2) ** 2).sum(axis=(1, 2))  # ||dC||_F^2 per trial
    expected = expected_error_energy(m, k, n, mu, sigma**2)
    spread = np.sqrt(error_energy_variance_gaussian(m, k, n, mu, sigma**2))
    standard_error = spread / np.sqrt(trials)
    assert abs(energy.mean() - expected) < 4 * standard_error
    assert energy.std(ddof=1) == pytest.approx(spread, rel=0.08)


def test_bias_dominates_for_large_k():
    # equal error power per product: all bias, or all variance
    assert expected_error_energy(1, 576, 1, 1.0, 0.0) / expected_error_energy(1, 576, 1, 0.0, 1.0) == 576


def some_designs(signed, count=5):
    designs = [m for m in builtin_designs() if m.signed == signed and not m.is_exact]
    return designs[:: max(1, len(designs) // count)][:count]


def test_histogram_moments_against_direct_computation():
    rng = np.random.default_rng(3)
    designs = some_designs(True)
    errors = error_tables(designs)
    p, q = rng.random(256) ** 4, rng.random(256)
    mean, var = histogram_moments(errors, p, q)
    for i, design in enumerate(designs):
        e = design.error_table.astype(np.float64)
        weight = np.outer(p / p.sum(), q / q.sum())
        direct_mean = (weight * e).sum()
        assert mean[i] == pytest.approx(direct_mean, rel=1e-10, abs=1e-10)
        assert var[i] == pytest.approx((weight * (e - direct_mean) ** 2).sum(), rel=1e-10, abs=1e-10)
    uniform_mean, uniform_var = uniform_moments(errors)
    flat_mean, flat_var = histogram_moments(errors, np.ones(256), np.ones(256))
    assert np.allclose(uniform_mean, flat_mean) and np.allclose(uniform_var, flat_var)


def random_layer(rng, signed, m=50, k=48, n=6):
    """A layer with skewed per-column activation histograms and fixed weights."""
    values = operand_values(signed)
    centre = 128 if signed else 0
    weights = np.clip(np.round(rng.normal(centre, 25, size=(k, n))), 0, 255).astype(int)
    histograms = np.zeros((k, 256))
    for col in range(k):
        scale = rng.uniform(5, 60)
        codes = np.clip(np.round(np.abs(rng.normal(0, scale, 2000))) + centre, 0, 255).astype(int)
        histograms[col] = np.bincount(codes, minlength=256)
    return LayerOperands("demo", m, weights, values[weights], histograms, values, 1.0)


def measured_energy(design, codes, layer, compensation):
    """||dC||^2 per trial after compensation fitted on the samples themselves (the ideal constants).

    ``affine`` divides by the gain of the emulated accumulator regressed on the exact one, as the layers do.
    """
    e = design.error_table.astype(np.float64)
    dc = e[codes[..., :, None], layer.weights[None, None]].sum(axis=2)  # (trials, m, n)
    if compensation == "none":
        return (dc**2).sum(axis=(1, 2))
    if compensation == "bias":
        return ((dc - dc.reshape(-1, layer.n).mean(axis=0)) ** 2).sum(axis=(1, 2))
    a = layer.activation_values[codes].astype(np.float64)
    c = np.einsum("tmk,kn->tmn", a, layer.weight_values.astype(np.float64)).reshape(-1, layer.n)
    acc = c + dc.reshape(-1, layer.n)
    cc, aa = c - c.mean(axis=0), acc - acc.mean(axis=0)
    slope = (cc * aa).sum(axis=0) / (cc * cc).sum(axis=0)  # the emulated accumulator's gain on the exact one
    residual = aa / slope - cc
    return (residual**2).reshape(dc.shape).sum(axis=(1, 2))


@pytest.mark.parametrize("signed", [False, True])
def test_weight_aware_level_matches_monte_carlo_with_independent_activations(signed):
    rng = np.random.default_rng(11)
    layer = random_layer(rng, signed)
    designs = some_designs(signed, count=4)
    errors = error_tables(designs)
    p = layer.column_histograms / layer.column_histograms.sum(axis=1, keepdims=True)
    trials = 300
    codes = np.stack([rng.choice(256, size=(trials, layer.m), p=p[col]) for col in range(layer.k)], axis=-1)
    for compensation in ("none", "bias", "affine"):
        predicted = predict_error_energy(layer, errors, "weight-aware", compensation)
        for i, design in enumerate(designs):
            measured = measured_energy(design, codes, layer, compensation)
            if predicted[i] == 0:
                assert measured.max() == 0
                continue
            tolerance = 5 * measured.std(ddof=1) / np.sqrt(trials) + 0.02 * predicted[i]
            assert abs(measured.mean() - predicted[i]) < tolerance, (design.name, compensation)


def test_measured_covariance_captures_correlated_activations():
    """Activations sharing a per-row level (as in one receptive field): the covariance term is needed."""
    rng = np.random.default_rng(2)
    signed, m, k, n, trials = False, 40, 36, 4, 200
    values = operand_values(signed)
    level = rng.uniform(10, 120, size=(trials, m, 1))  # shared by the K activations of a row
    codes = np.clip(np.round(level + rng.normal(0, 12, size=(trials, m, k))), 0, 255).astype(int)
    weights = rng.integers(20, 200, size=(k, n))
    histograms = np.stack([np.bincount(codes[..., col].ravel(), minlength=256) for col in range(k)]).astype(float)
    features = activation_features(values)[codes].reshape(-1, k * 3)  # column-major in k
    cov = np.cov(features, rowvar=False, bias=True)
    correlated = LayerOperands("c", m, weights, values[weights], histograms, values, 1.0, cov)
    independent = LayerOperands("i", m, weights, values[weights], histograms, values, 1.0)
    zoo = {d.name: d for d in builtin_designs()}
    # the affine residual keeps some error that is non-linear in the activation: a looser bound
    checks = {"trunc_u_t8": {"none": 0.06, "bias": 0.06, "affine": 0.12}, "mitchell_u_w7": {"none": 0.06, "bias": 0.1}}
    for name, compensations in checks.items():
        errors = error_tables([zoo[name]])
        for compensation, tolerance in compensations.items():
            measured = measured_energy(zoo[name], codes, correlated, compensation).mean()
            with_cov = predict_error_energy(correlated, errors, "weight-aware", compensation)[0]
            assert with_cov == pytest.approx(measured, rel=tolerance), (name, compensation)
        # without the covariance the compensated prediction misses the row-to-row error swing
        measured = measured_energy(zoo[name], codes, correlated, "bias").mean()
        assert predict_error_energy(independent, errors, "weight-aware", "bias")[0] < 0.5 * measured


def test_levels_agree_when_operands_are_uniform_and_the_design_unbiased():
    rng = np.random.default_rng(5)
    values = operand_values(False)
    w = rng.integers(0, 256, size=(64, 4))
    layer = LayerOperands("u", 10, w, values[w], np.ones((64, 256)), values, 1.0)
    exact = np.zeros((1, 256, 256))
    for level in ("uniform", "histogram", "weight-aware"):
        assert predict_error_energy(layer, exact, level)[0] == 0
    noise = rng.integers(-3, 4, size=(1, 256, 256)).astype(np.float64)
    noise -= noise.mean()
    uniform = predict_error_energy(layer, noise, "uniform")[0]
    histogram = predict_error_energy(layer, noise, "histogram")[0]
    assert histogram == pytest.approx(uniform, rel=0.1)


def test_unknown_level_or_compensation_is_refused():
    rng = np.random.default_rng(0)
    values = operand_values(True)
    w = rng.integers(0, 256, size=(4, 2))
    layer = LayerOperands("x", 1, w, values[w], np.ones((4, 256)), values, 1.0)
    with pytest.raises(ValueError, match="levels"):
        predict_error_energy(layer, np.zeros((1, 256, 256)), "exact")
    with pytest.raises(ValueError, match="compensation"):
        predict_error_energy(layer, np.zeros((1, 256, 256)), "uniform", "scale")

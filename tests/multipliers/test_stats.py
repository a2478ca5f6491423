"""Error statistics against a direct computation, uniform and under operand histograms."""

import numpy as np
import pytest

from multipliers import Multiplier, builtin_designs, error_statistics, exact_lut, operand_values


def direct(m: Multiplier, p: np.ndarray, q: np.ndarray) -> dict:
    """Statistics by explicit loops over the operand pairs with non-zero probability."""
    values = operand_values(m.signed)
    p, q = p / p.sum(), q / q.sum()
    mean = second = absolute = rel = rate = 0.0
    worst = 0
    for i in np.nonzero(p)[0]:
        for j in np.nonzero(q)[0]:
            exact = int(values[i]) * int(values[j])
            e = int(m.lut[i, j]) - exact
            w = p[i] * q[j]
            mean += w * e
            second += w * e * e
            absolute += w * abs(e)
            rel += w * abs(e) / max(abs(exact), 1)
            rate += w * (e != 0)
            worst = max(worst, abs(e))
    return dict(mean_error=mean, mse=second, error_std=np.sqrt(second - mean**2), mae=absolute,
                mred=rel, wce=worst, error_rate=rate, nmed=absolute / (128 * 128 if m.signed else 255 * 255))


def designs_sample():
    designs = [m for m in builtin_designs() if not m.is_exact]
    rng = np.random.default_rng(0)
    return [designs[k] for k in rng.choice(len(designs), size=min(6, len(designs)), replace=False)]


@pytest.mark.parametrize("uniform", [True, False])
def test_statistics_match_direct_computation(uniform):
    rng = np.random.default_rng(1)
    designs = designs_sample()
    if uniform:
        p = q = np.ones(256)
        stats = error_statistics(designs)
    else:
        # sparse, skewed histograms like a layer's operands (half-normal activations)
        p = np.where(rng.random(256) < 0.15, rng.random(256), 0.0)
        q = np.where(rng.random(256) < 0.15, rng.random(256), 0.0)
        stats = error_statistics(designs, p, q)
    for k, m in enumerate(designs):
        expected = direct(m, p, q)
        for key, value in expected.items():
            assert getattr(stats, key)[k] == pytest.approx(value, rel=1e-9, abs=1e-9), (m.name, key)


def test_statistics_of_exact_design_are_zero_and_bias_sign_is_kept():
    exact = Multiplier("e", "exact", True, exact_lut(True))
    low = exact_lut(True).astype(np.int64) - 3  # always 3 too small
    stats = error_statistics([exact, Multiplier("low", "x", True, low)])
    assert stats.record(0) == {k: 0.0 for k in stats.record(0)}
    assert stats.mean_error[1] == -3 and stats.error_std[1] == 0 and stats.wce[1] == 3
    assert stats.by_name("low")["error_rate"] == 1.0


def test_histograms_are_validated():
    designs = designs_sample()[:1]
    with pytest.raises(ValueError, match="256 bins"):
        error_statistics(designs, np.ones(10))
    with pytest.raises(ValueError, match="non-negative"):
        error_statistics(designs, -np.ones(256))

"""Activity-based energy: depends on the operand histograms, reproducible per seed, relative to exact."""

from __future__ import annotations

import numpy as np
import pytest

from multipliers.families import FAMILIES, get_family
from multipliers.hardware.activity import EXACT_MULTIPLY_PJ, activity_energy
from multipliers.hardware.precomputed import attach_synthesis_costs, entry

# built-in designs have shipped netlists: none of these tests needs Yosys


def narrow(centre: int, spread: float) -> np.ndarray:
    """A bell-shaped 256-bin histogram in LUT order."""
    x = np.arange(256)
    return np.exp(-0.5 * ((x - centre) / spread) ** 2)


def test_exact_under_uniform_operands_is_the_reference():
    for signed in (False, True):
        e = activity_energy(get_family("exact").make(signed))
        assert e.relative == pytest.approx(1.0)
        assert e.pj == pytest.approx(EXACT_MULTIPLY_PJ)


def test_same_seed_same_energy_other_histograms_other_energy():
    m = get_family("drum").make(True, k=4)
    uniform = activity_energy(m, samples=4096, seed=3)
    assert activity_energy(m, samples=4096, seed=3) == uniform
    small = activity_energy(m, p=narrow(128, 4), q=narrow(128, 6), samples=4096, seed=3)  # values near 0
    assert small.energy < 0.7 * uniform.energy


def test_glitches_add_to_the_functional_transitions():
    e = activity_energy(get_family("exact").make(False), samples=2048)
    assert e.energy > e.functional > 0
    plain = activity_energy(get_family("exact").make(False), samples=2048, glitches=False)
    assert plain.energy == pytest.approx(plain.functional)


def test_constant_operands_cost_no_dynamic_energy():
    zero_weight = np.zeros(256)
    zero_weight[17] = 1.0
    constant = activity_energy(get_family("trunc").make(False, t=4), p=zero_weight, q=zero_weight, samples=1024)
    assert constant.energy == 0


def test_zoo_designs_get_the_shipped_synthesis_cost():
    designs = attach_synthesis_costs(m for f in FAMILIES for m in f.designs())
    assert all("synthesis" in m.costs for m in designs)
    exact = next(m for m in designs if m.name == "exact_u")
    assert exact.cost("synthesis").area == 1.0 and exact.cost().method == "synthesis"
    t8 = next(m for m in designs if m.name == "trunc_u_t8").cost("synthesis")
    assert 0.2 < t8.area < 0.8 and 0.2 < t8.energy < 0.8
    assert t8.absolute["transistors"] > 0 and t8.delay < 1.0


def test_a_changed_design_does_not_get_a_stale_cost():
    m = get_family("trunc").make(False, t=4)
    impostor = type(m)(m.name, m.family, m.signed, get_family("trunc").lut(False, t=5), m.params)
    assert entry(impostor) is None
    assert "synthesis" not in attach_synthesis_costs([impostor])[0].costs

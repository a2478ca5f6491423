"""Per-layer energy: MACs x energy per product, at multiplier and whole-MAC level, over populations."""

import numpy as np
import pytest

from multipliers import Zoo
from objectives.hardware_cost import ACCUMULATE_PJ, MULTIPLY_PJ, EnergyModel, LayerShape

LAYERS = [LayerShape("conv1", 64, 9, 16), LayerShape("conv2", 16, 144, 32), LayerShape("fc", 1, 64, 10)]


@pytest.fixture(scope="module")
def multipliers():
    zoo = Zoo.default()
    return [zoo["exact_u"], zoo["trunc_u_t6"], zoo["trunc_u_t10"]]


def test_exact_everywhere_costs_the_horowitz_anchors(multipliers):
    model = EnergyModel(LAYERS, multipliers)
    macs = sum(layer.macs for layer in LAYERS)
    x = np.zeros((1, 3), dtype=int)
    assert model.multiplier_pj(x)[0] == pytest.approx(macs * MULTIPLY_PJ)
    assert model.mac_pj(x)[0] == pytest.approx(macs * (MULTIPLY_PJ + ACCUMULATE_PJ))
    assert model.multiplier_saving(x)[0] == pytest.approx(0.0)
    assert model.relative_energy(x)[0] == pytest.approx(1.0)


def test_population_matches_per_assignment_breakdown(multipliers):
    model = EnergyModel(LAYERS, multipliers)
    rng = np.random.default_rng(0)
    X = rng.integers(0, 3, size=(50, 3))
    totals = model.multiplier_pj(X)
    for x, total in zip(X, totals):
        rows = model.breakdown(x)
        assert sum(r.multiplier_pj for r in rows) == pytest.approx(total)
        assert [r.multiplier for r in rows] == [multipliers[j].name for j in x]
        assert sum(r.mac_pj for r in rows) == pytest.approx(model.mac_pj(x[None])[0])


def test_saving_weights_layers_by_macs(multipliers):
    model = EnergyModel(LAYERS, multipliers)
    x = np.array([[0, 2, 0]])  # only the big layer approximated
    share = LAYERS[1].macs / sum(layer.macs for layer in LAYERS)
    expected = 100 * share * (1 - multipliers[2].cost().energy)
    assert model.multiplier_saving(x)[0] == pytest.approx(expected)
    # the whole-MAC saving is the same pJ over a larger total: a third smaller at 0.2/0.1 pJ
    assert model.mac_saving(x)[0] == pytest.approx(expected * MULTIPLY_PJ / (MULTIPLY_PJ + ACCUMULATE_PJ))


def test_layer_energy_function_overrides_the_zoo_cost(multipliers):
    model = EnergyModel(LAYERS, multipliers, layer_energy=lambda layer, m: 0.5 if layer.name == "fc" else 1.0)
    x = np.array([[1, 1, 1]])
    fc = LAYERS[2].macs
    assert model.multiplier_pj(x)[0] == pytest.approx(MULTIPLY_PJ * (sum(l.macs for l in LAYERS) - fc / 2))


def test_distinct_area_counts_each_multiplier_once(multipliers):
    model = EnergyModel(LAYERS, multipliers)
    a = [m.cost().area for m in multipliers]
    got = model.distinct_area(np.array([[0, 0, 0], [1, 2, 1], [0, 1, 2]]))
    assert got == pytest.approx([a[0], a[1] + a[2], sum(a)])


def test_bad_assignments_are_refused(multipliers):
    model = EnergyModel(LAYERS, multipliers)
    with pytest.raises(ValueError, match="3 columns"):
        model.multiplier_pj(np.zeros((1, 2), dtype=int))
    with pytest.raises(ValueError, match="0..2"):
        model.multiplier_pj(np.array([[0, 0, 3]]))

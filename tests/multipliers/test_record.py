"""The multiplier record, exact tables, unit-gate costs and the zoo registry."""

import numpy as np
import pytest

from multipliers import InvalidDesignError, Multiplier, Zoo, builtin_designs, exact_lut, operand_values
from multipliers.unit_gate import GateCount, exact_array, partial_product_array, reduce_columns


@pytest.mark.parametrize("signed", [False, True])
def test_exact_lut_is_the_product_of_every_operand_pair(signed):
    lut = exact_lut(signed)
    values = operand_values(signed)
    a, b = np.meshgrid(values, values, indexing="ij")
    assert lut.dtype == np.int32 and lut.shape == (256, 256)
    assert np.array_equal(lut, a * b)
    if signed:
        assert lut[-128 + 128, -128 + 128] == 16384 and lut[127 + 128, -128 + 128] == -16256
    else:
        assert lut[255, 255] == 65025 and lut[3, 7] == 21


@pytest.mark.parametrize("signed", [False, True])
def test_builtin_exact_designs_equal_the_product(signed):
    exact = [m for m in builtin_designs() if m.family == "exact" and m.signed == signed]
    assert len(exact) == 1
    assert np.array_equal(exact[0].lut, exact_lut(signed)) and exact[0].is_exact


def test_record_is_immutable_and_validated():
    m = Multiplier("demo", "exact", False, exact_lut(False))
    with pytest.raises(ValueError):
        m.lut[0, 0] = 1
    with pytest.raises(AttributeError):
        m.name = "other"
    for bad_name in ("Demo", "1x", "a-b", ""):
        with pytest.raises(InvalidDesignError, match="lowercase identifier"):
            Multiplier(bad_name, "exact", False, exact_lut(False))
    with pytest.raises(InvalidDesignError, match="shape"):
        Multiplier("demo", "exact", False, np.zeros((255, 256), dtype=np.int32))
    too_big = exact_lut(False).astype(np.int64)
    too_big[1, 1] = 1 << 20
    with pytest.raises(InvalidDesignError, match="outside"):
        Multiplier("demo", "exact", False, too_big)
    half = exact_lut(False).astype(np.float64)
    half[2, 2] = 4.5
    with pytest.raises(InvalidDesignError, match="non-integer"):
        Multiplier("demo", "exact", False, half)


def test_multiply_reads_the_table_with_rows_as_activations():
    lut = exact_lut(True).astype(np.int64)
    lut[3 + 128, -2 + 128] = 99  # asymmetric: only (a=3, w=-2) changed
    m = Multiplier("asym", "imported", True, lut)
    assert m.multiply(np.array(3), np.array(-2)) == 99
    assert m.multiply(np.array(-2), np.array(3)) == -6
    assert m.error_table[3 + 128, -2 + 128] == 105


def test_lut_hash_identifies_behaviour():
    a = Multiplier("a", "exact", False, exact_lut(False))
    b = Multiplier("b", "x", False, exact_lut(False))
    assert a.lut_sha256 == b.lut_sha256
    changed = exact_lut(False).copy()
    changed[5, 5] += 1
    assert Multiplier("c", "x", False, changed).lut_sha256 != a.lut_sha256


def test_reduce_columns_counts_an_array_multiplier():
    # 8x8 unsigned array: 64 bits reduce to 16 output bits, one full adder per bit removed.
    heights = [min(c + 1, 15 - c, 8) for c in range(15)]
    assert sum(heights) == 64
    count = reduce_columns(heights)
    assert (count.fa, count.ha) == (48, 8)  # the textbook n(n-2) full adders and n half adders
    assert exact_array(False).and2 == 64
    assert exact_array(True).fa == 49  # Baugh-Wooley's constants cost one more adder


def test_unit_gate_area_shrinks_with_fewer_partial_products():
    i, j = np.indices((8, 8))
    areas = [partial_product_array((i + j) >= t).area for t in range(0, 15, 2)]
    assert all(x > y for x, y in zip(areas, areas[1:]))
    assert (GateCount(fa=1) + GateCount(ha=2)).area == 7 + 6


def test_zoo_lookup_and_suggestions():
    zoo = Zoo.default()
    assert len(zoo) >= 60
    assert len(set(zoo.names)) == len(zoo)
    assert zoo["exact_u"].family == "exact"
    with pytest.raises(KeyError, match="did you mean exact_u"):
        zoo["exact_uu"]
    signed = zoo.select(signed=True)
    assert len(signed) > 0 and all(m.signed for m in signed)
    with pytest.raises(KeyError, match="unknown family"):
        zoo.select(families=["nope"])
    with pytest.raises(ValueError, match="already in the zoo"):
        zoo.extend([zoo["exact_u"]])


def test_every_builtin_design_has_a_relative_unit_gate_cost():
    for m in builtin_designs():
        cost = m.cost("unit-gate")
        assert 0 < cost.area <= 1.6, m.name
        if m.is_exact:
            assert cost.area == pytest.approx(1.0) and cost.energy == pytest.approx(1.0)


def test_synthesis_and_synthesised_costs_are_one_flow():
    """A built-in design's shipped "synthesis" cost and an imported circuit's "synthesised" one answer either name."""
    from multipliers import HardwareCost, builtin_designs

    design = next(m for m in builtin_designs() if m.name == "drum_u_k4")
    assert "synthesis" in design.costs and "synthesised" not in design.costs
    assert design.cost("synthesised") is design.costs["synthesis"]
    imported = design.with_cost(HardwareCost("synthesised", 0.5, 0.4, 0.9, source="its circuit"))
    stripped = type(imported)(imported.name, imported.family, imported.signed, imported.lut, imported.params,
                              {"synthesised": imported.costs["synthesised"]}, imported.bits, imported.source)
    assert stripped.cost("synthesis").energy == 0.4
    with pytest.raises(KeyError, match="published"):
        stripped.cost("published")

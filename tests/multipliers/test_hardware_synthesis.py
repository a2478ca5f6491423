"""Synthesis to the generic transistor-count library: plausible size, structure-consistent ordering, caching."""

from __future__ import annotations

import numpy as np
import pytest

from multipliers import Multiplier
from multipliers.families import FAMILIES, get_family
from multipliers.hardware import synthesis
from multipliers.hardware.activity import netlist_table


pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture(scope="module")
def synth(private_cache, yosys_available):
    return synthesis.synthesize


def test_exact_unsigned_is_a_plausible_size(synth):
    result = synth(get_family("exact").make(False))
    assert 2000 <= result.transistors <= 3000
    assert 250 <= result.cell_count <= 500
    assert 10 <= result.depth <= 40
    assert set(result.cells) >= {"NAND2", "XOR2"}


@pytest.mark.parametrize("family, param, values", [("trunc", "t", (4, 8, 10)), ("optrunc", "k", (1, 2, 3))])
def test_area_falls_as_more_of_the_array_is_dropped(synth, family, param, values):
    exact = synth(get_family("exact").make(False)).transistors
    areas = [synth(get_family(family).make(False, **{param: v})).transistors for v in values]
    assert exact > areas[0] > areas[1] > areas[2], areas


@pytest.mark.parametrize("family, signed, params", [("exact", True, {}), ("mitchell", False, {"w": 5}),
                                                    ("trunc", True, {"t": 6, "corrected": True})])
def test_synthesised_netlist_computes_the_lut(synth, family, signed, params):
    m = get_family(family).make(signed, **params)
    assert np.array_equal(netlist_table(synth(m).netlist, signed), m.lut)


def test_result_is_cached_by_design_and_tool(synth, monkeypatch):
    m = get_family("trunc").make(False, t=10)
    first = synth(m)
    monkeypatch.setattr(synthesis, "run_yosys", lambda *a: pytest.fail("Yosys ran again despite the cache"))
    again = synth(m)
    assert again.transistors == first.transistors and again.netlist == first.netlist
    changed = Multiplier("trunc_u_t10", "trunc", False, get_family("trunc").lut(False, t=11), {"t": 11})
    with pytest.raises(pytest.fail.Exception):
        synth(changed)  # another design: not in the cache


def test_table_designs_are_not_synthesised():
    m = Multiplier("some_table", "imported", False, get_family("exact").lut(False))
    with pytest.raises(synthesis.SynthesisError, match="published"):
        synthesis.synthesize(m)


def test_shipped_table_covers_every_builtin_design():
    from multipliers.hardware.precomputed import entry

    stale = [m.name for family in FAMILIES for m in family.designs() if entry(m) is None]
    assert not stale, f"run python -m multipliers.hardware.regenerate; no shipped cost for {stale}"


def test_shipped_netlists_compute_their_luts():
    from multipliers.hardware.precomputed import netlist_of

    for family, signed, params in (("drum", True, {"k": 4}), ("roba", False, {}), ("kulkarni", False, {"cols": 7})):
        m = get_family(family).make(signed, **params)
        assert np.array_equal(netlist_table(netlist_of(m), signed), m.lut), m.name


def test_shipped_areas_agree_with_the_arrays_structure():
    """Of two array designs, the one keeping a strict subset of the other's partial products is smaller."""
    from multipliers.hardware.precomputed import entry
    from multipliers.hardware.verilog.array import kept_mask

    designs = [m for f in FAMILIES for m in f.designs()
               if m.family in ("exact", "trunc", "bam", "perf") and not m.params.get("corrected")]
    pairs = 0
    for x in designs:
        for y in designs:
            kx, ky = kept_mask(x.family, dict(x.params)), kept_mask(y.family, dict(y.params))
            if x.signed == y.signed and (kx <= ky).all() and (kx != ky).any():
                pairs += 1
                assert entry(x)["transistors"] < entry(y)["transistors"], (x.name, y.name)
    assert pairs > 50


def test_regenerate_missing_keeps_shipped_entries_and_adds_new_designs(synth, tmp_path, monkeypatch):
    import gzip
    import json
    import shutil

    from multipliers.hardware import precomputed, regenerate

    costs, netlists = tmp_path / "costs.json", tmp_path / "netlists.json.gz"
    shutil.copy(precomputed.COSTS_FILE, costs)
    shutil.copy(precomputed.NETLISTS_FILE, netlists)
    table = json.loads(costs.read_text())
    shipped = table["designs"].pop("perf_s_s0_m2")  # as if this design were new
    costs.write_text(json.dumps(table))
    for module in (precomputed, regenerate):
        monkeypatch.setattr(module, "COSTS_FILE", costs)
        monkeypatch.setattr(module, "NETLISTS_FILE", netlists)
    precomputed.cost_table.cache_clear()
    precomputed._netlists.cache_clear()
    try:
        designs = [get_family("exact").make(True), get_family("perf").make(True, s=0, m=2),
                   get_family("trunc").make(True, t=4)]
        written = regenerate.regenerate(designs, jobs=1, missing=True)
        assert list(written["designs"]) == [m.name for m in designs]  # only the designs given, in their order
        assert written["designs"]["trunc_s_t4"] == table["designs"]["trunc_s_t4"]  # kept as shipped
        assert written["designs"]["perf_s_s0_m2"]["transistors"] == shipped["transistors"]  # synthesised again
        with gzip.open(netlists, "rt") as f:
            assert list(json.load(f)) == [m.name for m in designs]
    finally:
        precomputed.cost_table.cache_clear()
        precomputed._netlists.cache_clear()

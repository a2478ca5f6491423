"""Verilog of every zoo design: structural for built-in families, checked against the LUT by exhaustive simulation."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from multipliers import Multiplier, import_designs
from multipliers.families import FAMILIES, get_family
from multipliers.hardware.verilog import GENERATORS, GeneratorError, is_structural, verilog_module
from multipliers.hardware.verilog._circuit import Circuit
from tests.conftest import shared_data_dir, skip_or_fail

FAMILY_NAMES = [f.name for f in FAMILIES]


def builtin_designs() -> list[Multiplier]:
    return [m for family in FAMILIES for m in family.designs()]


def extra_designs() -> list[Multiplier]:
    """Designs outside the default grid whose generators take another path (asymmetric compensated truncation)."""
    return [get_family("optrunc").make(signed, k=1, kw=3, comp=True) for signed in (False, True)]


def evoapprox_designs() -> list[Multiplier]:
    """The 49 EvoApprox8b tables of the shared data ([] when it is not there)."""
    folder = shared_data_dir()
    if not folder.is_dir():
        return []
    return import_designs(folder / "evoapprox-mul8u") + import_designs(folder / "evoapprox-mul8s")


@pytest.fixture(scope="module")
def evoapprox() -> list[Multiplier]:
    designs = evoapprox_designs()
    if not designs:
        skip_or_fail(f"shared test data not found at {shared_data_dir()}; set DSE_SHARED_DATA")
    return designs


@pytest.fixture(scope="module")
def equivalence() -> dict:
    """Every built-in and every EvoApprox design simulated exhaustively, in one Icarus run per core."""
    if not (shutil.which("iverilog") and shutil.which("vvp")):
        skip_or_fail("Icarus Verilog (iverilog, vvp) is not installed; apt-get install iverilog")
    from multipliers.hardware.simulate import check_equivalence

    designs = builtin_designs() + extra_designs() + evoapprox_designs()
    return {r.name: r for r in check_equivalence(designs, jobs=2)}


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_every_builtin_family_has_a_structural_generator(family):
    assert family in GENERATORS, f"write multipliers/hardware/verilog/{family}.py (structural Verilog of {family})"


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_every_design_of_the_family_simulates_equal_to_its_lut(family, equivalence):
    designs = list(get_family(family).designs())
    failed = [f"{m.name}: {equivalence[m.name].mismatches} pairs differ, {equivalence[m.name].first}"
              for m in designs if not equivalence[m.name].passed]
    assert not failed, failed


def test_designs_off_the_default_grid_simulate_equal_to_their_luts(equivalence):
    failed = [m.name for m in extra_designs() if not equivalence[m.name].passed]
    assert not failed, failed


def test_every_evoapprox_table_module_simulates_equal_to_its_lut(evoapprox, equivalence):
    assert len(evoapprox) == 49
    failed = [m.name for m in evoapprox if not equivalence[m.name].passed]
    assert not failed, failed


def test_module_interface_follows_the_design():
    m = get_family("mbm").make(False, w=7)  # overestimates: 17-bit outputs
    text = verilog_module(m)
    assert re.search(r"module mbm_u_w7 \(", text)
    assert "input  wire [7:0] a" in text and "output wire [16:0] p" in text
    signed = verilog_module(get_family("drum").make(True, k=4))
    assert "input  wire signed [7:0] b" in signed and "output wire signed [15:0] p" in signed
    assert "structural" in signed.splitlines()[1]


def test_array_designs_keep_only_their_partial_products():
    """Each truncated column removes AND gates: the structural gate count falls with t."""
    counts = [verilog_module(get_family("trunc").make(False, t=t)).count(" & ") for t in (0, 4, 8, 12)]
    assert counts == sorted(counts, reverse=True) and len(set(counts)) == 4


def test_imported_designs_get_a_behavioural_table_module(evoapprox):
    m = evoapprox[0]
    assert not is_structural(m)
    text = verilog_module(m)
    assert "BEHAVIOURAL" in text.splitlines()[1]
    assert len(re.findall(r"^    rows\[\d+\] = 4096'h[0-9a-f]{1024};$", text, re.M)) == 256


def test_a_generator_that_disagrees_with_the_lut_is_caught():
    m = get_family("exact").make(False)
    circuit = Circuit(m)
    product = GENERATORS["exact"](circuit)
    product[5] = product[6]
    with pytest.raises(GeneratorError, match="differs from the LUT"):
        circuit.finish(product)


def test_an_array_generator_rejects_a_lut_that_is_no_such_array():
    lut = get_family("exact").lut(False).copy()
    lut[3, 3] += 1
    with pytest.raises(GeneratorError):
        verilog_module(Multiplier("broken_u", "exact", False, np.asarray(lut)))

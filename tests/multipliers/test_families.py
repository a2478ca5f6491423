"""The multiplier families: properties every family shares, and each paper's own claims.

The shared suite runs over every registered family and both signednesses; the per-family
tests check the published properties, scalar reference models written independently of the
vectorised ones (bit strings, Python integers, fractions), and products worked out by hand.
"""

from __future__ import annotations

import functools
import re
from fractions import Fraction
from math import floor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from multipliers._record import NAME_PATTERN, Multiplier, exact_lut, operand_values
from multipliers.families import FAMILIES, SignMagnitudeFamily, get_family
from multipliers.families._common import signed_pp_product
from multipliers.families.kulkarni import BLOCKS_BY_COLS
from multipliers.families.mbm import mbm_correction
from multipliers.unit_gate import exact_array

CASES = [(f.name, s) for f in FAMILIES for s in (False, True)]
CASE_IDS = [f"{name}-{'s' if s else 'u'}" for name, s in CASES]

#: Parameters at which a family degenerates to the exact multiplier.
EXACT_END = {
    "exact": {},
    "trunc": {"t": 0},
    "bam": {"hbl": 0, "vbl": 0},
    "perf": {"s": 0, "m": 0},
    "optrunc": {"k": 0},
    "kulkarni": {"cols": 0},
    "etm": {"m": 0},
    "ssm": {"m": 8},
    "drum": {"k": 8},
}
#: Families with no exact setting (the approximation is in the algorithm itself).
NO_EXACT_END = {"mitchell", "mbm", "roba"}
#: Families that remove or simplify cells of a partial-product array (no extra logic).
ARRAY_FAMILIES = {"trunc", "bam", "perf", "optrunc"}
#: A parameter set outside each family's range.
BAD_PARAMS = {
    "trunc": {"t": 16},
    "bam": {"hbl": 9, "vbl": 0},
    "perf": {"s": 6, "m": 3},
    "optrunc": {"k": 0, "comp": True},
    "kulkarni": {"cols": 8},
    "etm": {"m": 5},
    "ssm": {"m": 3},
    "drum": {"k": 1},
    "mitchell": {"w": 0},
    "mbm": {"w": 3},
}


@functools.lru_cache(maxsize=None)
def grid_designs(name: str, signed: bool) -> tuple[Multiplier, ...]:
    return tuple(get_family(name).designs(signed))


@functools.lru_cache(maxsize=None)
def _design(name: str, signed: bool, params: tuple) -> Multiplier:
    return get_family(name).make(signed, **dict(params))


def design(name: str, signed: bool, **params) -> Multiplier:
    """One design, built once per test session."""
    return _design(name, signed, tuple(params.items()))


def all_designs() -> list[Multiplier]:
    return [m for name, s in CASES for m in grid_designs(name, s)]


def exact(signed: bool) -> np.ndarray:
    return exact_lut(signed).astype(np.int64)


def product(m: Multiplier, a: int, b: int) -> int:
    return int(m.multiply(a, b))


def unsigned_bias(m: Multiplier) -> float:
    return float(m.error_table.mean())


def relative_errors(m: Multiplier) -> np.ndarray:
    """Signed relative errors over the operand pairs with a non-zero exact product."""
    ex = exact(m.signed)
    nz = ex != 0
    return m.error_table[nz] / np.abs(ex[nz])


# -- the shared suite -----------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES, ids=[f.name for f in FAMILIES])
def test_family_identity(family):
    assert re.fullmatch(r"[a-z][a-z0-9]{1,9}", family.name), "family names are short identifiers"
    assert family.title and family.citation
    doc = type(family).__doc__ or ""
    assert len(doc) > 200, "the docstring cites the paper and states the algorithm"


def test_family_names_unique_and_zoo_large_enough():
    names = [f.name for f in FAMILIES]
    assert len(names) == len(set(names))
    assert len([n for n in names if n != "exact"]) >= 10
    designs = all_designs()
    assert len(designs) >= 60
    assert len({m.name for m in designs}) == len(designs), "design names are unique across the zoo"
    for f in FAMILIES:
        assert grid_designs(f.name, False) and grid_designs(f.name, True), f"{f.name} offers both signednesses"


def test_every_family_is_classified_for_its_exact_end():
    names = {f.name for f in FAMILIES}
    assert names == set(EXACT_END) | NO_EXACT_END
    assert not set(EXACT_END) & NO_EXACT_END


@pytest.mark.parametrize("name,signed", CASES, ids=CASE_IDS)
def test_default_designs_are_valid(name, signed):
    family = get_family(name)
    lo, hi = (-(1 << 16), (1 << 16) - 1) if signed else (0, (1 << 17) - 1)
    for m in grid_designs(name, signed):
        assert m.family == name and m.signed == signed
        assert NAME_PATTERN.match(m.name)
        assert m.name == family.design_name(signed, **m.params)
        assert m.name.startswith(f"{name}_{'s' if signed else 'u'}")
        assert m.lut.shape == (256, 256) and m.lut.dtype == np.int32
        raw = family.lut(signed, **m.params)
        assert raw.shape == (256, 256) and raw.dtype == np.int64
        assert np.array_equal(raw, m.lut)
        assert lo <= raw.min() and raw.max() <= hi


@pytest.mark.parametrize("name,signed", CASES, ids=CASE_IDS)
def test_default_designs_are_distinct_and_approximate(name, signed):
    designs = grid_designs(name, signed)
    hashes = [m.lut_sha256 for m in designs]
    assert len(set(hashes)) == len(hashes), "no two default designs of a family behave the same"
    if name != "exact":
        assert not any(m.is_exact for m in designs)


@pytest.mark.parametrize("name,signed", [c for c in CASES if c[0] in EXACT_END], ids=lambda v: str(v))
def test_exact_end_reproduces_the_exact_product(name, signed):
    m = design(name, signed, **EXACT_END[name])
    assert m.is_exact
    if name in ARRAY_FAMILIES:  # nothing removed: the exact array's cost
        assert m.cost("unit-gate").area == pytest.approx(1.0)


@pytest.mark.parametrize("name,signed", [c for c in CASES if c[0] in ARRAY_FAMILIES], ids=lambda v: str(v))
def test_array_designs_cost_less_than_the_exact_array(name, signed):
    for m in grid_designs(name, signed):
        assert m.cost("unit-gate").area < 1.0, m.name


@pytest.mark.parametrize("name,signed", CASES, ids=CASE_IDS)
def test_unit_gate_cost_is_the_structure(name, signed):
    family = get_family(name)
    reference = exact_array(signed)
    for m in grid_designs(name, signed):
        circuit = family.structure(signed, **m.params)
        assert circuit.area > 0 and circuit.depth > 0
        cost = m.cost("unit-gate")
        assert cost.absolute["unit_gates"] == circuit.area
        assert cost.area == pytest.approx(circuit.area / reference.area)
        assert cost.energy == cost.area


@pytest.mark.parametrize("family", [f for f in FAMILIES if isinstance(f, SignMagnitudeFamily)], ids=lambda f: f.name)
def test_sign_magnitude_designs_are_odd_and_wrap_the_unsigned_core(family):
    for m in grid_designs(family.name, True):
        # operands -127..127 without 0 (zero carries no sign; ETM need not map it to zero)
        nonzero = np.r_[1:128, 129:256]
        inner = m.lut[np.ix_(nonzero, nonzero)].astype(np.int64)
        assert np.array_equal(inner[::-1, :], -inner), m.name
        assert np.array_equal(inner[:, ::-1], -inner), m.name
        unsigned = family.lut(False, **m.params)
        assert np.array_equal(m.lut[128:, 128:], unsigned[:128, :128]), m.name
        # -128 has magnitude 128, which the unsigned core takes as it is
        assert np.array_equal(m.lut[0, 128:], -unsigned[128, :128]), m.name


@pytest.mark.parametrize("name,signed", CASES, ids=CASE_IDS)
def test_a_zero_operand_gives_zero(name, signed):
    z = 128 if signed else 0
    for m in grid_designs(name, signed):
        if name == "etm" or m.params.get("comp") or m.params.get("corrected"):
            continue  # by design: ETM's low-part scan, the added midpoint or correction constant
        assert not m.lut[z, :].any() and not m.lut[:, z].any(), m.name


@pytest.mark.parametrize("name", sorted(BAD_PARAMS))
def test_parameters_out_of_range_are_refused(name):
    with pytest.raises(ValueError, match=name):
        get_family(name).make(False, **BAD_PARAMS[name])


def test_operand_truncation_refuses_a_weight_side_out_of_range():
    with pytest.raises(ValueError, match="kw"):
        get_family("optrunc").make(True, k=1, kw=8)
    with pytest.raises(ValueError, match="comp needs"):
        get_family("optrunc").make(True, k=1, kw=0, comp=True)


# -- products worked out by hand ------------------------------------------------------------------

HAND_EXAMPLES = [
    # trunc t=4: 15*15 drops its bits of weight 1, 2+2, 4+4+4, 8*4 = 49 -> 176
    ("trunc", False, {"t": 4, "corrected": False}, 15, 15, 176),
    # bam hbl=1 vbl=5: 255*255 drops row b0 (255) and the cells of columns < 5 in rows 1..4:
    # 2*(1+2+4+8) + 4*(1+2+4) + 8*(1+2) + 16*1 = 98 -> 65025 - 353
    ("bam", False, {"hbl": 1, "vbl": 5}, 255, 255, 64672),
    # signed bam hbl=1 vbl=3, -1 * -1: all partial products are 1; dropped: row b0
    # (127 - 128 = -1), cells (0,1), (1,1), (0,2) (2 + 4 + 4 = 10) -> 1 - 9 = -8
    ("bam", True, {"hbl": 1, "vbl": 3}, -1, -1, -8),
    # perf s=0 m=2: 100 * 7 -> 100 * (7 with bits 0, 1 cleared) = 100 * 4
    ("perf", False, {"s": 0, "m": 2}, 100, 7, 400),
    # signed perf s=0 m=1: -3 * -1 -> -3 * (0b11111110 = -2) = 6
    ("perf", True, {"s": 0, "m": 1}, -3, -1, 6),
    # optrunc k=2 comp: 13 = 1101 -> 1110 = 14, 6 = 0110 -> 0110 = 6: 84
    ("optrunc", False, {"k": 2, "comp": True}, 13, 6, 84),
    # signed optrunc k=2: -5 = ...11111011 -> ...11111000 = -8, 7 -> 4: -32
    ("optrunc", True, {"k": 2, "comp": False}, -5, 7, -32),
    # asymmetric: the activation (row) loses k = 1 bit, the weight (column) kw = 3: 13 -> 12, 15 -> 8: 96;
    # swapping the operands gives 14 * 8 = 112, so the roles are not interchangeable
    ("optrunc", False, {"k": 1, "kw": 3}, 13, 15, 96),
    ("optrunc", False, {"k": 1, "kw": 3}, 15, 13, 112),
    # signed: -3 -> -4 (k = 1), -3 -> -8 (kw = 3): 32
    ("optrunc", True, {"k": 1, "kw": 3}, -3, -3, 32),
    # comp: 13 -> 1101 | 1 = 13 (k = 1), 13 -> 1000 | 100 = 12 (kw = 3): 156
    ("optrunc", False, {"k": 1, "kw": 3, "comp": True}, 13, 13, 156),
    # kulkarni, all 16 blocks approximate: 15 = (3, 3) in base 4, every block gives 7:
    # 7 + 7*4 + 7*4 + 7*16 = 175
    ("kulkarni", False, {"cols": 7}, 15, 15, 175),
    # kulkarni cols=1, only block (0, 0) approximate: 7 + 9*4 + 9*4 + 9*16 = 223
    ("kulkarni", False, {"cols": 1}, 15, 15, 223),
    ("kulkarni", True, {"cols": 5}, -15, 15, -175),
    # etm m=4: 0x35 * 0x2A: high parts 3 * 2 = 6 -> 6 << 8 = 1536; low parts 0101 | 1010 have
    # their first 1 at bit 3 -> result bits 7..0 set: 1536 + 255 = 1791 (exact 2226)
    ("etm", False, {"m": 4}, 0x35, 0x2A, 1791),
    ("etm", True, {"m": 4}, -0x35, 0x2A, -1791),
    # etm m=4: 0 * 0x35: b's high part is non-zero, low parts 0000 | 0101 -> bits 6..0 set: 127
    ("etm", False, {"m": 4}, 0, 0x35, 127),
    # ssm m=4: 200 = 1100 1000 -> 1100 0000 = 192, 100 = 0110 0100 -> 0110 0000 = 96: 18432
    ("ssm", False, {"m": 4}, 200, 100, 18432),
    ("ssm", True, {"m": 4}, -100, 100, -9216),
    # drum k=4: 200 = 11001000 -> segment 1100 -> 1101 = 13 << 4 = 208; 100 = 1100100 ->
    # 1100 -> 1101 << 3 = 104; 208 * 104 = 21632
    ("drum", False, {"k": 4}, 200, 100, 21632),
    # signed drum k=4: |-128| = 10000000 -> 1001 << 4 = 144; 144 * 144 = 20736
    ("drum", True, {"k": 4}, -128, -128, 20736),
    # mitchell: 3 * 3: f1 = f2 = 1/2, sum 1 -> 2 * (1*2 + 1*2) = 8
    ("mitchell", False, {"w": 7}, 3, 3, 8),
    # mitchell: 10 = 8 + 2, 12 = 8 + 4: fractions 2/8 + 4/8 < 1 -> 64 + 2*8 + 4*8 = 112
    ("mitchell", False, {"w": 7}, 10, 12, 112),
    ("mitchell", True, {"w": 7}, -3, 3, -8),
    # mitchell w=3: 255 = 128 + 127, fraction 1111111 cut to 111 -> 7/8: 255 -> 240;
    # 240 * 240: sum 14/8 >= 1 -> 2^15 * 14/8 = 57344
    ("mitchell", False, {"w": 3}, 255, 255, 57344),
    # mbm w=7: 16 * 16: fractions 0, mantissa 1 + 10/128 -> 256 * 138 / 128 = 276
    ("mbm", False, {"w": 7}, 16, 16, 276),
    ("mbm", True, {"w": 7}, 16, -16, -276),
    # mbm w=7: 3 * 3: fractions 64/128 each carry; 0 + 5/128 -> 8 * 133/128 = 8.3 -> 8
    ("mbm", False, {"w": 7}, 3, 3, 8),
    # roba: 6 -> 8 (3 * 2^1, the tie, rounds up), 5 -> 4: 8*5 + 6*4 - 8*4 = 32
    ("roba", False, {}, 6, 5, 32),
    ("roba", True, {}, -6, 5, -32),
    # roba: 100 -> 128 (100 >= 96), 20 -> 16: 128*20 + 100*16 - 128*16 = 2112 (exact 2000)
    ("roba", False, {}, 100, 20, 2112),
]


@pytest.mark.parametrize("name,signed,params,a,b,expected", HAND_EXAMPLES)
def test_hand_computed_products(name, signed, params, a, b, expected):
    assert product(design(name, signed, **params), a, b) == expected


# -- scalar reference models (bit strings and Python integers) ------------------------------------


def sign_magnitude_ref(core):
    def signed_core(a: int, b: int, **params) -> int:
        p = core(abs(a), abs(b), **params)
        return -p if (a < 0) != (b < 0) else p

    return signed_core


def wrap16(x: int) -> int:
    return ((x + (1 << 15)) % (1 << 16)) - (1 << 15)


def kept_pp_sum_ref(a: int, b: int, signed: bool, keep) -> int:
    """Sum of the kept partial products a_i b_j 2^(i+j); signed: two's complement weights."""
    total = 0
    for i in range(8):
        for j in range(8):
            if keep(i, j) and (a >> i) & 1 and (b >> j) & 1:
                negative = signed and ((i == 7) != (j == 7))
                total += -(1 << (i + j)) if negative else 1 << (i + j)
    return wrap16(total) if signed else total


def drum_ref(x: int, k: int) -> int:
    s = format(x, "b")
    if x == 0 or len(s) <= k:
        return x
    return int(s[: k - 1] + "1", 2) << (len(s) - k)


def mitchell_ref(a: int, b: int, w: int, mbm: bool = False) -> int:
    if a == 0 or b == 0:
        return 0
    k1, k2 = a.bit_length() - 1, b.bit_length() - 1
    f1 = Fraction(floor(Fraction(a - (1 << k1), 1 << k1) * (1 << w)), 1 << w)
    f2 = Fraction(floor(Fraction(b - (1 << k2), 1 << k2) * (1 << w)), 1 << w)
    c = (1 << w) // 12 if mbm else 0  # 1/12 in units of 2^-w, truncated
    if f1 + f2 < 1:
        value = Fraction(1 << (k1 + k2)) * (1 + f1 + f2 + Fraction(c, 1 << w))
    else:
        value = Fraction(1 << (k1 + k2 + 1)) * (f1 + f2 + Fraction(c // 2, 1 << w))
    return floor(value)


def nearest_power_of_two(x: int) -> int:
    if x == 0:
        return 0
    lo = 1 << (x.bit_length() - 1)
    return 2 * lo if 2 * lo - x <= x - lo else lo  # ties go up


def roba_ref(a: int, b: int) -> int:
    ar, br = nearest_power_of_two(a), nearest_power_of_two(b)
    return a * b - (a - ar) * (b - br)


def etm_ref(a: int, b: int, m: int) -> int:
    ah, bh, al, bl = a >> m, b >> m, a % (1 << m), b % (1 << m)
    if ah == 0 and bh == 0:
        return al * bl
    low = ["0"] * (2 * m)  # result bits 2m-1..0, MSB first
    found = False
    for j in range(m - 1, -1, -1):
        found = found or bool((al >> j) & 1) or bool((bl >> j) & 1)
        if found:
            low[m - 1 - j] = "1"
    if found:
        low[m:] = ["1"] * m
    return ((ah * bh) << (2 * m)) + int("".join(low), 2)


def kulkarni_ref(a: int, b: int, cols: int) -> int:
    total = 0
    for d in range(4):
        for e in range(4):
            x, y = (a >> (2 * d)) & 3, (b >> (2 * e)) & 3
            block = 7 if (x, y) == (3, 3) and d + e < cols else x * y
            total += block << (2 * (d + e))
    return total


def ssm_ref(x: int, m: int) -> int:
    return x if x < (1 << m) else (x >> (8 - m)) << (8 - m)


def _unsigned_refs():
    return {
        "drum": lambda a, b, k: drum_ref(a, k) * drum_ref(b, k),
        "mitchell": lambda a, b, w: mitchell_ref(a, b, w),
        "mbm": lambda a, b, w: mitchell_ref(a, b, w, mbm=True),
        "roba": roba_ref,
        "etm": etm_ref,
        "kulkarni": kulkarni_ref,
        "ssm": lambda a, b, m: ssm_ref(a, m) * ssm_ref(b, m),
    }


REFERENCE_CASES = [(name, s) for name in _unsigned_refs() for s in (False, True)]


@pytest.mark.parametrize("name,signed", REFERENCE_CASES, ids=[f"{n}-{'s' if s else 'u'}" for n, s in REFERENCE_CASES])
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_sign_magnitude_families_match_a_scalar_reference(name, signed, data):
    core = _unsigned_refs()[name]
    ref = sign_magnitude_ref(core) if signed else core
    m = data.draw(st.sampled_from(grid_designs(name, signed)))
    lo, hi = (-128, 127) if signed else (0, 255)
    a = data.draw(st.integers(lo, hi))
    b = data.draw(st.integers(lo, hi))
    assert product(m, a, b) == ref(a, b, **m.params), (m.name, a, b)


ARRAY_KEEP = {
    "bam": lambda p: lambda i, j: j >= p["hbl"] and i + j >= p["vbl"],
    "perf": lambda p: lambda i, j: not p["s"] <= j < p["s"] + p["m"],
    "optrunc": lambda p: lambda i, j: i >= p["k"] and j >= p.get("kw", p["k"]),
}


@pytest.mark.parametrize("name,signed", [(n, s) for n in ARRAY_KEEP for s in (False, True)])
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_array_families_sum_their_kept_partial_products(name, signed, data):
    candidates = [m for m in grid_designs(name, signed) if not m.params.get("comp", False)]
    m = data.draw(st.sampled_from(candidates))
    lo, hi = (-128, 127) if signed else (0, 255)
    a, b = data.draw(st.integers(lo, hi)), data.draw(st.integers(lo, hi))
    keep = ARRAY_KEEP[name](m.params)
    assert product(m, a, b) == kept_pp_sum_ref(a & 0xFF, b & 0xFF, signed, keep), (m.name, a, b)


# -- per-family properties from the papers --------------------------------------------------------


@pytest.mark.parametrize("signed", [False, True])
def test_column_truncation_is_biased_low_and_the_correction_removes_most_bias(signed):
    for t in (2, 4, 6, 8, 10):
        plain = design("trunc", signed, t=t, corrected=False)
        corrected = design("trunc", signed, t=t, corrected=True)
        if not signed:
            assert (plain.error_table <= 0).all()
        assert plain.error_table.mean() < 0
        assert abs(corrected.error_table.mean()) < 0.25 * abs(plain.error_table.mean())


@pytest.mark.parametrize("name", ["bam", "perf", "ssm", "kulkarni", "mitchell"])
def test_unsigned_designs_that_only_drop_terms_never_overestimate(name):
    for m in grid_designs(name, False):
        assert (m.error_table <= 0).all(), m.name
        assert unsigned_bias(m) < 0


def test_perforation_multiplies_by_the_perforated_weight():
    for signed in (False, True):
        a, b = (v.astype(np.int64) for v in np.meshgrid(operand_values(signed), operand_values(signed), indexing="ij"))
        for m in grid_designs("perf", signed):
            s, k = m.params["s"], m.params["m"]
            mask = ((1 << k) - 1) << s
            cleared = b & ~mask  # two's complement for signed b: clearing bit 7 adds 128
            assert np.array_equal(m.lut, a * cleared), m.name


def test_bam_signed_rows_drop_their_share_of_the_baugh_wooley_constant():
    # removing row b0 of a Baugh-Wooley array without the constant fix would bias by -2^7
    m = design("bam", True, hbl=1, vbl=0)
    a, _ = np.meshgrid(operand_values(True), operand_values(True), indexing="ij")
    b = operand_values(True)[None, :]
    assert np.array_equal(m.lut, a * (b & ~1))


def test_operand_truncation_plain_underestimates_and_compensation_reduces_bias():
    for k in (1, 2, 3):
        assert (design("optrunc", False, k=k, comp=False).error_table <= 0).all()
    for signed in (False, True):
        for k in (2, 3):
            plain = design("optrunc", signed, k=k, comp=False).error_table.mean()
            comp = design("optrunc", signed, k=k, comp=True).error_table.mean()
            assert abs(comp) < abs(plain)
    # the compensated operand is the dropped field's midpoint: zero reads as 2^(k-1)
    assert product(design("optrunc", False, k=3, comp=True), 0, 0) == 16


def test_signed_operand_truncation_is_the_truncated_baugh_wooley_array():
    i, j = np.indices((8, 8))
    for k in (1, 2, 3):
        kept = (i >= k) & (j >= k)
        assert np.array_equal(design("optrunc", True, k=k, comp=False).lut, signed_pp_product(True, kept))


def test_mitchell_never_overestimates_and_its_worst_error_is_one_ninth():
    for signed in (False, True):
        for m in grid_designs("mitchell", signed):
            ex = exact(signed)
            assert (np.abs(m.lut) <= np.abs(ex)).all(), m.name
            assert ((np.sign(m.lut) == np.sign(ex)) | (m.lut == 0)).all(), m.name
    full = design("mitchell", False, w=7)
    worst = -relative_errors(full).min()
    assert worst == pytest.approx(1 / 9)  # 2.25 -> 2 at f1 = f2 = 1/2
    assert product(full, 3, 3) == 8 and product(full, 96, 96) == 8192
    # with full fractions the mean relative error is Mitchell's well-known ~3.8 %
    assert np.mean(np.abs(relative_errors(full))) == pytest.approx(0.038, abs=0.002)
    # truncating the fractions only makes it coarser
    assert -relative_errors(design("mitchell", False, w=3)).min() > worst


def test_drum_relative_error_is_bounded_by_its_segment_width():
    for k in (3, 4, 5, 6, 7):
        bound = (1 + 2.0 ** (1 - k)) ** 2 - 1  # each operand within a factor 1 +- 2^(1-k)
        for signed in (False, True):
            m = design("drum", signed, k=k)
            assert np.abs(relative_errors(m)).max() <= bound + 1e-12, (k, signed)
        # reached by two powers of two with more than k bits: 128 -> 128 + 2^(8-k)
        m = design("drum", False, k=k)
        assert product(m, 128, 128) == (128 + (1 << (8 - k))) ** 2
        # operands of at most k bits are exact
        small = np.arange(1 << k)
        assert np.array_equal(m.lut[np.ix_(small, small)], np.multiply.outer(small, small))


def test_drum_is_nearly_unbiased_unlike_dropping_the_same_bits():
    ex = exact(False)
    values = np.arange(256)
    for k in (3, 4, 5, 6):
        m = design("drum", False, k=k)
        approx_operand = m.lut[:, 1].astype(np.int64)  # a' * 1 (1 is exact)
        # over the bits DRUM drops (its segment LSB included), a' - a averages exactly +1/2:
        # the forced 1 sits at the midpoint of the dropped field
        for a0 in range(1 << k, 256, 1 << k):
            t = a0.bit_length() - 1
            width = 1 << (t - k + 2)  # operands sharing the leading one and the k-1 bits below
            if a0 % width == 0:
                group = values[a0 : a0 + width]
                assert (approx_operand[group] - group).mean() == pytest.approx(0.5), (k, a0)
        # so the product's bias is well under 1 % of the mean product, and far below the
        # bias of cutting the same segments without forcing their LSB
        bias = m.error_table.mean()
        shift = np.maximum(np.array([max(int(v).bit_length() - 1, 0) for v in values]) - (k - 1), 0)
        cut = (values >> shift) << shift
        cut_bias = (np.multiply.outer(cut, cut) - ex).mean()
        assert 0 < bias < 0.01 * ex.mean()
        assert bias < 0.5 * abs(cut_bias)
    mitchell = design("mitchell", False, w=7)
    assert abs(design("drum", False, k=4).error_table.mean()) < 0.25 * abs(unsigned_bias(mitchell))


def test_mbm_bias_is_much_smaller_than_mitchells():
    assert mbm_correction(7) == 0b0001010  # 1/12 = 0.000101010101...b cut to 7 bits
    assert [mbm_correction(w) for w in (4, 5, 6)] == [1, 2, 5]
    mbm7, mitchell7 = design("mbm", False, w=7), design("mitchell", False, w=7)
    assert abs(unsigned_bias(mbm7)) < 0.1 * abs(unsigned_bias(mitchell7))
    assert abs(relative_errors(mbm7).mean()) < 0.1 * abs(relative_errors(mitchell7).mean())
    # and its mean error magnitude is smaller too (Mitchell ~3.8 %, MBM ~2.7 %)
    assert np.abs(relative_errors(mbm7)).mean() < 0.75 * np.abs(relative_errors(mitchell7)).mean()
    for w in (5, 6):
        assert abs(unsigned_bias(design("mbm", False, w=w))) < abs(unsigned_bias(design("mitchell", False, w=w)))
    # unlike Mitchell's, MBM's error has both signs (powers of two come out 10/128 too large)
    assert (mbm7.error_table > 0).any() and (mbm7.error_table < 0).any()


def test_roba_is_exact_for_powers_of_two_and_errs_by_the_dropped_term():
    for signed in (False, True):
        m = design("roba", signed)
        values = operand_values(signed)
        powers = np.isin(np.abs(values), [1 << p for p in range(8)])
        err = m.error_table
        assert not err[powers, :].any() and not err[:, powers].any()
        assert np.abs(relative_errors(m)).max() == pytest.approx(1 / 9)  # 3 * 2^p operands
    # ties round up: 3 -> 4, so 3 * 3 = 4*3 + 3*4 - 16 = 8; 5 -> 4, 7 -> 8 (nearest)
    m = design("roba", False)
    assert product(m, 3, 3) == 8 and product(m, 5, 7) == 5 * 7 - (5 - 4) * (7 - 8)


def test_kulkarni_errs_only_where_both_digits_are_three():
    a, b = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    assert BLOCKS_BY_COLS == {0: 0, 1: 1, 2: 3, 3: 6, 4: 10, 5: 13, 6: 15, 7: 16}
    for m in grid_designs("kulkarni", False) + (design("kulkarni", False, cols=1),):
        cols = m.params["cols"]
        expected = np.zeros((256, 256), dtype=np.int64)
        for d in range(4):
            for e in range(4):
                if d + e < cols:  # this block says 7 where the product is 9
                    both_three = (((a >> (2 * d)) & 3) == 3) & (((b >> (2 * e)) & 3) == 3)
                    expected -= 2 * both_three.astype(np.int64) << (2 * (d + e))
        assert np.array_equal(m.error_table, expected), m.name
    full = design("kulkarni", False, cols=7).error_table
    has_three = lambda x: np.any([((x >> (2 * d)) & 3) == 3 for d in range(4)], axis=0)  # noqa: E731
    assert np.array_equal(full != 0, has_three(a) & has_three(b))


def test_etm_is_exact_when_both_operands_are_small():
    for signed in (False, True):
        for m in grid_designs("etm", signed):
            small = np.abs(operand_values(signed)) < (1 << m.params["m"])
            err = m.error_table
            assert not err[np.ix_(small, small)].any(), m.name
            assert err[np.ix_(~small, ~small)].any(), m.name


def test_ssm_is_exact_for_operands_that_fit_a_segment():
    for m in grid_designs("ssm", False):
        small = np.arange(1 << m.params["m"])
        assert not m.error_table[np.ix_(small, small)].any(), m.name


def test_signed_pp_product_without_omissions_is_the_exact_array():
    kept = np.ones((8, 8), dtype=bool)
    for signed in (False, True):
        assert np.array_equal(signed_pp_product(signed, kept), exact(signed))

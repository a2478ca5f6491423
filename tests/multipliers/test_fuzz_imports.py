"""Fuzz: broken LUT files, their metadata and EvoApprox ``.bin`` tables cut short.

Tables of the wrong shape, dtype or range (NaN, fractions, products no 8x8 multiplier can give), ``.csv``
and ``.npy`` files cut or garbled, metadata with fields missing, of the wrong type, unknown, or not an
object at all, files that are not UTF-8. Each is refused with one line naming the file and the problem
(:class:`ImportDesignError`, which ``dse`` prints as ``dse: error: ...`` with exit 2), and nothing is imported;
a mutation that leaves a valid design is fine, any other exception is a bug.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from multipliers import ImportDesignError, exact_lut, import_designs
from tests.fuzz import FUZZ, assert_one_line, cli, one_line, tried

EXACT = {False: exact_lut(False), True: exact_lut(True)}
FIELDS = ("name", "signed", "lut", "family", "source", "params", "area", "energy", "delay", "area_um2", "power_mw",
          "delay_ns", "reference_area_um2", "reference_power_mw", "reference_delay_ns")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)


def refused(path: Path, *named: Path) -> str | None:
    """Import ``path``: None when it is a valid design, else the one-line message (naming ``named``)."""
    try:
        import_designs(path)
    except ImportDesignError as error:
        one_line(str(error), *(str(p) for p in named))
        return str(error)
    return None


def with_metadata(folder: Path, table: np.ndarray, signed: bool, suffix: str = ".npy") -> Path:
    """``table`` saved as ``t<suffix>`` and a metadata file naming it; the metadata file's path."""
    lut = folder / f"t{suffix}"
    if suffix == ".npy":
        np.save(lut, table, allow_pickle=False)
    else:
        np.savetxt(lut, table, delimiter=",", fmt="%r" if table.dtype.kind == "f" else "%d")
    meta = folder / "mine.json"
    meta.write_text(json.dumps({"name": "mine", "signed": signed, "lut": lut.name}))
    return meta


# -- tables ---------------------------------------------------------------------------------------------------
bad_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=300).filter(lambda s: s != (256, 256))


@given(st.booleans(), st.sampled_from([".npy", ".csv"]), st.data())
@FUZZ
def test_tables_of_the_wrong_shape_dtype_or_range_are_refused(signed, suffix, data):
    how = data.draw(st.sampled_from(["shape", "fractions", "non-finite", "range", "complex"]))
    table = EXACT[signed].astype(np.int64)
    if how == "shape":
        shape = data.draw(bad_shapes if suffix == ".npy" else st.tuples(st.integers(1, 300), st.integers(1, 300)).filter(
            lambda s: s != (256, 256)))
        table = np.resize(table, shape)
    elif how == "fractions":
        table = table + data.draw(st.floats(0.01, 0.99))
    elif how == "non-finite":
        table = table.astype(np.float64)
        table[data.draw(st.integers(0, 255)), data.draw(st.integers(0, 255))] = data.draw(
            st.sampled_from([np.nan, np.inf, -np.inf]))
    elif how == "range":
        table[data.draw(st.integers(0, 255)), data.draw(st.integers(0, 255))] = data.draw(
            st.one_of(st.integers(2**17, 2**62), st.integers(-(2**62), -(2**17))))
    else:
        assume(suffix == ".npy")
        table = table.astype(np.complex128) + 1j
    with tempfile.TemporaryDirectory() as tmp:
        meta = with_metadata(Path(tmp), table, signed, suffix)
        tried("LUT file", (Path(tmp) / f"t{suffix}").read_bytes())
        message = refused(meta, Path(tmp) / f"t{suffix}")
        assert message is not None, f"a {how} table was imported"


@given(st.booleans(), st.sampled_from([".npy", ".csv"]), st.data())
@FUZZ
def test_table_files_cut_or_garbled_are_read_or_refused(signed, suffix, data):
    with tempfile.TemporaryDirectory() as tmp:
        meta = with_metadata(Path(tmp), EXACT[signed], signed, suffix)
        lut = Path(tmp) / f"t{suffix}"
        raw = lut.read_bytes()
        at = data.draw(st.integers(0, len(raw)))
        raw = raw[:at] if data.draw(st.booleans()) else raw[:at] + data.draw(st.binary(min_size=1, max_size=16)) + raw[at:]
        lut.write_bytes(raw)
        if refused(meta, lut) is not None:
            tried("LUT file", raw)


@given(st.integers(0, 2 * 65536 + 600).filter(lambda n: n != 2 * 65536), st.sampled_from(["mul8u_x", "mul8s_x"]))
@FUZZ
def test_evoapprox_bin_tables_cut_short_or_too_long_are_refused(size, name):
    raw = (EXACT[name.startswith("mul8s")].astype("<i2" if name.startswith("mul8s") else "<u2")).tobytes()
    raw = raw[:size] if size <= len(raw) else raw + bytes(size - len(raw))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.bin"
        path.write_bytes(raw)
        tried(".bin table", raw)
        message = refused(path, path)
        assert message is not None and "65,536" in message
        message = refused(Path(tmp), path)  # in a folder: the folder's import fails, naming the file
        assert message is not None


def test_a_real_evoapprox_table_cut_at_random_offsets_is_refused(shared_data):
    source = (shared_data / "evoapprox-mul8u" / "mul8u_2P7.bin").read_bytes()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for cut in [0, 1, 2, 65536, len(source) - 1, *rng.integers(3, len(source) - 2, size=6)]:
            path = Path(tmp) / "mul8u_2p7.bin"
            path.write_bytes(source[:cut])
            tried(".bin table", source[:cut])
            message = refused(path, path)
            assert message is not None and f"has {cut} bytes" in message


# -- metadata -------------------------------------------------------------------------------------------------
@given(st.dictionaries(st.sampled_from(FIELDS + ("colour", "")), json_values, max_size=6), st.booleans())
@FUZZ
def test_metadata_with_fields_missing_wrong_or_unknown_is_read_or_refused(fields, as_toml):
    meta = {"name": "mine", "signed": False, "lut": "t.npy"}
    meta.update(fields)
    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "t.npy", EXACT[False])
        path = Path(tmp) / ("mine.toml" if as_toml else "mine.json")
        if as_toml:
            try:
                path.write_text(_toml(meta))
            except ValueError:  # None and nested lists of tables have no TOML form here
                assume(False)
        else:
            path.write_text(json.dumps(meta))
        if refused(path, path) is not None:
            tried("LUT metadata", path.read_bytes())


@given(st.one_of(json_values.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v).encode()),
                 st.binary(max_size=40),
                 st.sampled_from([b"{", b'{"name": ', b"[1,", "\ufeff{}".encode(), b"name = ", b"[[a]]\nb = 1"])),
       st.sampled_from([".json", ".toml"]))
@FUZZ
def test_metadata_files_that_are_not_an_object_of_fields_are_refused(content, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"mine{suffix}"
        path.write_bytes(content)
        message = refused(path, path)
        if suffix == ".toml" and message is None:  # bytes that happen to be a TOML document without the fields
            return
        tried("LUT metadata", content)
        assert message is not None


def test_metadata_and_tables_that_are_not_utf8_are_refused(tmp_path):
    for name, content in (("mine.json", b'{"name": "\xff"}'), ("mine.toml", b"name = '\xc3\x28'"),
                          ("lib.csv", b"name,signed\n\xff\xfe,1\n")):
        folder = tmp_path / name.replace(".", "_")
        folder.mkdir()
        path = folder / name
        path.write_bytes(content)
        tried("LUT metadata", content)
        assert refused(folder if name.endswith(".csv") else path, path) is not None


def test_the_command_line_prints_one_line_and_exits_2(tmp_path):
    np.save(tmp_path / "t.npy", np.zeros((255, 256), np.int64))
    meta = tmp_path / "mine.json"
    meta.write_text(json.dumps({"name": "mine", "signed": False, "lut": "t.npy", "params": 3}))
    tried("LUT metadata", meta.read_bytes())
    code, err = cli(["zoo", "show", "mine", "--import", meta])
    assert_one_line(code, err, str(meta), "params")
    (tmp_path / "mul8u_cut.bin").write_bytes(bytes(1000))
    code, err = cli(["zoo", "list", "--import", tmp_path / "mul8u_cut.bin"])
    assert_one_line(code, err, str(tmp_path / "mul8u_cut.bin"), "65,536")
    (tmp_path / "empty.npy").write_bytes(b"")
    meta.write_text(json.dumps({"name": "mine", "signed": False, "lut": "empty.npy"}))
    code, err = cli(["zoo", "show", "mine", "--import", meta])
    assert_one_line(code, err, str(tmp_path / "empty.npy"))


def _toml(meta: dict) -> str:
    """A flat TOML document of ``meta`` (raises ValueError for what it cannot write)."""
    lines = []
    for key, value in meta.items():
        lines.append(f"{json.dumps(key)} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value) -> str:
    if value is None:
        raise ValueError("no null in TOML")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if np.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise ValueError("TOML integers are 64-bit")
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007F")
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"

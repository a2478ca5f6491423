"""Fuzz: broken study files and ``--set`` overrides, generated from the schema itself.

Every key of every table (:data:`dse.study.schema.SECTIONS`, so keys added later are fuzzed too) gets values
of the wrong type, values out of its range (below its minimum, above its maximum, outside its choices, not
finite), and the tables get unknown keys; whole files get cut, spliced with stray bytes and with bytes that
are not UTF-8. Each must end in one line naming the file and the key (``dse run`` exits 2 and writes no study
folder); a mutation that leaves a valid study is fine, any other exception is a bug.
"""

from __future__ import annotations

import datetime
import json
import math
import tempfile
import typing
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from dse.errors import UserError
from dse.study.config import load_study
from dse.study.schema import SECTIONS
from tests.fuzz import FUZZ, assert_one_line, cli, one_line, tried

REPO = Path(__file__).resolve().parents[2]
MINIMAL = {"network": {"name": "digits-cnn"}}
#: Every key: (table, field).
KEYS = [(table, f) for table, cls in SECTIONS.items() for f in fields(cls)]
HINTS = {table: typing.get_type_hints(cls) for table, cls in SECTIONS.items()}


# -- TOML written by hand (tomllib reads only) ------------------------------------------------------------
def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def _string(value: str) -> str:
    """A TOML basic string: JSON's escapes are TOML's; characters past the BMP as themselves, DEL escaped."""
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007F")


def toml_text(tables: dict) -> str:
    return "".join(f"[{table}]\n" + "".join(f"{_string(k)} = {toml_value(v)}\n" for k, v in keys.items())
                   for table, keys in tables.items())


def study_with(table: str, key: str, value) -> dict:
    tables = {t: dict(keys) for t, keys in MINIMAL.items()}
    tables.setdefault(table, {})[key] = value
    return tables


# -- values of each kind ------------------------------------------------------------------------------------
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12)
text = st.text(max_size=20).filter(lambda s: "\x00" not in s)
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
KINDS = {
    "bool": st.booleans(),
    "int": st.integers(-(2**63), 2**63 - 1),
    "float": finite.filter(lambda x: not x.is_integer()),
    "str": text,
    "date": st.dates(),
    "table": st.dictionaries(names, st.integers(0, 9), min_size=1, max_size=3),
    "list_str": st.lists(text, min_size=1, max_size=3),
    "list_int": st.lists(st.integers(-9, 9), min_size=1, max_size=3),
    "list_float": st.lists(finite.filter(lambda x: not x.is_integer()), min_size=1, max_size=3),
    "list_list": st.lists(st.lists(text, min_size=1, max_size=2), min_size=1, max_size=2),
    "list_bool": st.lists(st.booleans(), min_size=1, max_size=3),
}
#: The kinds each schema type takes (every other kind is the wrong type).
ACCEPTS = {
    "<class 'bool'>": {"bool"}, "<class 'int'>": {"int"}, "<class 'float'>": {"int", "float"},
    "<class 'str'>": {"str"}, "<class 'dict'>": {"table"}, "tuple[str, ...]": {"list_str"},
    "tuple[int, ...]": {"list_int"}, "tuple[float, ...]": {"list_int", "list_float"},
    "tuple[tuple[str, ...], ...]": {"list_list"},
}


def test_every_schema_type_is_known_here():
    unknown = {str(HINTS[t][f.name]) for t, f in KEYS} - set(ACCEPTS)
    assert not unknown, f"add the kinds these schema types take to ACCEPTS: {unknown}"


@st.composite
def wrong_type(draw):
    table, field = draw(st.sampled_from(KEYS))
    kind = draw(st.sampled_from(sorted(set(KINDS) - ACCEPTS[str(HINTS[table][field.name])])))
    return table, field.name, draw(KINDS[kind])


@st.composite
def out_of_range(draw):
    """A value of the right type that the key's minimum, maximum, choices or finiteness refuses."""
    table, field = draw(st.sampled_from([(t, f) for t, f in KEYS if _has_range(t, f)]))
    hint, meta = str(HINTS[table][field.name]), field.metadata
    options = []
    if meta.get("minimum") is not None:
        low = meta["minimum"]
        options.append(st.integers(-(2**40), int(math.ceil(low)) - 1) if "int" in hint else
                       finite.filter(lambda x: x < low))
    if meta.get("maximum") is not None:
        options.append(st.integers(meta["maximum"] + 1, 2**63 - 1))
    if meta.get("choices"):
        options.append(text.filter(lambda s: s not in meta["choices"]))
    if "float" in hint:
        bad = st.sampled_from([math.nan, math.inf, -math.inf])
        options.append(st.lists(bad, min_size=1, max_size=2) if "tuple" in hint else bad)
    return table, field.name, draw(st.one_of(*options))


def _has_range(table: str, field) -> bool:
    meta = field.metadata
    return bool(meta.get("minimum") is not None or meta.get("maximum") is not None or meta.get("choices")
                or "float" in str(HINTS[table][field.name]))


def refused_study_value(table: str, key: str, value) -> str:
    """Run a study file with ``table.key = value``: its one line naming the file and the key (no folder written)."""
    text = toml_text(study_with(table, key, value))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "study.toml"
        path.write_text(text, encoding="utf-8")
        tried("study file", text)
        code, err = cli(["run", path, "--out", Path(tmp) / "out", "--quiet"])
        line = assert_one_line(code, err, str(path), f"{table}.{key}")
        assert not (Path(tmp) / "out").exists()
    return line


@given(wrong_type())
@FUZZ
def test_a_value_of_the_wrong_type_is_one_line_naming_file_and_key(case):
    assert "must be" in refused_study_value(*case)


@given(out_of_range())
@FUZZ
def test_a_value_out_of_range_is_one_line_naming_file_and_key(case):
    refused_study_value(*case)


@given(st.sampled_from(list(SECTIONS)), names, st.integers(0, 9))
@FUZZ
def test_unknown_keys_and_tables_are_one_line_naming_them(table, name, value):
    known = {f.name for f in fields(SECTIONS[table])}
    assume(name not in known and name not in SECTIONS)
    for tables, named in ((study_with(table, name, value), f"{table}.{name}"), ({**MINIMAL, name: {"x": 1}}, f"[{name}]")):
        text = toml_text(tables)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "study.toml"
            path.write_text(text, encoding="utf-8")
            tried("study file", text)
            with pytest.raises(UserError) as caught:
                load_study(path)
            one_line(str(caught.value), str(path), named)


VALID = (REPO / "studies" / "digits.toml").read_bytes()


@given(st.data())
@FUZZ
def test_cut_spliced_or_non_utf8_files_are_read_or_refused_in_one_line(data):
    cut = data.draw(st.integers(0, len(VALID)))
    how = data.draw(st.sampled_from(["cut", "splice", "not utf-8"]))
    if how == "cut":
        content = VALID[:cut]
    elif how == "splice":
        content = VALID[:cut] + data.draw(st.binary(min_size=1, max_size=8).filter(_is_utf8)) + VALID[cut:]
    else:
        content = VALID[:cut] + data.draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80",
                                                           b"\x80", b"\xfe\xff"])) + VALID[cut:]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "digits.toml"
        path.write_bytes(content)
        try:
            load_study(path)
        except UserError as error:
            tried("study file", content)
            one_line(str(error), str(path))
            if how == "not utf-8":
                assert "utf-8" in str(error)
        else:
            assert how != "not utf-8", "a file that is not UTF-8 was read"


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_a_file_nested_too_deep_is_refused_in_one_line(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text("a = " + "[" * 5000 + "]" * 5000)
    tried("study file", path.read_text())
    code, err = cli(["run", path, "--out", tmp_path / "out"])
    assert_one_line(code, err, str(path), "nested too deep")


# -- --set ------------------------------------------------------------------------------------------------
overrides = st.one_of(
    st.text(max_size=30),
    st.builds(lambda t, k, v: f"{t}.{k}={v}", st.sampled_from(list(SECTIONS) + ["nope", ""]),
              st.sampled_from([f.name for _, f in KEYS] + ["nope", ""]),
              st.one_of(st.text(max_size=12), st.sampled_from(["nan", "inf", "[1,", "{a=1}", "-1", "1e999", "true",
                                                               "9223372036854775808", '"x"', "[[]]"]))),
)


@given(overrides)
@FUZZ
def test_set_overrides_are_taken_or_refused_in_one_line(item):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.toml"
        path.write_text(toml_text(MINIMAL))
        try:
            load_study(path, [item])
        except UserError as error:
            tried("--set", item)
            name = item.partition("=")[0].strip()
            one_line(str(error))
            assert "--set" in str(error) or name in str(error) or f"[{name.split('.')[0]}]" in str(error), str(error)


def test_set_overrides_from_the_command_line_exit_2_without_a_folder(tmp_path):
    for item in ("search.budget", "search.budget=many", "search.seed=-1", "search.seed=4294967296", "nope.key=1",
                 "constraints.max_drop=nan", "confirmation.report_drops=[inf]", "study.name='../x'",
                 "study.name='a\\nb'", "search.options={population_size=-3}", "multipliers.cost_method='nope'"):
        tried("--set", item)
        code, err = cli(["run", REPO / "studies" / "digits.toml", "--set", item, "--out", tmp_path / "out"])
        assert_one_line(code, err, item.partition("=")[0] if "=" in item else "--set")
        assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("item, named", [
    ("network.layers=['nope']", "network.layers"), ("network.exact=['nope']", "network.exact"),
    ("network.exact=['conv1','conv2','conv3','fc']", "network.exact"), ("grouping.groups=[['nope']]", "grouping.groups"),
    ("multipliers.families=['nope']", "multipliers.families"), ("multipliers.names=['nope']", "multipliers.names"),
    ("multipliers.names=['exact_u']", "multipliers.names"), ("multipliers.cost_method='nope'", "cost_method"),
    ("multipliers.imports=['/etc/hostname']", "multipliers.imports"), ("run.device='tpu'", "run.device"),
    ("storage.url='nodb://x'", "nodb://x"), ("storage.journal='/nonexistent/j.log'", "/nonexistent/j.log"),
    ("network.weights='/etc/hostname'", "/etc/hostname"),
])
def test_values_only_the_network_or_zoo_can_judge_are_refused_before_any_folder(tmp_path, item, named):
    """Keys of the right type whose values name layers, designs, devices or files that are not there."""
    tried("--set", item)
    code, err = cli(["run", REPO / "studies" / "digits.toml", "--set", item, "--out", tmp_path / "out", "--quiet"])
    assert_one_line(code, err, named)
    assert not (tmp_path / "out").exists()

"""Importing designs: the EvoApprox8b library as published, and every kind of bad file."""

import csv
import json

import numpy as np
import pytest

from multipliers import ImportDesignError, error_statistics, exact_lut, import_designs


def published_rows(folder):
    with open(folder / "evoapprox8b_multipliers.csv", newline="") as handle:
        return {row["name"].lower(): row for row in csv.DictReader(handle)}


def close_to_published(ours: float, published: str) -> bool:
    """Published figures are cut to two or three significant digits: allow one unit of the last one."""
    value = float(published)
    digits = published.split("e")[0]
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    return abs(ours - value) < max(10.0**-decimals, 0.01 * abs(value)) + 1e-9


@pytest.mark.parametrize("folder_name, signed, count", [("evoapprox-mul8u", False, 36), ("evoapprox-mul8s", True, 13)])
def test_evoapprox_statistics_reproduce_published_mae_and_wce(shared_data, folder_name, signed, count):
    folder = shared_data / folder_name
    designs = import_designs(folder)
    assert len(designs) == count
    assert all(d.signed == signed and d.family == "evoapprox" for d in designs)
    rows = published_rows(folder)
    stats = error_statistics(designs)
    checked = 0
    for k, d in enumerate(designs):
        if d.name not in rows:
            continue
        row = rows[d.name]
        assert close_to_published(stats.mae[k], row["mae"]), (d.name, stats.mae[k], row["mae"])
        assert close_to_published(stats.wce[k], row["wce"]), (d.name, stats.wce[k], row["wce"])
        checked += 1
    assert checked == count - (4 if not signed else 0)  # four unsigned tables have no published row


def test_evoapprox_published_cost_is_relative_to_the_library_exact_design(shared_data):
    unsigned = {d.name: d for d in import_designs(shared_data / "evoapprox-mul8u")}
    signed = {d.name: d for d in import_designs(shared_data / "evoapprox-mul8s")}
    assert unsigned["mul8u_1jff"].is_exact and signed["mul8s_1kv8"].is_exact
    assert unsigned["mul8u_1jff"].cost().area == pytest.approx(1.0)
    assert unsigned["mul8u_1jff"].cost().absolute["area_um2"] == pytest.approx(709.6)
    assert signed["mul8s_1kv8"].cost().energy == pytest.approx(1.0)
    assert unsigned["mul8u_2p7"].cost().method == "published"
    rows = published_rows(shared_data / "evoapprox-mul8u")
    assert unsigned["mul8u_2p7"].cost().energy == pytest.approx(float(rows["mul8u_2p7"]["pdk45_power_mw"]) / 0.391)
    assert signed["mul8s_1l2h"].cost().area == pytest.approx(558.9 / 729.8)
    assert "published" not in unsigned["mul8u_199z"].costs  # no published row: no invented cost
    assert np.all(unsigned["mul8u_199z"].lut == 0)


def test_signed_bin_tables_are_rolled_into_value_order(shared_data):
    d = {m.name: m for m in import_designs(shared_data / "evoapprox-mul8s")}["mul8s_1kv8"]
    assert d.multiply(np.array(-128), np.array(-128)) == 16384
    assert d.multiply(np.array(-3), np.array(5)) == -15


def write_meta(tmp_path, table, **meta):
    np.save(tmp_path / "t.npy", table)
    meta = {"name": "mine", "signed": False, "lut": "t.npy", **meta}
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(meta))
    return path


def test_metadata_file_with_absolute_cost(tmp_path):
    path = write_meta(tmp_path, exact_lut(False), area_um2=355.0, power_mw=0.2, reference_area_um2=710.0,
                      reference_power_mw=0.4, family="custom")
    (design,) = import_designs(path)
    assert design.name == "mine" and design.family == "custom" and design.is_exact
    assert design.cost().area == pytest.approx(0.5) and design.cost().energy == pytest.approx(0.5)


def test_toml_metadata_and_csv_table(tmp_path):
    lut = exact_lut(True).astype(np.int64) - 1
    np.savetxt(tmp_path / "t.csv", lut, fmt="%d", delimiter=",")
    (tmp_path / "m.toml").write_text('name = "minus_one"\nsigned = true\nlut = "t.csv"\narea = 0.9\nenergy = 0.8\n')
    (design,) = import_designs(tmp_path / "m.toml")
    assert np.array_equal(design.lut, lut) and design.cost().energy == 0.8


@pytest.mark.parametrize(
    "table, meta, message",
    [
        (np.zeros((256, 255), dtype=np.int32), {}, "shape"),
        (np.full((256, 256), np.nan), {}, "non-finite"),
        (np.full((256, 256), 0.5), {}, "non-integer"),
        (np.full((256, 256), -5, dtype=np.int32), {}, "outside what an 8x8 unsigned"),
        (exact_lut(False), {"name": "Bad Name"}, "not an identifier"),
        (exact_lut(False), {"signed": "maybe"}, "'signed'"),
        (exact_lut(False), {"color": "red"}, "unknown field"),
        (exact_lut(False), {"area_um2": 10.0, "power_mw": 1.0}, "reference"),
        (exact_lut(False), {"area": "big", "energy": 1}, "must be a number"),
    ],
)
def test_bad_files_get_a_clear_error_naming_the_file(tmp_path, table, meta, message):
    path = write_meta(tmp_path, table, **meta)
    with pytest.raises(ImportDesignError, match=message) as info:
        import_designs(path)
    assert str(tmp_path) in str(info.value)


def test_missing_fields_and_files(tmp_path):
    (tmp_path / "m.json").write_text(json.dumps({"name": "x", "lut": "t.npy"}))
    with pytest.raises(ImportDesignError, match="missing field 'signed'"):
        import_designs(tmp_path / "m.json")
    (tmp_path / "m.json").write_text(json.dumps({"name": "x", "signed": 0, "lut": "nope.npy"}))
    with pytest.raises(ImportDesignError, match="does not exist"):
        import_designs(tmp_path / "m.json")
    with pytest.raises(ImportDesignError, match="no such file"):
        import_designs(tmp_path / "absent")
    (tmp_path / "broken.toml").write_text("name = ")
    with pytest.raises(ImportDesignError, match="cannot parse"):
        import_designs(tmp_path / "broken.toml")


def test_a_bad_table_in_a_folder_adds_nothing(tmp_path, shared_data):
    source = shared_data / "evoapprox-mul8u"
    for name in ("mul8u_1JFF.bin", "mul8u_2P7.bin"):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    (tmp_path / "mul8u_BAD.bin").write_bytes(b"\x00" * 100)
    with pytest.raises(ImportDesignError, match="mul8u_BAD.bin.*65,536"):
        import_designs(tmp_path)
    (tmp_path / "mul8u_BAD.bin").unlink()
    assert sorted(d.name for d in import_designs(tmp_path)) == ["mul8u_1jff", "mul8u_2p7"]

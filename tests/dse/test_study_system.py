"""Whole-accelerator energy in studies (cache, front, export) and ``dse report``, on the small fake study.

The fake study (:mod:`study_fake_run`) runs in seconds; ZigZag's mapping of its layers is replaced by a
deterministic stand-in (real mappings of small layers are tested in tests/objectives/test_system_energy.py),
while the accelerator templates and ZigZag's validation stay real.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re

import numpy as np
import pytest

from dse.cli import main
from dse.study import energy as study_energy
from dse.study.config import load_study
from dse.study.front import Front, FrontPoint, with_system_energy
from dse.study.render import front_csv, front_table
from objectives import system_energy
from objectives.errors import ObjectiveInputError
from objectives.system_energy import LayerSystemEnergy, resolve_accelerator
from tests.conftest import skip_or_fail
from tests.dse import study_fake_run
from tests.dse.study_fake_run import install
from tests.dse.study_procs import SMALL
from tests.dse.test_study_run import DIGITS

SYSTEM = ['objectives.energy="system"', 'objectives.accelerator="edge_tpu_like"', 'compensation.mode="none"']


def fake_layer_energy(accelerator, record, index=0):
    """ZigZag's stand-in: MACs at the template's unit energy, memories that grow with the operands' sizes."""
    scale = 1.0 if accelerator.name == "edge_tpu_like" else 3.0
    macs = int(record["m"]) * int(record["k"]) * int(record["n"])
    memory = {"rf": 0.02 * macs * scale, "dram": 50.0 * (record["m"] * record["k"] + record["k"] * record["n"])}
    return LayerSystemEnergy(record["name"], macs, 0.04 * macs * scale, memory, {"I": memory}, float(macs))


@pytest.fixture(scope="module")
def zigzag():
    try:
        system_energy.zigzag_version()
    except ObjectiveInputError as error:
        skip_or_fail(str(error))


@pytest.fixture(scope="module")
def study(zigzag, tmp_path_factory):
    """The fake study run once with energy = system on edge_tpu_like: (folder, stdout)."""
    folder = tmp_path_factory.mktemp("runs") / "digits"
    with pytest.MonkeyPatch.context() as patch:
        install(patch.setattr)
        patch.setattr(system_energy, "layer_energy", fake_layer_energy)
        layer = study_fake_run._Info.as_dict  # the fake's layers as linear layers, with their MACs
        patch.setattr(study_fake_run._Info, "as_dict",
                      lambda self: {**layer(self), "kind": "linear", "macs": self.layer.macs})
        capture = io.StringIO()
        overrides = [arg for item in [*SMALL, *SYSTEM] for arg in ("--set", item)]
        with contextlib.redirect_stdout(capture):
            code = main(["run", str(DIGITS), "--out", str(folder), "--quiet", *overrides])
        assert code == 0
        yield folder, capture.getvalue()


def test_the_front_carries_the_system_energy_saving(study):
    folder, out = study
    assert "system energy saved %" in out and "edge_tpu_like" in out
    points = json.loads((folder / "front.json").read_text())
    saving = [p for p in points if p["energy_saving"] > 0]
    assert saving and all(0 < p["system_energy_saving"] < p["mac_saving"] < p["energy_saving"] for p in saving)
    rows = list(csv.DictReader((folder / "front.csv").open()))
    assert [float(r["system_energy_saving"]) for r in rows] == pytest.approx([p["system_energy_saving"] for p in points],
                                                                             abs=1e-4)
    cache = json.loads((folder / study_energy.SYSTEM_CACHE).read_text())
    (entry,) = cache["accelerators"].values()
    assert entry["name"] == "edge_tpu_like" and len(entry["workloads"]) == 4  # the fake's four layer shapes


def test_system_energy_is_affine_in_multiplier_energy(study):
    """Memories and adders are fixed: the system saving is the multiplier saving times one constant."""
    folder, _ = study
    points = json.loads((folder / "front.json").read_text())
    ratio = [p["system_energy_saving"] / p["energy_saving"] for p in points if p["energy_saving"] > 0]
    assert np.ptp(ratio) < 1e-9 * max(ratio)


def test_another_accelerator_for_a_finished_study(study, capsys, monkeypatch):
    folder, _ = study
    monkeypatch.setattr(system_energy, "layer_energy", fake_layer_energy)
    edge = json.loads((folder / "front.json").read_text())
    assert main(["front", str(folder), "--json", "--no-plots", "--accelerator", "tesla_npu_like"]) == 0
    tesla = json.loads(capsys.readouterr().out)
    assert [p["key"] for p in tesla] == [p["key"] for p in edge]
    assert all(t["system_energy_saving"] != e["system_energy_saving"] for t, e in zip(tesla, edge) if e["energy_saving"])
    monkeypatch.setattr(system_energy, "layer_energy", lambda *a: pytest.fail("ZigZag ran again despite the cache"))
    assert main(["front", str(folder), "--json", "--no-plots", "--accelerator", "tesla_npu_like"]) == 0
    capsys.readouterr()
    assert main(["front", str(folder), "--accelerator", "tesla_npu_lik"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "tesla_npu_lik: not a ZigZag accelerator template" in err


def test_the_export_has_the_per_layer_breakdown(study, tmp_path, monkeypatch):
    folder, _ = study
    monkeypatch.setattr(system_energy, "layer_energy", lambda *a: pytest.fail("ZigZag ran again despite the cache"))
    out = tmp_path / "export"
    assert main(["export", str(folder), "--pick", "0", "--out", str(out)]) == 0
    document = json.loads((out / "assignment.json").read_text())
    system = document["system"]
    assert system["accelerator"] == "edge_tpu_like" and set(system["totals"]["memory_pj"]) == {"rf", "dram"}
    layers = document["layers"]
    assert all({"multiplier_pj", "adder_pj", "memory_pj", "total_pj"} <= set(layer["system"]) for layer in layers)
    total = sum(layer["system"]["total_pj"] for layer in layers)
    assert total == pytest.approx(system["totals"]["total_pj"])
    assert 100 * (1 - total / system["totals"]["exact_total_pj"]) == pytest.approx(system["energy_saving"])
    rows = list(csv.DictReader((out / "system_energy.csv").open()))
    assert [r["layer"] for r in rows] == [layer["layer"] for layer in layers] and "dram_pj" in rows[0]


def test_report_is_one_self_contained_page(study, tmp_path, capsys):
    folder, _ = study
    page = tmp_path / "report.html"
    assert main(["report", str(folder), "--out", str(page)]) == 0
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert text.count('src="data:image/png;base64,') == 3  # front, assignments, surrogate against measured
    assert not re.search(r"<script|<link|@import|url\(|(src|href)=\"(?!data:)", text)  # nothing to fetch or run
    front = json.loads((folder / "front.json").read_text())
    assert text.count("<summary>Front point") == len(front)
    assert "system energy saved %" in text and "edge_tpu_like" in text and "Designs used" in text
    assert "search.budget" in text  # the settings
    assert not list(tmp_path.glob(".*tmp"))  # written atomically
    assert main(["report", str(folder), "--out", str(tmp_path)]) == 2  # a folder, not a file
    assert "is a folder" in capsys.readouterr().err


def test_config_refuses_bad_accelerators_before_anything_runs(zigzag, tmp_path):
    with pytest.raises(Exception, match="objectives: edge_tpu_lik: not a ZigZag accelerator template"):
        load_study(DIGITS, ['objectives.energy="system"', 'objectives.accelerator="edge_tpu_lik"'])
    with pytest.raises(Exception, match="need objectives.energy"):
        load_study(DIGITS, ['objectives.accelerator="edge_tpu_like"'])
    with pytest.raises(Exception, match="needs an accelerator"):
        load_study(DIGITS, ['objectives.energy="system"'])
    broken = tmp_path / "broken.yaml"
    broken.write_text(resolve_accelerator("edge_tpu_like").hardware.read_text().replace("r_cost:", "read_cost:"))
    with pytest.raises(Exception, match=f"{broken}: ZigZag rejects this accelerator"):
        load_study(DIGITS, ['objectives.energy="system"', f'objectives.accelerator="{broken}"'])
    config = load_study(DIGITS, ['objectives.energy="system"', 'objectives.accelerator="tesla_npu_like"'])
    assert config.objectives.accelerator == "tesla_npu_like"


def test_saving_of_an_assignment_by_hand():
    layers = {"a": {"macs": 100, "mac_pj": 3.0, "memory_pj": {"dram": 6.0}},
              "b": {"macs": 10, "mac_pj": 0.3, "memory_pj": {"dram": 0.7}}}
    product = {"exact": 1.0, "half": 0.5}
    model = study_energy.SystemEnergy("acc", layers, lambda layer, design: product[design], 2 / 3, "exact")
    assert model.total_pj({}) == pytest.approx(10.0) and model.saving({}) == 0.0
    rows = model.breakdown({"a": "half"})
    assert rows[0]["multiplier_pj"] == pytest.approx(1.0) and rows[0]["adder_pj"] == pytest.approx(1.0)
    assert model.saving({"a": "half"}) == pytest.approx(10.0)  # 1 pJ of multiplier energy saved out of 10


def test_points_render_their_system_saving():
    point = FrontPoint(50.0, 30.0, 90.0, 99.0, 0.5, 0.4, 2, {"conv1": "m"}, "none", "candidate", "k", 1)
    front = Front("s", 90.5, 100, 2.0, [point], [point], np.zeros((0, 2)), [(0.5, point)])
    shown = with_system_energy(front, lambda assignment: 1.25, "edge_tpu_like")
    assert shown.points[0].system_energy_saving == 1.25 and shown.levels[0][1].system_energy_saving == 1.25
    assert "system energy saved %" in front_table(shown) and "system energy saved %" not in front_table(front)
    assert list(csv.DictReader(io.StringIO(front_csv(shown))))[0]["system_energy_saving"] == "1.25"


def test_a_layer_zigzag_cannot_map_is_refused_before_the_study_folder_exists(zigzag, tmp_path, capsys):
    """ZigZag maps every layer before anything is written: a layer it refuses leaves no folder behind."""
    folder = tmp_path / "runs" / "digits"

    def refuse(accelerator, record, index=0):
        raise ObjectiveInputError(f"ZigZag found no mapping of layer {record['name']} onto {accelerator.name}")

    with pytest.MonkeyPatch.context() as patch:
        install(patch.setattr)
        patch.setattr(system_energy, "layer_energy", refuse)
        layer = study_fake_run._Info.as_dict
        patch.setattr(study_fake_run._Info, "as_dict",
                      lambda self: {**layer(self), "kind": "linear", "macs": self.layer.macs})
        overrides = [arg for item in [*SMALL, *SYSTEM] for arg in ("--set", item)]
        code = main(["run", str(DIGITS), "--out", str(folder), "--quiet", *overrides])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no mapping" in err[0]
    assert not folder.exists()

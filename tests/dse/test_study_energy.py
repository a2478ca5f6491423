"""Activity-based energy in studies: per-layer energies from the layers' operands, cached in the study folder."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from dse.errors import UserError
from dse.study import energy as study_energy
from dse.study.config import load_study
from dse.study.target import build_target
from multipliers import HardwareCost, Multiplier, Zoo
from objectives.hardware_cost import EnergyModel
from tests.dse.test_study_run import DIGITS

SAMPLES = 512


@pytest.fixture(scope="module")
def designs():
    zoo = Zoo.default()
    imported = Multiplier(  # a table-only design (no netlist): trunc_s_t6's products with a published cost
        "table_only_s", "imported", True, zoo["trunc_s_t6"].lut,
        costs={"published": HardwareCost("published", 0.5, 0.4, source="test")},
    )
    return [zoo["exact_s"], zoo["trunc_s_t2"], zoo["trunc_s_t6"], zoo["trunc_s_t10"], imported]


@pytest.fixture(scope="module")
def target(designs):
    config = load_study(DIGITS, ["objectives.energy=\"activity\"", f"objectives.activity_samples={SAMPLES}"])
    return build_target(config, designs)


@pytest.fixture(scope="module")
def table(target, designs, tmp_path_factory):
    folder = tmp_path_factory.mktemp("study")
    return folder, study_energy.activity_table(target, designs, folder, SAMPLES, 0, progress=False)


def test_one_design_costs_different_energy_in_layers_with_different_operands(table, target):
    _, t = table
    hist = target.qnet.histograms
    assert not np.array_equal(hist["conv1"].activation, hist["conv2"].activation)
    per_layer = [t["product"][name]["trunc_s_t2"] for name in ("conv1", "conv2", "conv3", "fc")]
    assert len(set(np.round(per_layer, 6))) == 4
    assert all(t["method"][name]["trunc_s_t2"] == "activity" for name in ("conv1", "fc"))


def test_exact_is_one_in_every_layer_and_designs_rank_by_truncation(table, target, designs):
    folder, t = table
    model = EnergyModel(target.layers, designs, None, lambda layer, m: t["product"][layer.name][m.name])
    assert model.relative[:, 0] == pytest.approx(np.ones(len(target.layers)))
    # more truncated columns, fewer switching gates: in every layer
    assert np.all(model.relative[:, 1] > model.relative[:, 2]) and np.all(model.relative[:, 2] > model.relative[:, 3])
    assert np.all(model.relative[:, 3] > 0)
    # the objective: one design everywhere, savings in the same order; all-exact saves nothing
    X = np.repeat(np.arange(4)[:, None], len(target.layers), axis=1)
    saving = model.multiplier_saving(X)
    assert saving[0] == pytest.approx(0.0) and np.all(np.diff(saving) > 0)
    # the exact multiplier is charged its own activity under each layer's operands, not the uniform anchor
    assert model.exact_multiplier_pj == pytest.approx(
        sum(layer.macs * t["product"][layer.name]["exact_s"] * 0.2 for layer in target.layers))


def test_a_design_without_netlist_keeps_its_table_cost_relative_to_exact(table, target):
    _, t = table
    for layer in target.layers:
        row = t["product"][layer.name]
        assert row["table_only_s"] == pytest.approx(0.4 * row["exact_s"])
        assert t["method"][layer.name]["table_only_s"].startswith("published")


def test_the_table_is_cached_in_the_study_folder_and_reused(table, target, designs, monkeypatch):
    folder, t = table
    saved = json.loads((folder / study_energy.CACHE_FILE).read_text())
    assert saved["product"] == t["product"] and not list(folder.glob("*.tmp"))
    import multipliers.hardware as hardware

    monkeypatch.setattr(hardware, "activity_energy", lambda *a, **k: pytest.fail("recomputed a cached energy"))
    again = study_energy.activity_table(target, designs, folder, SAMPLES, 0, progress=False)
    assert again["product"] == t["product"]
    # another sample count is another table: recomputed, not read back
    calls = []
    monkeypatch.setattr(hardware, "activity_energy",
                        lambda m, p, q, samples, seed: calls.append(m.name) or SimpleNamespace(relative=0.5))
    other = study_energy.activity_table(target, designs[:2], folder, 64, 0, progress=False)
    assert calls and other["product"]["conv2"]["trunc_s_t2"] == 0.5


def test_study_energy_model_follows_the_study_file(target, designs, tmp_path):
    table_model = study_energy.study_energy_model(
        load_study(DIGITS), target, designs, tmp_path, progress=False)
    assert table_model.relative[:, 4] == pytest.approx(0.4) and not (tmp_path / study_energy.CACHE_FILE).exists()
    config = load_study(DIGITS, ["objectives.energy=\"activity\"", f"objectives.activity_samples={SAMPLES}"])
    activity = study_energy.study_energy_model(config, target, designs, tmp_path, progress=False)
    assert (tmp_path / study_energy.CACHE_FILE).is_file()
    assert activity.relative[:, 2].std() > 0  # per layer, unlike a table cost


def test_an_unknown_energy_model_is_one_clear_error():
    with pytest.raises(UserError, match="objectives.energy = 'switching' is not one of table, activity"):
        load_study(DIGITS, ["objectives.energy=\"switching\""])


def test_a_study_with_activity_energy_uses_it_in_the_front_and_the_export(tmp_path, monkeypatch, capsys):
    from dse.cli import main
    from tests.dse.test_study_run import SMALL

    folder = tmp_path / "digits"
    argv = ["run", str(DIGITS), "--out", str(folder), "--quiet", *SMALL, "--set", "objectives.energy=\"activity\"",
            "--set", f"objectives.activity_samples={SAMPLES}", "--set", "search.budget=100"]
    assert main(argv) == 0
    table = json.loads((folder / study_energy.CACHE_FILE).read_text())
    exact = json.loads((folder / "designs.json").read_text())[0]["name"]
    front = json.loads((folder / "front.json").read_text())
    assert front and max(p["energy_saving"] for p in front) > 0
    assert main(["export", str(folder), "--pick", "0", "--out", str(tmp_path / "export")]) == 0
    document = json.loads((tmp_path / "export" / "assignment.json").read_text())
    assert document["energy_model"] == "activity"
    exact_pj = 0.0
    for row in document["layers"]:
        product = table["product"][row["layer"]]
        assert row["multiplier_pj_per_mac"] == pytest.approx(0.2 * product[row["multiplier"]])
        assert row["relative_energy"] == pytest.approx(product[row["multiplier"]] / product[exact])
        assert row["energy_method"] == "activity"
        exact_pj += row["macs"] * 0.2 * product[exact]
    # the front's saving is the export's, against exact multipliers under the same operands
    saved = 100 * (1 - document["totals"]["multiplier_pj"] / exact_pj)
    assert saved == pytest.approx(front[0]["energy_saving"], abs=1e-6)
    # a rerun reads the energies back from the study folder
    import multipliers.hardware as hardware

    monkeypatch.setattr(hardware, "activity_energy", lambda *a, **k: pytest.fail("recomputed a cached energy"))
    assert main(argv) == 0
    capsys.readouterr()

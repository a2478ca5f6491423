"""`dse run`, `dse front`, `dse export` end to end on the digits study (small budgets), and CLI mistakes."""

import base64
import csv
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest

from dse.cli import main

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "studies" / "digits.toml"
SMALL = [
    "--set", "search.budget=150", "--set", "search.population=30", "--set", "confirmation.candidates=4",
    "--set", "surrogate.calibration_points=3", "--set", "confirmation.jobs=2",
]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The digits study run once with small budgets: (folder, stdout)."""
    folder = tmp_path_factory.mktemp("runs") / "digits"
    capture = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(capture):
        code = main(["run", str(DIGITS), "--out", str(folder), "--quiet", *SMALL])
    assert code == 0
    return folder, capture.getvalue()


def counts(folder: Path) -> dict[str, int]:
    storage = f"sqlite:///{folder / 'study.db'}"
    return {s.study_name: s.n_trials for s in optuna.get_all_study_summaries(storage)}


def test_run_reports_the_confirmed_front_and_writes_the_folder(study):
    folder, out = study
    assert "<= 0.5" in out and "<= 1" in out and "MAC energy saved" in out
    for name in ("study.toml", "study.json", "layers.json", "designs.json", "study.db", "front.json", "front.csv",
                 "front.png", "assignments.png", "predicted_vs_measured.png", "surrogate_front.json"):
        assert (folder / name).is_file(), name
    assert (folder / "study.toml").read_text() == DIGITS.read_text()
    n = counts(folder)
    assert n["digits:search"] == 150
    assert 1 + 3 <= n["digits:confirm"] <= 1 + 3 + 4  # baseline, calibration, at most 4 candidates
    assert "held-out" not in out  # the confirmation used every test image: none left for a held-out check
    assert not list(folder.glob("*.tmp"))


def test_front_json_csv_and_table(study, capsys):
    folder, _ = study
    code, out, _ = run(capsys, "front", folder, "--json", "--no-plots")
    points = json.loads(out)
    assert code == 0 and points
    savings = [p["energy_saving"] for p in points]
    assert savings == sorted(savings, reverse=True)
    layers = [layer["name"] for layer in json.loads((folder / "layers.json").read_text())]
    for p in points:
        assert {"energy_saving", "top1", "drop", "predicted_drop", "assignment", "mac_saving", "distinct"} <= set(p)
        if p["role"] == "candidate":  # measured because the surrogate predicted it: with the prediction's interval
            assert p["predicted_drop_low"] <= p["predicted_drop"] <= p["predicted_drop_high"]
        assert set(p["assignment"]) == set(layers)
        assert 0 <= p["drop"] <= 2.0 and 0 < p["mac_saving"] < p["energy_saving"] or p["energy_saving"] == 0
    code, out, _ = run(capsys, "front", folder, "--csv", "--no-plots")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == len(points)
    assert float(rows[0]["energy_saving"]) == pytest.approx(points[0]["energy_saving"], abs=1e-3)
    code, out, _ = run(capsys, "front", folder, "--no-plots")
    assert code == 0 and "mult. energy saved %" in out and "predicted" in out and " ± " in out


def test_drops_come_with_their_paired_standard_error(study, capsys):
    folder, _ = study
    _, out, _ = run(capsys, "front", folder, "--json", "--no-plots")
    points = json.loads(out)
    confirm = optuna.load_study(study_name="digits:confirm", storage=f"sqlite:///{folder / 'study.db'}")
    by_trial = {t.number: t for t in confirm.trials}
    baseline = next(t for t in confirm.trials if t.user_attrs["role"] == "baseline")

    def hits(trial):
        n = trial.user_attrs["images"]
        return np.unpackbits(np.frombuffer(base64.b64decode(trial.user_attrs["hits"]), np.uint8), count=n).astype(int)

    for p in points:
        d = hits(baseline) - hits(by_trial[p["trial"]])  # the same images, in the same order
        assert 100.0 * d.mean() == pytest.approx(p["drop"], abs=1e-9)
        assert p["drop_se"] == pytest.approx(100.0 * d.std(ddof=1) / np.sqrt(len(d)))


def test_rerun_redoes_nothing(study, capsys):
    folder, _ = study
    before = counts(folder)
    front = (folder / "front.json").read_text()
    code, out, _ = run(capsys, "run", DIGITS, "--out", folder, "--quiet", *SMALL)
    assert code == 0
    assert counts(folder) == before
    assert (folder / "front.json").read_text() == front


def test_changed_study_file_is_refused_naming_the_change(study, capsys):
    folder, _ = study
    code, _, err = run(capsys, "run", DIGITS, "--out", folder, "--quiet", *SMALL, "--set", "search.seed=7")
    assert code == 2 and "search.seed (0 -> 7)" in err and "Traceback" not in err


def test_export_writes_assignment_luts_and_readme(study, capsys, tmp_path):
    folder, _ = study
    out = tmp_path / "export"
    code, text, _ = run(capsys, "export", folder, "--pick", "0", "--out", out)
    assert code == 0 and "front point 0" in text
    document = json.loads((out / "assignment.json").read_text())
    front = json.loads((folder / "front.json").read_text())
    assert document["point"]["energy_saving"] == pytest.approx(front[0]["energy_saving"])
    layers = document["layers"]
    assert [r["layer"] for r in layers] == [l["name"] for l in json.loads((folder / "layers.json").read_text())]
    for row in layers:
        for key in ("m", "k", "n", "macs", "multiplier", "family", "params", "signed", "lut_sha256",
                    "multiplier_pj", "mac_pj", "compensation_scale", "compensation_bias"):
            assert key in row
        lut = np.load(out / "luts" / f"{row['multiplier']}.npy")
        assert hashlib.sha256(lut.astype("<i4").tobytes()).hexdigest() == row["lut_sha256"]
        if row["compensation"] != "none":
            assert len(row["compensation_bias"]) == row["n"] == len(row["compensation_scale"])
    assert sum(r["multiplier_pj"] for r in layers) == pytest.approx(document["totals"]["multiplier_pj"])
    saved = 100 * (1 - document["totals"]["multiplier_pj"] / (document["totals"]["macs"] * 0.2))
    assert saved == pytest.approx(front[0]["energy_saving"], abs=1e-6)
    assert len(list(csv.DictReader(io.StringIO((out / "assignment.csv").read_text())))) == len(layers)
    readme = (out / "README.md").read_text()
    assert "assignment.json" in readme and "row = activation operand" in readme
    # a second export into the same folder replaces it; --max-drop picks the best point within the drop
    code, _, _ = run(capsys, "export", folder, "--max-drop", "2", "--out", out)
    assert code == 0 and (out / "assignment.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["export", "{folder}", "--pick", "99", "--out", "{tmp}/x"], "not a front index"),
        (["export", "{folder}", "--max-drop", "-1", "--out", "{tmp}/x"], "a drop is 0 or more points"),
        (["export", "{folder}", "--pick", "0", "--max-drop", "1", "--out", "{tmp}/x"], "not allowed with argument"),
        (["export", "{folder}", "--pick", "0"], "--out"),
        (["export", "{folder}", "--pick", "zero", "--out", "{tmp}/x"], "expected a front index"),
        (["export", "{folder}", "--pick", "0", "--out", "{tmp}/busy"], "is not an earlier export"),
        (["front", "{tmp}"], "is not a study folder"),
        (["front", "{tmp}/absent"], "does not exist"),
        (["run", "{tmp}/absent.toml", "--out", "{tmp}/new"], "does not exist"),
        (["run", str(DIGITS), "--out", "{tmp}/new", "--set", "network.exact=['conv9']"], "no layer 'conv9'"),
        (["run", str(DIGITS), "--out", "{tmp}/new", "--set", "multipliers.names=['no_such']"], "unknown multiplier"),
        (["run", str(DIGITS), "--out", "{tmp}/new", "--set", "compensation.mode='per-layer'"], "is not one of"),
        (["run", str(DIGITS), "--out", "{tmp}/busy"], "holds no study"),
    ],
)
def test_cli_mistakes_exit_2_with_one_line_and_no_partial_folder(study, tmp_path, capsys, argv, message):
    folder, _ = study
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    argv = [a.format(folder=folder, tmp=tmp_path) for a in argv]
    try:
        code, _, err = run(capsys, *argv)
    except SystemExit as exit_:  # argparse mistakes
        code, err = exit_.code, capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "new").exists() and not (tmp_path / "x").exists()
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["notes.txt"]


def test_command_line_starts_without_heavy_imports():
    code = (
        "import sys, dse.cli; dse.cli.build_parser(); "
        "heavy = [m for m in ('torch', 'optuna', 'pymoo', 'matplotlib') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_the_drop_model_takes_its_margins_on_the_confirmation_images(study, tmp_path, caplog):
    from types import SimpleNamespace

    from dse.study.config import load_study
    from dse.study.runner import MARGINS_FILE, _confirmation_margins
    from objectives.distortion import MarginCurve

    folder, _ = study
    with np.load(folder / MARGINS_FILE) as data:
        kept = MarginCurve(data["sigmas"], data["drops"], int(data["classes"]), data["flips"])
    assert kept.classes == 10 and np.all(np.diff(kept.drops) >= 0) and kept.drops[-1] > 50
    assert np.all(kept.flips >= kept.drops - 1e-9)  # every net flip is a changed hit
    config = load_study(folder / "study.toml")
    calls = []
    fresh = MarginCurve(np.array([1.0, 2.0]), np.array([0.0, 5.0]), 10, np.array([1.0, 9.0]))
    target = SimpleNamespace(margins=lambda images, seed: calls.append(images) or fresh)
    (tmp_path / MARGINS_FILE).write_bytes(b"PK\x03\x04 cut short")  # a damaged copy: measured again, and rewritten
    again = _confirmation_margins(config, target, tmp_path)
    assert calls == [config.confirmation.images] and np.array_equal(again.drops, fresh.drops)
    assert "unusable" in caplog.text
    assert np.array_equal(_confirmation_margins(config, target, tmp_path).flips, fresh.flips) and len(calls) == 1
    # an older study's file without flip counts: measured again
    np.savez(tmp_path / MARGINS_FILE, sigmas=fresh.sigmas, drops=fresh.drops, classes=10)
    assert np.array_equal(_confirmation_margins(config, target, tmp_path).flips, fresh.flips) and len(calls) == 2

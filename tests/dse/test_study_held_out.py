"""The held-out check: the points reported at each level re-measured on the test images the confirmation left out."""

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import optuna
import pytest

from dse.cli import main
from dse.study.config import load_study

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "studies" / "digits.toml"
IMAGES = 360  # of the 540 digits test images: 180 held out
SMALL = [
    "--set", "search.budget=150", "--set", "search.population=30", "--set", "confirmation.candidates=4",
    "--set", "surrogate.calibration_points=3", "--set", "confirmation.jobs=1", "--set", f"confirmation.images={IMAGES}",
]


def run_quiet(*argv) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main([str(a) for a in argv])
    return code, out.getvalue()


def confirm_trials(folder: Path) -> list:
    return optuna.load_study(study_name="digits:confirm", storage=f"sqlite:///{folder / 'study.db'}").trials


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs") / "digits"
    code, out = run_quiet("run", DIGITS, "--out", folder, "--quiet", *SMALL)
    assert code == 0
    return folder, out


def test_the_front_is_re_measured_on_the_images_the_confirmation_left_out(study):
    from objectives.data import LIMIT_SEED, balanced_subset
    from objectives.evaluate import evaluate
    from torch.utils.data import Subset

    from dse.study.target import apply_assignment, build_target

    folder, out = study
    assert "held-out drop ± s.e." in out and "180 test images the confirmation did not use" in out
    held = [t for t in confirm_trials(folder) if t.user_attrs.get("subset") == "held-out"]
    points = json.loads((folder / "front.json").read_text())
    reported = [p for p in points if p["held_out_drop"] is not None]
    assert reported == points and len(held) == 1 + len(points)  # the exact network and every front point
    assert all(t.user_attrs["images"] == 180 for t in held)

    # the same figures from an independent evaluation on the complement of the confirmation subset
    target = build_target(load_study(DIGITS, SMALL[1::2]))
    labels = target.data.labels
    confirmed = set(balanced_subset(labels, IMAGES, LIMIT_SEED).tolist())
    rest = Subset(target.data.evaluation, [i for i in range(len(labels)) if i not in confirmed])
    assert len(rest) == 180
    exact = evaluate(_exact(target), rest, None, 256, progress=False).top1
    baseline = next(t for t in held if t.user_attrs["role"] == "baseline")
    assert baseline.user_attrs["top1"] == pytest.approx(exact)
    for p in reported:
        apply_assignment(target.qnet, {k: _design(target, v) for k, v in p["assignment"].items()}, p["compensation"])
        top1 = evaluate(target.qnet, rest, None, 256, progress=False).top1
        assert p["held_out_drop"] == pytest.approx(exact - top1, abs=1e-9)
        assert p["held_out_drop_se"] is not None and p["held_out_drop_se"] >= 0


def _design(target, name):
    return next(m for m in target.multipliers if m.name == name)


def _exact(target):
    target.qnet.set_assignment({}, compensation="none")
    return target.qnet


def test_front_and_csv_carry_the_held_out_drop_and_a_rerun_measures_nothing(study):
    folder, _ = study
    before = len(confirm_trials(folder))
    code, out = run_quiet("run", DIGITS, "--out", folder, "--quiet", *SMALL)
    assert code == 0 and len(confirm_trials(folder)) == before
    code, table = run_quiet("front", folder, "--no-plots")
    assert code == 0 and "held-out drop ± s.e." in table
    code, text = run_quiet("front", folder, "--csv", "--no-plots")
    assert code == 0 and "held_out_drop" in text.splitlines()[0]


def test_the_export_states_the_held_out_drop(study, tmp_path):
    folder, _ = study
    point = json.loads((folder / "front.json").read_text())[0]
    code, _ = run_quiet("export", folder, "--pick", 0, "--out", tmp_path / "export")
    assert code == 0
    document = json.loads((tmp_path / "export" / "assignment.json").read_text())
    assert document["point"]["held_out_drop"] == pytest.approx(point["held_out_drop"])
    readme = (tmp_path / "export" / "README.md").read_text()
    assert "Re-measured on the 180 test images" in readme and f"{point['held_out_drop']:.2f}" in readme


def test_switched_off_there_is_no_check(tmp_path):
    folder = tmp_path / "digits"
    code, out = run_quiet("run", DIGITS, "--out", folder, "--quiet", *SMALL, "--set", "confirmation.held_out=false")
    assert code == 0 and "held-out" not in out
    assert not [t for t in confirm_trials(folder) if t.user_attrs.get("subset")]

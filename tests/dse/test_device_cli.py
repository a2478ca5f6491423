"""``--device`` on ``dse eval``, ``distortion``, ``inject``, ``predict`` and the study key ``[run] device``: a device
the machine lacks, or a word that is no device, is one line and exit 2 before anything is loaded or written; the
device changes no result, so a study resumes whatever its ``run.device``; on a GPU the confirmation measures in
this process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dse.cli import main
from dse.errors import UserError
from dse.study.config import flatten, from_tables, load_study
from dse.study.directory import check_directory
from dse.study.schema import RESUMABLE, SECTIONS, reference

from .study_procs import DIGITS, SMALL, overrides, run_here

#: Every command that takes --device, with what else it needs (a missing --assign file is never reached).
COMMANDS = {
    "eval": ["eval", "--network", "digits-cnn", "--json"],
    "distortion": ["distortion", "--network", "digits-cnn", "--multiplier", "exact_s", "--plot", "{tmp}/d.png"],
    "inject": ["inject", "--network", "digits-cnn", "--out", "{tmp}/inject"],
    "predict": ["predict", "--network", "digits-cnn", "--assign", "{tmp}/a.json"],
}


@pytest.fixture
def no_cuda(monkeypatch):
    """A machine without CUDA, whatever this one has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture
def one_gpu(monkeypatch):
    """A machine with one CUDA device (only device names are resolved; nothing runs on it)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


def one_line_error(capsys, argv: list[str]) -> str:
    """Run ``dse argv``; it must exit 2 with one ``dse: error:`` line and no traceback; that line."""
    assert main([str(a) for a in argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dse: error: "), err
    return lines[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_cuda_without_cuda_is_one_line_naming_what_there_is(command, no_cuda, tmp_path, capsys):
    argv = [a.format(tmp=tmp_path) for a in COMMANDS[command]]
    for device in ("cuda", "cuda:3"):
        line = one_line_error(capsys, [*argv, "--device", device])
        assert f"device {device!r} asks for CUDA" in line and "available: cpu" in line
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_device_words_are_one_line(command, tmp_path, capsys):
    argv = [a.format(tmp=tmp_path) for a in COMMANDS[command]]
    for device in ("gpu", "cuda:x", "cpu:1", "auto:0"):
        line = one_line_error(capsys, [*argv, "--device", device])
        assert f"unknown device {device!r}" in line and "cpu, cuda, cuda:N or auto" in line
    assert list(tmp_path.iterdir()) == []


def test_a_gpu_the_machine_lacks_is_named_with_the_ones_it_has(one_gpu, tmp_path, capsys):
    line = one_line_error(capsys, [*COMMANDS["eval"], "--device", "cuda:3"])
    assert "'cuda:3' does not exist" in line and "1 CUDA device(s)" in line and "available: cpu, cuda:0" in line


def test_eval_on_the_cpu_gives_what_the_default_device_gives(capsys):
    """Inference is bit-exact: --device cpu and the default (auto: a GPU when there is one) agree exactly."""
    results = []
    for extra in ([], ["--device", "cpu"]):
        assert main(["eval", "--network", "digits-cnn", "--multiplier", "exact_s", "--json", *extra]) == 0
        result = json.loads(capsys.readouterr().out)
        results.append({k: result[k] for k in ("top1", "top5", "images")})
    assert results[0] == results[1] and results[0]["images"] == 540


def test_float_eval_on_the_cpu(capsys):
    assert main(["eval", "--network", "digits-cnn", "--float", "--device", "cpu", "--limit", "100", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 100


# -- the study key ---------------------------------------------------------------------------------------------
def test_run_device_is_in_the_schema_reference_and_round_trips(tmp_path):
    assert "run" in SECTIONS and "run.device" in RESUMABLE
    text = reference()
    assert "### [run]" in text and '| `device` | string | `"auto"` |' in text
    path = tmp_path / "s.toml"
    path.write_text('[network]\nname = "digits-cnn"\n[run]\ndevice = "cpu"\n')
    config = load_study(path)
    assert config.run.device == "cpu"
    assert load_study(path, ["run.device=cuda:1"]).run.device == "cuda:1"  # checked when a run starts
    again = from_tables(config.as_dict(), config.path)
    assert flatten(again.as_dict()) == flatten(config.as_dict()) and again.run.device == "cpu"
    # the device decides no result: the digest (and so the study folder's identity) leaves it out
    path.write_text('[network]\nname = "digits-cnn"\n')
    default = load_study(path)
    assert default.run.device == "auto" and default.digest() == config.digest()
    # a folder made before [run] existed resumes, whatever the device
    stored = default.as_dict()
    del stored["run"]
    assert from_tables(stored, path).run.device == "auto"


@pytest.mark.parametrize("device, message", [
    ("cuda", "asks for CUDA"), ("cuda:3", "asks for CUDA"), ("gpu", "unknown device 'gpu'"),
])
def test_run_on_a_device_the_machine_lacks_writes_nothing(device, message, no_cuda, tmp_path, capsys):
    out = tmp_path / "digits"
    line = one_line_error(capsys, ["run", DIGITS, "--out", out, "--quiet", "--set", f"run.device='{device}'"])
    assert f"{DIGITS}: run.device: " in line and message in line
    assert not out.exists()
    # from the study file too, and before --fresh moves anything aside
    study = tmp_path / "gpu.toml"
    study.write_text(DIGITS.read_text() + f'\n[run]\ndevice = "{device}"\n')
    (out / "mine").mkdir(parents=True)
    line = one_line_error(capsys, ["run", study, "--out", out, "--quiet", "--fresh"])
    assert f"{study}: run.device: " in line and message in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits", "gpu.toml"]  # no digits.old1
    assert [p.name for p in out.iterdir()] == ["mine"]


def test_run_on_a_gpu_the_machine_lacks_names_the_ones_it_has(one_gpu, tmp_path, capsys):
    line = one_line_error(capsys, ["run", DIGITS, "--out", tmp_path / "d", "--set", "run.device='cuda:3'"])
    assert "'cuda:3' does not exist" in line and "available: cpu, cuda:0" in line
    assert not (tmp_path / "d").exists()


def test_a_study_resumes_when_only_its_device_changed(tmp_path, capsys):
    out = tmp_path / "digits"
    first = run_here(out)
    assert json.loads((out / "study.json").read_text())["config"]["run"]["device"] == "auto"
    check_directory(load_study(DIGITS, [*SMALL, "run.device=cpu"]), out)  # accepted
    again = run_here(out, "run.device='cpu'")  # continues: nothing to redo
    assert again.real_evaluations == first.real_evaluations
    assert json.loads((out / "study.json").read_text())["config"]["run"]["device"] == "cpu"
    # the command line says the same, and a changed deciding key is still refused
    assert main(["run", str(DIGITS), "--out", str(out), "--quiet", *overrides("search.seed=3", "run.device='cpu'")]) == 2
    assert "search.seed (0 -> 3)" in capsys.readouterr().err


def test_a_shared_storage_takes_workers_on_other_devices(tmp_path):
    journal = tmp_path / "shared.journal"
    run_here(tmp_path / "a", f"storage.journal='{journal}'")
    report = run_here(tmp_path / "b", f"storage.journal='{journal}'", "run.device='cpu'")  # not refused
    assert report.front.points


# -- confirmation on a GPU ---------------------------------------------------------------------------------------
class _RecordingPool:
    """Stands in for the process pool (the fake study's target lives in this process only)."""

    made: list[int] = []

    def __init__(self, workers: int) -> None:
        from dse.study.confirm import _InlinePool

        self.made.append(workers)
        self.inline = _InlinePool()

    def __getattr__(self, name: str):
        return getattr(self.inline, name)


def test_confirmation_on_a_gpu_measures_in_this_process(monkeypatch, tmp_path, caplog):
    import logging

    import dse.study.confirm
    import dse.study.target

    monkeypatch.setattr(dse.study.confirm, "_ProcessPool", _RecordingPool)
    monkeypatch.setattr(_RecordingPool, "made", [])
    # on the CPU, as before: confirmation.jobs processes
    run_here(tmp_path / "cpu", "confirmation.jobs=2", "run.device='cpu'")
    assert _RecordingPool.made and set(_RecordingPool.made) == {2}
    # on a GPU: every measurement in this process, whatever confirmation.jobs says, and one INFO line says so
    _RecordingPool.made.clear()
    monkeypatch.setattr(dse.study.target, "study_device", lambda config: torch.device("cuda", 0))
    with caplog.at_level(logging.INFO, logger="dse.study.confirm"):
        report = run_here(tmp_path / "gpu", "confirmation.jobs=2", "run.device='cuda'")
    assert _RecordingPool.made == [] and report.front.points
    assert "calibration on cuda:0: measuring in this process" in caplog.text

"""A study stopped any way (SIGKILL mid-search or mid-confirmation, Ctrl-C, a full disk) resumes to the same front.

Runs the small fake study (:mod:`study_fake_run`: real storage, claims, engines and rounds; stand-in
network) in a process, stops it once the storage shows it in the phase under test, continues it in
this process, and compares the result with an uninterrupted run: the same front, the same search
trials in the same order (none lost, none twice) and every assignment measured once.
"""

from __future__ import annotations

import json
import resource
import signal
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from dse.cli import main
from dse.study.storage import repair_journal

from .study_procs import (
    DIGITS, Watch, finish, front_of, kill, measured_hashes, overrides, reference_run, run_here, search_records, start,
    storage_of, trials, wait_until,
)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The small study run once, without interruption: (report, search records, measured hashes, folder)."""
    return reference_run(tmp_path_factory.getbasetemp() / "reference")


def assert_same_as_reference(out: Path, report, reference, journal: str = "") -> None:
    """Same front, same search trials in order, each reference assignment measured exactly once, no claim left."""
    expected, expected_records, expected_hashes, _ = reference
    storage = storage_of(out, journal=journal)
    assert front_of(report) == front_of(expected)
    assert search_records(storage) == expected_records
    hashes = measured_hashes(storage)
    assert len(hashes) == len(set(hashes)), "an assignment was measured twice"
    assert sorted(hashes) == expected_hashes
    assert not trials(storage, "claims", (TrialState.RUNNING,)), "a claim was left behind"


def test_sigkill_mid_search_then_rerun_gives_the_uninterrupted_front(reference, tmp_path):
    out = tmp_path / "digits"
    process = start(out)
    watch = Watch(out)
    wait_until(lambda: watch.count("search") >= 40, process, "two batches of search trials")
    kill(process)
    assert watch.count("search") < 160  # it was stopped inside the search
    assert_same_as_reference(out, run_here(out), reference)


def test_sigkill_mid_confirmation_then_rerun_gives_the_uninterrupted_front(reference, tmp_path):
    out = tmp_path / "digits"
    measured = 1 + 3 + 1  # baseline, calibration, a candidate: the kill lands inside the next confirmation
    process = start(out, hang_after=measured)
    watch = Watch(out)
    wait_until(lambda: watch.count("confirm") >= measured, process, "a confirmation")
    kill(process)
    assert watch.count("confirm") == measured < len(reference[2])  # stopped inside the confirmation rounds
    assert_same_as_reference(out, run_here(out), reference)


def test_ctrl_c_stops_cleanly_prints_how_to_continue_and_loses_nothing(reference, tmp_path):
    out = tmp_path / "digits"
    process = start(out, hang_after=2)  # Ctrl-C inside the third measurement (a calibration point)
    watch = Watch(out)
    wait_until(lambda: watch.count("confirm") >= 2 and watch.count("claims", (TrialState.RUNNING,)) > 0, process,
               "the calibration")
    code, _, err = kill(process, signal.SIGINT)
    assert code == 130 and "Traceback" not in err
    assert "To continue, run: dse run" in err and f"--out {out}" in err and "search.budget=160" in err
    assert watch.count("claims", (TrialState.RUNNING,)) == 0, "the interrupted job was not given up"
    assert_same_as_reference(out, run_here(out), reference)


@pytest.mark.parametrize("journal", ["", "study.journal"], ids=["sqlite", "journal"])
def test_full_disk_mid_run_is_a_clear_error_and_the_rerun_loses_nothing(reference, tmp_path, journal):
    out = tmp_path / "digits"
    extra = (f"storage.journal='{journal}'",) if journal else ()
    process = start(out, extra=extra)
    watch = Watch(out, journal=journal)
    wait_until(lambda: watch.count("search") >= 20, process, "search trials")
    # from now on every file this process writes may hold 4 KiB at most: the next write fails as on a full disk
    resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (4096, 4096))
    code, _, err = finish(process)
    assert code == 2, err[-2000:]
    assert "Traceback" not in err and "run the same command again" in err
    assert ("cannot write" in err) and (str(out) in err)
    assert_same_as_reference(out, run_here(out, *extra), reference, journal=journal)


def test_unfinished_journal_line_is_cut_off_with_a_warning(tmp_path, caplog):
    path = tmp_path / "study.journal"
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    optuna.create_study(storage=storage, study_name="s").add_trial(optuna.trial.create_trial(value=1.0))
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"op_code": 4, "worker_id": "x", "tria')  # a write cut short
    assert repair_journal(path) == 38
    assert path.read_bytes() == whole and "unfinished write" in caplog.text
    assert repair_journal(path) == 0


def test_changed_study_file_names_the_change_and_fresh_moves_the_folder_aside(tmp_path, capsys, caplog):
    out = tmp_path / "digits"
    run_here(out)
    changed = ["run", DIGITS, "--out", out, "--quiet", *overrides("search.seed=3")]
    assert main([str(a) for a in changed]) == 2
    err = capsys.readouterr().err
    assert "search.seed (0 -> 3)" in err and "--fresh" in err and "Traceback" not in err
    report = run_here(out, "search.seed=3", "search.budget=40", fresh=True)
    assert report.front.points
    assert "moved the earlier study folder" in caplog.text and "digits.old1" in caplog.text
    moved = tmp_path / "digits.old1"
    assert json.loads((moved / "study.json").read_text())["config"]["search"]["seed"] == 0
    assert json.loads((out / "study.json").read_text())["config"]["search"]["seed"] == 3


def test_shared_storage_made_from_another_study_file_is_refused_and_fresh_says_what_it_deletes(tmp_path, caplog):
    journal = tmp_path / "shared.journal"
    run_here(tmp_path / "a", f"storage.journal='{journal}'")
    with pytest.raises(Exception, match=r"search.population \(20 -> 30\)"):
        run_here(tmp_path / "b", f"storage.journal='{journal}'", "search.population=30")
    assert not (tmp_path / "b").exists()  # refused before the new folder was written
    run_here(tmp_path / "b", f"storage.journal='{journal}'", "search.population=30", "search.budget=40", fresh=True)
    assert "--fresh: deleted" in caplog.text and "digits:search (160 trials)" in caplog.text
    assert "digits:confirm (" in caplog.text and str(journal) in caplog.text


# -- known pitfalls of resumed optuna studies (from optuna's issue tracker) -------------------------------------
# A resumed NSGA-II study keeps its generations: the SIGKILL tests compare every stored trial's engine state
# (generation numbers included) with an uninterrupted run. Workers sharing one seed do not sample the same
# trials: the worker tests compare the shared search with one worker's, trial by trial.


def test_seeded_sampler_does_not_repeat_its_start_up_trials_on_resume():
    from dse.study.encoding import Encoding
    from dse.study.engines import make_engine
    from dse.study.history import SearchRecorder
    from dse.study.problem import AssignmentProblem
    from dse.study.schema import SearchSection
    from dse.study.storage import open_study
    from objectives.hardware_cost import EnergyModel

    from .study_fakes import LAYERS, FakeSurrogate, candidates

    ms = candidates()
    encoding = Encoding.build([layer.name for layer in LAYERS], [m.name for m in ms])
    problem = AssignmentProblem(encoding, EnergyModel(LAYERS, ms), FakeSurrogate(LAYERS, ms), max_drop=1.0)
    section = SearchSection(engine="optuna", sampler="TPESampler", budget=24, population=12,
                            options={"n_startup_trials": 20})

    def search(storage, budget):
        recorder = SearchRecorder(open_study(storage, "t", "search", problem.objective_names), encoding)
        make_engine(section, problem, recorder).run(budget, encoding.encode(np.zeros((0, len(LAYERS)), np.int64)))
        return [tuple(g) for g in recorder.history().genotypes]

    whole = search(optuna.storages.InMemoryStorage(), 24)
    storage = optuna.storages.InMemoryStorage()
    first = search(storage, 10)  # stopped inside the random start-up trials
    resumed = search(storage, 24)
    assert resumed == whole
    assert resumed[10:20] != first  # a sampler reseeded from the study seed would draw trials 0..9 again


def test_constraints_are_enforced_not_soft(reference):
    report, _, _, out = reference
    storage = storage_of(out)
    assert report.front.points and all(p.drop <= report.front.max_drop for p in report.front.points)
    search = {t.number: t for t in trials(storage, "search", (TrialState.COMPLETE,))}
    confirmed = [t for t in trials(storage, "confirm", (TrialState.COMPLETE,)) if t.user_attrs["role"] == "candidate"]
    assert confirmed
    for t in confirmed:  # each came from a search trial the surrogate predicted within the allowed drop
        assert search[t.user_attrs["search_trial"]].constraints["drop"] <= 0


def test_a_start_killed_before_its_record_was_written_is_continued(tmp_path):
    from dse.study.config import load_study
    from dse.study.directory import check_directory

    config = load_study(DIGITS)
    out = tmp_path / "digits"
    out.mkdir()
    (out / "study.toml").write_text(config.text)  # killed while quantising: no study.json yet
    (out / ".study.json.x1y2.tmp").write_text("{")
    check_directory(config, out)  # no complaint: nothing in it is a result
    (out / "notes.txt").write_text("mine")
    with pytest.raises(Exception, match="holds no study"):
        check_directory(config, out)

"""Fuzz: study folders with damaged files, read by ``dse front`` and ``dse export`` and continued by ``dse run``.

A finished small study (the fake one of :mod:`study_fake_run`, on SQLite and on a journal file) is copied and
one of its files cut at a random offset, overwritten with random bytes or another JSON value, or deleted.
``dse front`` and ``dse export`` then either give the front (the file was one they do not need, or the damage
left it valid) or refuse in one line naming the folder's file, with exit 2 and no export folder left behind;
``dse run`` rewrites the files it writes itself and ends with the uninterrupted run's front.
"""

from __future__ import annotations

import gc
import json
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dse.errors import UserError
from tests.fuzz import FUZZ, assert_one_line, cli, tried

from .study_procs import front_of, run_here

JOURNAL = "study.journal"
FILES = ["study.json", "layers.json", "designs.json", "study.toml", "surrogate_front.json", "front.json", "study.db"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """Two finished small studies with their front files written: {storage kind: folder}."""
    from dse.study.directory import open_directory
    from dse.study.outputs import load_front, write_front_files

    base = tmp_path_factory.mktemp("finished")
    folders = {"sqlite": base / "sqlite", "journal": base / "journal"}
    run_here(folders["sqlite"])
    run_here(folders["journal"], f"storage.journal='{JOURNAL}'")
    for folder in folders.values():
        opened = open_directory(folder)
        write_front_files(opened, load_front(opened))
    gc.collect()  # close the storages' connections, then fold SQLite's write-ahead log into study.db
    with sqlite3.connect(folders["sqlite"] / "study.db") as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pristine = {kind: base / f"{kind}-pristine" for kind in folders}  # copies nothing opens: fixed bytes
    for kind, folder in folders.items():
        shutil.copytree(folder, pristine[kind], ignore=shutil.ignore_patterns("*-wal", "*-shm"))
    return pristine


def damaged_copy(source: Path, target: Path, name: str, content: bytes | None) -> Path:
    shutil.copytree(source, target)
    if content is None:
        (target / name).unlink()
    else:
        (target / name).write_bytes(content)
    return target / name


def read_or_refused(folder: Path, damaged: Path, export: Path) -> bool:
    """``dse front`` and ``dse export`` on ``folder``: True when both refused it (in one line each)."""
    refused = []
    for argv in (["front", folder, "--no-plots"], ["export", folder, "--pick", "0", "--out", export]):
        code, err = cli(argv)
        if code == 0:
            refused.append(False)
            continue
        line = assert_one_line(code, err, str(folder))
        assert damaged.name in line or "storage" in line, line
        assert not export.exists(), "an export folder was left behind"
        refused.append(True)
    return all(refused)


@given(st.sampled_from(["sqlite", "journal"]), st.sampled_from(FILES + [JOURNAL]), st.data())
@FUZZ
def test_folders_with_a_damaged_file_are_read_or_refused_in_one_line(finished, kind, name, data):
    source = finished[kind]
    name = {("journal", "study.db"): JOURNAL, ("sqlite", JOURNAL): "study.db"}.get((kind, name), name)
    raw = (source / name).read_bytes()
    how = data.draw(st.sampled_from(["cut", "random bytes", "json value", "delete"]))
    if how == "cut":
        content = raw[: data.draw(st.integers(0, max(0, len(raw) - 1)))]
    elif how == "random bytes":
        content = data.draw(st.binary(max_size=200))
    elif how == "json value":
        content = json.dumps(data.draw(st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=8),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3), max_leaves=5,
        ))).encode()
    else:
        content = None
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "study"
        damaged = damaged_copy(source, folder, name, content)
        if read_or_refused(folder, damaged, Path(tmp) / "export"):
            tried("study folder", name, content or b"<deleted>")


@pytest.mark.parametrize("name", ["study.json", "layers.json", "designs.json", "study.toml", "surrogate_front.json",
                                  "front.json"])
@pytest.mark.parametrize("how", ["cut", "garbage", "delete"])
def test_a_rerun_writes_damaged_files_anew_and_ends_with_the_same_front(finished, tmp_path, name, how):
    source = finished["sqlite"]
    raw = (source / name).read_bytes()
    content = {"cut": raw[: len(raw) // 2], "garbage": b"\xff\x00 not json", "delete": None}[how]
    folder = tmp_path / "study"
    damaged_copy(source, folder, name, content)
    tried("study folder", name, content or b"<deleted>")
    report = run_here(folder)
    assert front_of(report) == front_of(source)
    code, _ = cli(["front", folder, "--no-plots"])
    assert code == 0


@pytest.mark.parametrize("how", ["cut", "garbage", "empty", "delete"])
def test_a_damaged_or_missing_storage_is_refused_in_one_line_by_every_command(finished, tmp_path, how):
    source = finished["sqlite"]
    raw = (source / "study.db").read_bytes()
    content = {"cut": raw[: len(raw) // 3], "garbage": bytes(range(256)) * 16, "empty": b"", "delete": None}[how]
    folder = tmp_path / "study"
    damaged_copy(source, folder, "study.db", content)
    tried("study folder", "study.db", content or b"<deleted>")
    assert read_or_refused(folder, folder / "study.db", tmp_path / "export")
    if how in ("delete", "empty"):  # reading a front must not have made an empty storage in its place
        assert not (folder / "study.db").exists() or (folder / "study.db").stat().st_size == 0
    if how in ("cut", "garbage"):
        with pytest.raises(UserError, match="damaged"):
            run_here(folder)

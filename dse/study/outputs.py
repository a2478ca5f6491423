"""Reading a study folder's front back from its storage, and writing the front's files into the folder."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..output import atomic_write_bytes, atomic_write_text
from .confirm import ConfirmStore
from .directory import StudyFolder
from .front import Front, compute_front
from .storage import CONFIRM, SQLITE_NAME, journal_path, open_storage, open_study, storage_description, storage_errors

logger = logging.getLogger(__name__)

SURROGATE_FRONT = "surrogate_front.json"
#: The first bytes of every SQLite database file.
SQLITE_HEADER = b"SQLite format 3\x00"
FILES = ("front.json", "front.csv", "front.png", "assignments.png", "predicted_vs_measured.png")


def load_front(folder: StudyFolder, accelerator: str = "", mapping: str = "", progress: bool = False) -> Front:
    """The study's confirmed front, from its storage alone; with the whole accelerator's energy saved when the study
    has a system energy model or an ``accelerator`` is given (ZigZag's results cached in the folder)."""
    config = folder.config
    names = [d["name"] for d in folder.designs]
    _check_storage_file(folder)
    surrogate = read_surrogate_front(folder.path)
    with storage_errors(storage_description(config.storage, folder.path)):
        storage = open_storage(config.storage, folder.path)
        store = ConfirmStore(open_study(storage, config.name, CONFIRM, ["energy", "drop"]), folder.searched_layers,
                             names)
        try:
            front = compute_front(config.name, store, surrogate, config.constraints.max_drop,
                                  config.confirmation.report_drops)
        except KeyError as error:  # a layer the storage's trials lack: the folder's layers.json is another study's
            raise UserError(f"{folder.path / 'layers.json'} does not match the study's storage (its measurements "
                            f"have no layer {error}); run the study's `dse run` again to write it anew") from None
    _check_front_kept(folder, front, storage_description(config.storage, folder.path))
    return add_system_energy(folder, front, accelerator, mapping, progress)


def _check_storage_file(folder: StudyFolder) -> None:
    """A study's own storage file (SQLite in the folder, or a journal file) must be there: reading a front must not
    create an empty one in its place."""
    section = folder.config.storage
    if section.url and not section.url.startswith("sqlite"):
        return
    path = journal_path(section, folder.path) if section.journal else (
        Path(section.url.split("sqlite:///", 1)[1]) if section.url else folder.path / SQLITE_NAME)
    if not path.is_file() or path.stat().st_size == 0:
        raise UserError(f"the study's storage {path} is {'empty' if path.is_file() else 'missing'}: every trial and "
                        f"measurement was in it; restore it from a copy, or run the study again into a new folder")
    if not section.journal:
        with open(path, "rb") as handle:
            header = handle.read(100)
        if len(header) < 100 or not header.startswith(SQLITE_HEADER):  # SQLite would take it for a new database
            raise UserError(f"the study's storage {path} is damaged (not an SQLite database, {path.stat().st_size:,} "
                            f"bytes); restore it from a copy, or run the study again into a new folder")


def _check_front_kept(folder: StudyFolder, front: Front, where: str) -> None:
    """A storage without a front, in a folder whose front.json lists one, lost its trials (cut short, emptied)."""
    if front.points or not (folder.path / "front.json").is_file():
        return
    try:
        listed = json.loads((folder.path / "front.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return  # a damaged front.json proves nothing; the next dse run writes it anew
    if isinstance(listed, list) and listed:
        raise UserError(f"the study's storage {where} holds no confirmed front, though {folder.path / 'front.json'} "
                        f"lists {len(listed)} points: the storage lost its trials (cut short or emptied); restore it "
                        f"from a copy")


def read_surrogate_front(directory: Path) -> np.ndarray:
    """The search's front as last written (energy saved %, predicted drop), for the plots; empty, with a warning,
    when the file is missing or damaged (the next ``dse run`` writes it anew)."""
    path = directory / SURROGATE_FRONT
    if not path.is_file():
        return np.zeros((0, 2))
    try:
        points = np.array(json.loads(path.read_text(encoding="utf-8")), dtype=np.float64)
        if points.ndim == 2 and points.shape[1] == 2 and np.isfinite(points).all():
            return points
        if points.size == 0:
            return np.zeros((0, 2))
    except (OSError, ValueError, TypeError, RecursionError):
        pass
    logger.warning("%s is damaged; the plots go without the surrogate's front until the next dse run writes it", path)
    return np.zeros((0, 2))


def add_system_energy(folder: StudyFolder, front: Front, accelerator: str = "", mapping: str = "",
                      progress: bool = False) -> Front:
    """``front`` with each point's system energy saved, on the study's accelerator or the one given (else as is)."""
    from .energy import folder_system_energy
    from .front import with_system_energy

    system = folder_system_energy(folder, accelerator, mapping, progress)
    return front if system is None else with_system_energy(front, system.saving, system.accelerator)


def write_surrogate_front(directory: Path, points: np.ndarray) -> None:
    """The search's front as the final map predicts it (energy saved %, predicted drop), for the plots."""
    atomic_write_text(directory / SURROGATE_FRONT, json.dumps(np.round(points, 6).tolist()) + "\n")


def write_front_files(folder: StudyFolder, front: Front) -> list[Path]:
    """Write the front as JSON, CSV and three plots into the study folder; returns the paths."""
    from .plots import assignment_heatmap, front_plot, predicted_vs_measured
    from .render import front_csv, front_json

    path = folder.path
    atomic_write_text(path / "front.json", front_json(front))
    atomic_write_text(path / "front.csv", front_csv(front))
    atomic_write_bytes(path / "front.png", front_plot(front))
    energy = {d["name"]: d["energy"] for d in folder.designs}
    atomic_write_bytes(path / "assignments.png", assignment_heatmap(front, folder.searched_layers, energy))
    atomic_write_bytes(path / "predicted_vs_measured.png", predicted_vs_measured(front))
    return [path / name for name in FILES]

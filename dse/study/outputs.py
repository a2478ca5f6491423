"""Reading a study folder's front back from its storage, and writing the front's files into the folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..output import atomic_write_bytes, atomic_write_text
from .confirm import ConfirmStore
from .directory import StudyFolder
from .front import Front, compute_front
from .storage import CONFIRM, open_storage, open_study

SURROGATE_FRONT = "surrogate_front.json"
FILES = ("front.json", "front.csv", "front.png", "assignments.png", "predicted_vs_measured.png")


def load_front(folder: StudyFolder) -> Front:
    """The study's confirmed front, from its storage alone."""
    config = folder.config
    names = [d["name"] for d in folder.designs]
    storage = open_storage(config.storage, folder.path)
    store = ConfirmStore(open_study(storage, config.name, CONFIRM, ["energy", "drop"]), folder.searched_layers, names)
    surrogate = np.zeros((0, 2))
    if (folder.path / SURROGATE_FRONT).is_file():
        surrogate = np.array(json.loads((folder.path / SURROGATE_FRONT).read_text()), dtype=np.float64)
    return compute_front(config.name, store, surrogate, config.constraints.max_drop, config.confirmation.report_drops)


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

"""A study folder made before a key was added to the schema resumes while the key holds its default."""

import json
from pathlib import Path

import pytest

from dse.errors import UserError
from dse.study.config import load_study
from dse.study.directory import STUDY_JSON, check_directory
from dse.study.fingerprint import changes

DIGITS = Path(__file__).resolve().parents[2] / "studies" / "digits.toml"


def _folder_from_before_the_energy_keys(tmp_path: Path) -> Path:
    """A study folder whose stored config lacks the [objectives] energy keys (as written before they existed)."""
    config = load_study(DIGITS).as_dict()
    del config["objectives"]["energy"], config["objectives"]["activity_samples"]
    folder = tmp_path / "digits"
    folder.mkdir()
    (folder / STUDY_JSON).write_text(json.dumps({"digest": "from an older schema", "config": config}))
    return folder


def test_a_new_key_at_its_default_is_no_change():
    assert changes({"search.seed": 0}, {"search.seed": 0, "objectives.energy": "table"}) == []
    assert changes({"search.seed": 0}, {"search.seed": 0, "objectives.energy": "activity"}) == [
        "objectives.energy (None -> 'activity')"
    ]
    # a key the old copy has is compared whatever the default
    assert changes({"objectives.energy": "activity"}, {"objectives.energy": "table"}) == [
        "objectives.energy ('activity' -> 'table')"
    ]


def test_an_older_folder_resumes_unless_a_new_key_leaves_its_default(tmp_path):
    folder = _folder_from_before_the_energy_keys(tmp_path)
    check_directory(load_study(DIGITS), folder)  # accepted: the new keys hold their defaults
    with pytest.raises(UserError, match=r"objectives.energy \(None -> 'activity'\)"):
        check_directory(load_study(DIGITS, ["objectives.energy=activity"]), folder)
    with pytest.raises(UserError, match=r"search.seed \(0 -> 5\)"):
        check_directory(load_study(DIGITS, ["search.seed=5"]), folder)

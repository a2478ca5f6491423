"""Study files: defaults, overrides, and one clear message for each kind of mistake, before any work."""

from pathlib import Path

import pytest

from dse.errors import UserError
from dse.study.config import flatten, from_tables, load_study
from dse.study.schema import SECTIONS, reference

REPO = Path(__file__).resolve().parents[2]
MINIMAL = '[network]\nname = "digits-cnn"\n'


def write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str, overrides=()) -> str:
    with pytest.raises(UserError) as caught:
        load_study(write(tmp_path, text), overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_minimal_file_gets_every_default(tmp_path):
    config = load_study(write(tmp_path, MINIMAL, "my_study.toml"))
    assert config.name == "my_study"
    assert config.search.engine == "optuna" and config.search.sampler == "NSGAIISampler"
    assert config.quantization.scheme == "int8" and config.signed
    assert config.constraints.max_drop == 2.0
    assert config.confirmation.report_drops == (0.5, 1.0)
    assert set(config.as_dict()) == set(SECTIONS)


@pytest.mark.parametrize("path", sorted((REPO / "studies").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_studies_are_valid(path, shared_data):
    config = load_study(path)
    assert config.network.name


def test_overrides_apply_and_change_the_digest(tmp_path):
    path = write(tmp_path, MINIMAL)
    base = load_study(path)
    changed = load_study(path, ["search.seed=3", "search.sampler=TPESampler"])
    assert changed.search.seed == 3 and changed.search.sampler == "TPESampler"
    assert changed.digest() != base.digest()
    # resumable keys (budget, jobs) do not change what a study folder holds
    assert load_study(path, ["search.budget=10", "confirmation.jobs=1"]).digest() == base.digest()


def test_round_trip_through_the_stored_tables(tmp_path):
    config = load_study(write(tmp_path, MINIMAL + '[grouping]\ngroups = [["conv1", "conv2"]]\n'))
    again = from_tables(config.as_dict(), config.path)
    assert flatten(again.as_dict()) == flatten(config.as_dict())
    assert again.digest() == config.digest()


@pytest.mark.parametrize(
    "text, expected",
    [
        ("[nework]\nname = 'x'\n", "unknown table [nework] (did you mean network?)"),
        (MINIMAL + "[search]\nbudgett = 3\n", "unknown key search.budgett (did you mean budget?)"),
        (MINIMAL + "[search]\nbudget = 'many'\n", "search.budget must be an integer, got a string 'many'"),
        (MINIMAL + "[search]\nbudget = true\n", "search.budget must be an integer"),
        (MINIMAL + "[constraints]\nmax_drop = -1.0\n", "constraints.max_drop must be at least 0.0"),
        (MINIMAL + "[quantization]\nscheme = 'int4'\n", "quantization.scheme = 'int4' is not one of int8, uint8"),
        (MINIMAL + "[multipliers]\nfamilies = 'trunc'\n", "multipliers.families must be a list of strings"),
        ("[data]\ntest = ''\n", "network.name is required"),
        ("budget = 3\n" + MINIMAL, "key 'budget' must sit inside a table"),
        (MINIMAL + "search = 3\n", "unknown key network.search"),
        ('[network]\nname = "resnet21-cifar10"\n', "did you mean resnet"),
        (MINIMAL + "[search]\nsampler = 'CmaEsSampler'\n", "choose one of NSGAIISampler"),
        (MINIMAL + "[search]\nsampler = 'NSGAIISampler'\noptions = {mutation_rate = 0.1}\n",
         "search.options.mutation_rate is not an option of NSGAIISampler"),
        (MINIMAL + "[search]\nengine = 'pymoo'\nalgorithm = 'MOEAD'\n", "search.algorithm 'MOEAD' is not supported"),
        (MINIMAL + "[search]\nengine = 'pymoo'\noptions = {eta = 3}\n", "search.options.eta is not an option of pymoo"),
        (MINIMAL + "[storage]\nurl = 'sqlite:///a.db'\njournal = 'j.log'\n", "not both"),
        (MINIMAL + "[storage]\nurl = 'study.db'\n", "is not a database URL"),
        (MINIMAL + "[grouping]\ngroups = [['conv1'], ['conv1']]\n", "names layer 'conv1' twice"),
        ("[network\nname = 1", "not valid TOML"),
    ],
)
def test_each_mistake_gets_one_clear_message(tmp_path, text, expected):
    assert expected in error_of(tmp_path, text)


def test_missing_files_are_named(tmp_path):
    message = error_of(tmp_path, MINIMAL.replace('"\n', '"\nweights = "nope.pt"\n'))
    assert "network.weights" in message and "nope.pt" in message and "does not exist" in message
    message = error_of(tmp_path, MINIMAL + "[data]\ntest = 'no/such/folder'\n")
    assert "data.test" in message and "folder" in message
    message = error_of(tmp_path, MINIMAL + "[multipliers]\nimports = ['missing-luts']\n")
    assert "multipliers.imports" in message
    message = error_of(tmp_path, MINIMAL + "[data]\ntest = '${NO_SUCH_VARIABLE_X}/data'\n")
    assert "NO_SUCH_VARIABLE_X" in message
    with pytest.raises(UserError, match="does not exist"):
        load_study(tmp_path / "absent.toml")


def test_paths_resolve_against_the_study_file(tmp_path, monkeypatch):
    (tmp_path / "luts").mkdir()
    monkeypatch.setenv("MY_DATA", str(tmp_path))
    config = load_study(write(tmp_path, MINIMAL + "[multipliers]\nimports = ['${MY_DATA}/luts']\n"))
    assert config.multipliers.imports == (str((tmp_path / "luts").resolve()),)


@pytest.mark.parametrize("item, expected", [("search.budget", "TABLE.KEY=VALUE"), ("budget=3", "TABLE.KEY=VALUE"),
                                            ("search.budget=x", "must be an integer")])
def test_bad_overrides(tmp_path, item, expected):
    assert expected in error_of(tmp_path, MINIMAL, [item])


def test_reference_lists_every_key():
    text = reference()
    for table, cls in SECTIONS.items():
        assert f"### [{table}]" in text
        for name in cls.__dataclass_fields__:
            assert f"`{name}`" in text

"""Fuzz: checkpoints cut at random offsets or garbled, empty and foreign pickles, assignment files, image folders.

Each bad input must end in one line naming it and the problem (``dse: error: ...``, exit 2), never a traceback;
a mutation that leaves a valid input is fine, any other exception is a bug. The checkpoints are the shared
ResNet-20 one (torch's legacy format) and a digits-cnn state dict (torch's zip format).
"""

from __future__ import annotations

import collections
import io
import json
import os
import pickle
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from objectives.assignment import load_assignment, resolve_assignment
from objectives.errors import AssignmentError, CheckpointError
from objectives.networks import get_network
from tests.conftest import shared_data_dir
from tests.fuzz import FUZZ, assert_one_line, cli, one_line, tried

RESNET20 = shared_data_dir() / "resnet-cifar10" / "resnet20-12fca82f.th"
DIGITS_LAYERS = ["conv1", "conv2", "conv3", "fc"]


def digits_checkpoint() -> bytes:
    """A digits-cnn state dict in torch's zip format (random weights: only the format matters here)."""
    from objectives.networks.digits_cnn import DigitsCNN

    buffer = io.BytesIO()
    torch.save(DigitsCNN().state_dict(), buffer)
    return buffer.getvalue()


SOURCES = {"digits-cnn": digits_checkpoint()}
if RESNET20.is_file():
    SOURCES["resnet20-cifar10"] = RESNET20.read_bytes()


def loads_or_refused(network: str, raw: bytes) -> str | None:
    """Load ``raw`` as ``network``'s weights: None when it loads, else the one-line message naming the file."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "weights.th"
        path.write_bytes(raw)
        try:
            get_network(network, path)
        except CheckpointError as error:
            one_line(str(error), str(path))
            return str(error)
    return None


# -- checkpoints ----------------------------------------------------------------------------------------------
@given(st.sampled_from(sorted(SOURCES)), st.data())
@FUZZ
def test_checkpoints_cut_at_random_offsets_are_refused(network, data):
    source = SOURCES[network]
    cut = data.draw(st.integers(0, len(source) - 1))
    tried("checkpoint", source[:cut])
    message = loads_or_refused(network, source[:cut])
    assert message is not None, f"a checkpoint cut at {cut} of {len(source)} bytes loaded"
    assert "IndexError" not in message or "cut short" in message


@given(st.sampled_from(sorted(SOURCES)), st.data())
@FUZZ
def test_checkpoints_with_bytes_changed_load_or_are_refused(network, data):
    raw = bytearray(SOURCES[network])
    for _ in range(data.draw(st.integers(1, 4))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    if loads_or_refused(network, bytes(raw)) is not None:
        tried("checkpoint", bytes(raw))


class Foreign:
    """An object only arbitrary unpickling could restore."""

    def __init__(self, value=None) -> None:
        self.value = value


foreign_objects = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | st.binary(max_size=8)
    | st.builds(Foreign, st.integers()) | st.builds(Fraction, st.integers(), st.integers(1, 9))
    | st.builds(lambda n: np.arange(n), st.integers(0, 4)) | st.builds(lambda n: torch.zeros(n), st.integers(0, 4)),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    | st.builds(collections.OrderedDict, st.dictionaries(st.text(max_size=5), children, max_size=2))
    | st.builds(set, st.lists(st.integers(), max_size=3)),
    max_leaves=6,
)


@given(foreign_objects, st.sampled_from(["torch.save", *(f"pickle {p}" for p in range(pickle.HIGHEST_PROTOCOL + 1))]))
@FUZZ
def test_empty_and_foreign_pickles_are_refused(thing, how):
    buffer = io.BytesIO()
    if how == "torch.save":
        torch.save(thing, buffer)
    else:
        pickle.dump(thing, buffer, protocol=int(how.split()[1]))
    raw = buffer.getvalue()
    tried("checkpoint", raw)
    assert loads_or_refused("digits-cnn", raw) is not None


@pytest.mark.parametrize("raw", [b"", b"\x80", b"\x80\x02", b"PK\x03\x04", b"PK\x05\x06" + bytes(18), os.urandom(64),
                                 b"not a checkpoint\n", json.dumps({"conv1.weight": [1, 2]}).encode()],
                         ids=["empty", "proto", "proto2", "zip-head", "empty-zip", "random", "text", "json"])
def test_empty_and_nonsense_files_are_refused(raw):
    tried("checkpoint", raw)
    message = loads_or_refused("digits-cnn", raw)
    assert message is not None and ("empty" in message if not raw else True)


def test_the_command_line_refuses_a_cut_resnet20_checkpoint_in_one_line(shared_data, tmp_path):
    source = (shared_data / "resnet-cifar10" / "resnet20-12fca82f.th").read_bytes()
    for cut in (0, 1, 1024, 2048, len(source) // 2):
        path = tmp_path / f"cut{cut}.th"
        path.write_bytes(source[:cut])
        tried("checkpoint", source[:cut])
        code, err = cli(["eval", "--network", "resnet20-cifar10", "--weights", path,
                         "--data", shared_data / "cifar10-test-jpg", "--limit", "10"])
        line = assert_one_line(code, err, str(path))
        assert ("empty" if cut == 0 else "cut short") in line


def test_a_damaged_digits_cache_is_trained_again(tmp_path, monkeypatch, caplog):
    from objectives.networks.digits_cnn import cache_path, pretrained_digits_cnn

    monkeypatch.setenv("DSE_CACHE", str(tmp_path))
    cache_path().write_bytes(digits_checkpoint()[:1000])
    model = pretrained_digits_cnn(shipped=False)
    assert "unusable" in caplog.text and "training them again" in caplog.text
    assert cache_path().stat().st_size > 1000 and model(torch.zeros(1, 1, 8, 8)).shape == (1, 10)


# -- assignment files -----------------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=8,
)
layer_names = st.sampled_from(DIGITS_LAYERS + ["conv7", "", "fc.weight", "CONV1"])
design_names = st.sampled_from(["exact_s", "mitchell_s_w7", "exact_u", "nope_s", "", "drum_s_k4"]) | st.text(max_size=8)
assignments = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(layer_names, design_names | json_values, max_size=4).map(lambda v: json.dumps(v).encode()),
    st.dictionaries(layer_names, design_names, max_size=4).map(lambda v: json.dumps({"assignment": v}).encode()),
    st.binary(max_size=30),
)


@given(assignments)
@FUZZ
def test_assignment_files_are_taken_or_refused_in_one_line(content):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "a.json"
        path.write_bytes(content)
        try:
            resolve_assignment(load_assignment(path), DIGITS_LAYERS, "int8")
        except AssignmentError as error:
            tried("assignment", content)
            one_line(str(error))


def test_assignment_files_on_the_command_line_are_named_in_one_line(tmp_path):
    cases = {"bin.json": b"\xff\xfe", "deep.json": b"[" * 50000 + b"]" * 50000, "list.json": b"[1]",
             "layer.json": b'{"conv7": "exact_s"}', "design.json": b'{"conv1": "nope_s"}',
             "unsigned.json": b'{"conv1": "exact_u"}', "empty.json": b""}
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        tried("assignment", content)
        code, err = cli(["eval", "--network", "digits-cnn", "--assign", path, "--limit", "8", "--calibration", "16"])
        assert_one_line(code, err, str(path))
    code, err = cli(["eval", "--network", "digits-cnn", "--assign", tmp_path, "--limit", "8", "--calibration", "16"])
    assert_one_line(code, err, str(tmp_path), "folder")


# -- image folders --------------------------------------------------------------------------------------------
def cifar_folder(root: Path, per_class: int = 1) -> list[Path]:
    """A tiny CIFAR-10-shaped ImageFolder (10 classes of 32x32 PNGs); its image files."""
    from PIL import Image

    rng = np.random.default_rng(0)
    files = []
    for k in range(10):
        (root / f"class{k}").mkdir(parents=True)
        for i in range(per_class):
            path = root / f"class{k}" / f"{i}.png"
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)
            files.append(path)
    return files


def evaluate_folder(folder: Path) -> tuple[int, str]:
    return cli(["eval", "--network", "resnet20-cifar10", "--weights", RESNET20, "--data", folder, "--calibration", "4",
                "--batch-size", "4"])


@pytest.fixture
def decode_here(monkeypatch, tmp_path):
    """Decoding in this process (no loader workers) into a cache of this test's own."""
    monkeypatch.setenv("DSE_DATA_WORKERS", "0")
    monkeypatch.setenv("DSE_DATA_CACHE", str(tmp_path / "decoded"))


def test_image_folders_of_the_wrong_structure_are_refused_in_one_line(shared_data, tmp_path, decode_here):
    from PIL import Image

    none = tmp_path / "no-classes"
    none.mkdir()
    Image.new("RGB", (32, 32)).save(none / "a.png")
    few = tmp_path / "two-classes"
    for k in range(2):
        (few / f"c{k}").mkdir(parents=True)
        Image.new("RGB", (32, 32)).save(few / f"c{k}" / "a.png")
    texts = tmp_path / "only-text"
    (texts / "c0").mkdir(parents=True)
    (texts / "c0" / "readme.txt").write_text("x")
    sizes = tmp_path / "sizes"
    cifar_folder(sizes)
    Image.new("RGB", (64, 48)).save(sizes / "class0" / "big.png")
    for folder in (none, few, texts, sizes, tmp_path / "missing"):
        tried("image folder", str(folder.name))
        code, err = evaluate_folder(folder)
        assert_one_line(code, err, str(folder))


@pytest.mark.parametrize("damage", ["empty", "text", "cut", "garbage header"])
def test_image_folders_with_damaged_files_are_refused_in_one_line(tmp_path, decode_here, damage):
    folder = tmp_path / "images"
    victim = cifar_folder(folder)[3]
    raw = victim.read_bytes()
    content = {"empty": b"", "text": b"not an image\n", "cut": raw[: len(raw) // 3],
               "garbage header": raw[:8] + bytes(range(64))}[damage]
    victim.write_bytes(content)
    tried("image folder", content)
    code, err = evaluate_folder(folder)
    assert_one_line(code, err, str(victim))

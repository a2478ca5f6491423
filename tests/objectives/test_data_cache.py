"""The decoded-image cache (objectives.decoded_cache.DecodedCache) and batches() with loader workers: the same tensors,
labels and order as decoding every time, in memory and in a file; the file reused, rebuilt when stale or damaged."""

from __future__ import annotations

import logging
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Subset

from objectives.data import load_data
from objectives.decoded_cache import (
    PROGRESS_FORMAT,
    PROGRESS_UNIT,
    DecodedCache,
    data_workers,
    memory_budget,
    parse_size,
)
from objectives.errors import DataError
from objectives.evaluate import batches

CLASSES = ("ant", "bee", "cat")


class Counting:
    """A transform that counts its calls in this process (a fixed repr, so caches key it as one transform)."""

    calls = 0

    def __init__(self):
        from torchvision import transforms

        self.inner = transforms.Compose([
            transforms.Resize(12), transforms.CenterCrop(12), transforms.ToTensor(),
            transforms.Normalize((0.5, 0.4, 0.3), (0.2, 0.25, 0.3)),
        ])

    def __call__(self, image):
        Counting.calls += 1
        return self.inner(image)

    def __repr__(self):
        return f"Counting({self.inner!r})"


def make_folder(root, per_class=4, seed=0):
    """A small ImageFolder of JPEGs and PNGs of varied sizes (3 classes)."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(CLASSES):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            size = (int(rng.integers(14, 30)), int(rng.integers(14, 30)))
            pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i:02d}.{'png' if i % 2 else 'jpg'}")
    return root


def folder(root):
    from torchvision.datasets import ImageFolder

    return ImageFolder(str(root), transform=Counting())


@pytest.fixture()
def images(tmp_path, monkeypatch):
    monkeypatch.setenv("DSE_DATA_WORKERS", "0")
    return make_folder(tmp_path / "images")


def assert_same_items(cache, plain):
    assert len(cache) == len(plain)
    for i in range(len(plain)):
        x, y = cache[i]
        px, py = plain[i]
        assert torch.equal(x, px) and x.dtype == px.dtype and y == py


def all_batches(dataset, batch_size=5):
    return [(x.clone(), y.clone()) for x, y in batches(dataset, batch_size, progress=False)]


def assert_same_batches(a, b):
    assert len(a) == len(b)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_memory_cache_gives_the_folders_tensors(images, tmp_path):
    cache = DecodedCache(folder(images), tmp_path / "cache")
    assert_same_items(cache, folder(images))
    assert cache.mode == "memory" and cache.decoded == len(cache)
    assert not (tmp_path / "cache").exists()  # fits memory: no file
    assert_same_batches(all_batches(cache), all_batches(folder(images)))
    assert cache.decoded == len(cache)  # iterating again decodes nothing


def test_file_cache_gives_the_folders_tensors_and_is_reused(images, tmp_path):
    cache = DecodedCache(folder(images), tmp_path / "cache", budget=1)
    cache.ensure()
    assert cache.mode == "file" and cache.path.parent == tmp_path / "cache"
    assert_same_items(cache, folder(images))
    del cache
    Counting.calls = 0
    again = DecodedCache(folder(images), tmp_path / "cache", budget=1)
    assert_same_batches(all_batches(again), all_batches(folder(images)))
    assert again.mode == "file" and again.decoded == 0
    Counting.calls = 0
    assert_same_items(DecodedCache(folder(images), tmp_path / "cache"), folder(images))  # an existing file wins
    assert Counting.calls == len(again)  # only the plain folder decoded


def test_file_cache_is_rebuilt_when_the_folder_changes(images, tmp_path, caplog):
    DecodedCache(folder(images), tmp_path / "cache", budget=1).ensure()
    Image.new("RGB", (20, 17), (200, 10, 30)).save(images / "bee" / "new.png")
    with caplog.at_level(logging.INFO, logger="objectives.decoded_cache"):
        cache = DecodedCache(folder(images), tmp_path / "cache", budget=1)
        cache.ensure()
    assert "earlier state" in caplog.text
    assert cache.decoded == len(cache) == 13
    assert_same_items(cache, folder(images))
    assert len(list((tmp_path / "cache").glob("*.data"))) == 1


def test_truncated_file_is_rebuilt(images, tmp_path, caplog):
    first = DecodedCache(folder(images), tmp_path / "cache", budget=1)
    first.ensure()
    path = first.path
    del first
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size - 100)
    with caplog.at_level(logging.WARNING, logger="objectives.decoded_cache"):
        cache = DecodedCache(folder(images), tmp_path / "cache", budget=1)
        cache.ensure()
    assert "damaged" in caplog.text
    assert cache.decoded == len(cache)
    assert_same_items(cache, folder(images))


def test_damaged_image_in_the_file_is_decoded_again(images, tmp_path, caplog):
    first = DecodedCache(folder(images), tmp_path / "cache", budget=1)
    first.ensure()
    path, row = first.path, first[0][0].numel() * 4
    del first
    with open(path, "r+b") as handle:  # scribble over image 5
        handle.seek(4096 + 5 * row + 40)
        handle.write(b"\xff" * 16)
    with caplog.at_level(logging.WARNING, logger="objectives.decoded_cache"):
        cache = DecodedCache(folder(images), tmp_path / "cache", budget=1)
        assert_same_batches(all_batches(cache), all_batches(folder(images)))
    assert "CRC" in caplog.text and cache.decoded == 1


def test_images_not_in_the_index_are_not_trusted(images, tmp_path):
    """An interrupted run: images written but never listed in the index are decoded again."""
    first = DecodedCache(folder(images), tmp_path / "cache", budget=1)
    first.ensure()
    path = first.path
    del first
    path.with_suffix(".index").unlink()
    cache = DecodedCache(folder(images), tmp_path / "cache", budget=1)
    cache.ensure()
    assert cache.decoded == len(cache)
    assert_same_items(cache, folder(images))


def test_batches_with_workers_equal_batches_without(images, tmp_path, monkeypatch):
    subset = list(range(1, 12, 2)) + [0, 3]
    plain = all_batches(Subset(folder(images), subset), batch_size=3)
    monkeypatch.setenv("DSE_DATA_WORKERS", "2")
    assert data_workers() == 2
    assert_same_batches(all_batches(Subset(folder(images), subset), batch_size=3), plain)
    monkeypatch.setattr("objectives.decoded_cache._DECODE_BATCH", 2)  # worker processes even for these few images
    for budget in (None, 1):  # the cache decodes with two workers, into memory and into a file
        cache = DecodedCache(folder(images), tmp_path / f"cache{budget}", budget=budget)
        Counting.calls = 0
        assert_same_batches(all_batches(Subset(cache, subset), batch_size=3), plain)
        assert cache.decoded == len(set(subset))
        assert Counting.calls == 1  # the first image (its shape sizes the cache); the others in the workers


def test_split_subsets_index_into_one_cache(images, tmp_path):
    network = SimpleNamespace(name="tiny", dataset="imagenet", transform=Counting(), num_classes=3)
    data = load_data(network, images, calibration_size=3, cache_folder=tmp_path / "cache")
    cache = data.evaluation.dataset
    assert isinstance(cache, DecodedCache)
    plain = folder(images)
    for part in (data.calibration, data.limited(4), data.held_out(4), data.evaluation):
        assert_same_batches(all_batches(part, batch_size=4), all_batches(mirror(part, plain), batch_size=4))
    assert cache.decoded == len(cache) == 12  # every image decoded once, whatever slices were read
    assert np.array_equal(data.labels, np.asarray(plain.targets)[np.asarray(data.evaluation.indices)])


def mirror(part, plain):
    """``part`` (Subsets of a cache) with the plain folder in place of the cache."""
    return Subset(mirror(part.dataset, plain), part.indices) if isinstance(part, Subset) else plain


def test_pickled_cache_reopens(images, tmp_path):
    cache = DecodedCache(folder(images), tmp_path / "cache", budget=1)
    cache.ensure()
    copy = pickle.loads(pickle.dumps(cache))
    assert copy.mode is None
    assert_same_items(copy, folder(images))
    assert copy.decoded == cache.decoded  # read from the file, nothing decoded


def test_cifar10_folder_cache_matches_the_folder(shared_data, tmp_path):
    from torchvision.datasets import ImageFolder

    from objectives.networks.resnet_cifar import cifar_transform

    plain = ImageFolder(str(shared_data / "cifar10-test-jpg"), transform=cifar_transform())
    cache = DecodedCache(ImageFolder(str(shared_data / "cifar10-test-jpg"), transform=cifar_transform()), tmp_path)
    rows = list(range(0, len(plain), 397))
    assert_same_batches(all_batches(Subset(cache, rows), 8), all_batches(Subset(plain, rows), 8))
    assert cache.mode == "memory" and cache.targets == plain.targets


def test_environment_settings(monkeypatch):
    monkeypatch.setenv("DSE_DATA_WORKERS", "3")
    assert data_workers() == 3
    monkeypatch.setenv("DSE_DATA_WORKERS", "many")
    with pytest.raises(DataError, match="DSE_DATA_WORKERS"):
        data_workers()
    monkeypatch.delenv("DSE_DATA_WORKERS")
    assert 0 <= data_workers() <= 8 and data_workers() != 1
    monkeypatch.setenv("DSE_DATA_MEMORY", "2G")
    assert memory_budget() == 2 << 30
    monkeypatch.delenv("DSE_DATA_MEMORY")
    assert memory_budget() > 0
    assert parse_size("512MiB") == 512 << 20 and parse_size("0") == 0 and parse_size("1.5k") == 1536
    with pytest.raises(DataError):
        parse_size("lots")


def test_progress_shows_images_per_second():
    from tqdm import tqdm

    line = tqdm.format_meter(n=10, total=40, elapsed=4.0, unit=PROGRESS_UNIT, bar_format=PROGRESS_FORMAT)
    assert "2.50 images/s" in line
    slow = tqdm.format_meter(n=1, total=40, elapsed=4.0, unit=PROGRESS_UNIT, bar_format=PROGRESS_FORMAT)
    assert "0.25 images/s" in slow


def test_processes_sharing_a_file_keep_each_others_images(images, tmp_path):
    one = DecodedCache(folder(images), tmp_path / "cache", budget=1)
    one.ensure(range(0, 6))
    two = DecodedCache(folder(images), tmp_path / "cache", budget=1)  # opened before one writes any more
    two._open()
    one.ensure(range(6, 9))
    two.ensure(range(9, 12))  # its index keeps what one listed meanwhile
    three = DecodedCache(folder(images), tmp_path / "cache", budget=1)
    three.ensure()
    assert three.decoded == 0
    assert_same_items(three, folder(images))


class InMemoryImages(torch.utils.data.Dataset):
    """Like torchvision's CIFAR10: images made in memory, no files."""

    targets = [0, 1, 2, 1, 0]

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return torch.full((3, 4, 4), float(i)) / 7, self.targets[i]


def test_data_set_without_files_is_cached_in_memory_or_not_at_all(tmp_path):
    for budget, mode in ((None, "memory"), (1, "plain")):
        cache = DecodedCache(InMemoryImages(), tmp_path / "cache", budget=budget)
        assert_same_batches(all_batches(cache, 2), all_batches(InMemoryImages(), 2))
        assert cache.mode == mode
    assert not (tmp_path / "cache").exists()

"""Data sets: the bundled digits, CIFAR-10 and ImageNet-style folders; calibration slices and balanced limits.

When only a test set exists (an ImageFolder of test images), calibration takes a fixed,
class-balanced slice of it and evaluation leaves that slice out.

Image folders are decoded once (:mod:`objectives.decoded_cache`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .decoded_cache import DecodedCache, decoded_cache_dir
from .errors import DataError
from .paths import cache_dir

logger = logging.getLogger(__name__)

#: Seeds of the fixed choices (calibration slice, evaluation limit); never derived from the clock.
CALIBRATION_SEED = 1
LIMIT_SEED = 2
DEFAULT_CALIBRATION = 256


@dataclass
class DataSplit:
    """Calibration and evaluation sets (torch datasets of (image, label)) and the evaluation labels."""

    calibration: Any
    evaluation: Any
    labels: np.ndarray
    num_classes: int
    description: str = ""

    def limited(self, limit: int | None) -> Any:
        """The evaluation set, or a fixed class-balanced subset of ``limit`` images of it."""
        from torch.utils.data import Subset

        if limit is None or limit >= len(self.labels):
            return self.evaluation
        if limit <= 0:
            raise DataError(f"--limit must be a positive number of images, got {limit}")
        return Subset(self.evaluation, balanced_subset(self.labels, limit, LIMIT_SEED).tolist())

    def held_out(self, limit: int | None) -> Any:
        """The evaluation images that :meth:`limited` (``limit``) leaves out, in order; empty without a limit."""
        from torch.utils.data import Subset

        if limit is None or limit >= len(self.labels):
            return Subset(self.evaluation, [])
        kept = np.zeros(len(self.labels), dtype=bool)
        kept[balanced_subset(self.labels, limit, LIMIT_SEED)] = True
        return Subset(self.evaluation, np.flatnonzero(~kept).tolist())


def balanced_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Indices of ``n`` items taken round-robin over classes, each class in a seeded random order (sorted)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    rank = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rank[rng.permutation(members)] = np.arange(len(members))
    order = np.lexsort((labels, rank))
    return np.sort(order[: min(n, len(labels))])


def load_data(
    network: Any,
    path: str | Path | None = None,
    download: bool = False,
    calibration_size: int = DEFAULT_CALIBRATION,
    calibration_path: str | Path | None = None,
    cache_folder: str | Path | None = None,
) -> DataSplit:
    """The calibration and evaluation data for ``network`` (an :class:`objectives.networks.Network`).

    Image folders are wrapped in a :class:`DecodedCache`: each image is decoded and transformed once, kept in
    memory, or in a file in ``cache_folder`` (default :func:`decoded_cache_dir`) when the data set does not fit
    the memory budget. Values, labels and order are those of the folder itself.
    """
    if path is not None:
        from .networks.user import factory_split, is_factory_spec

        if is_factory_spec(path):  # a data set factory (package.module:function or path/to/file.py:function)
            return factory_split(network, str(path), calibration_size)
    if network.dataset == "digits":
        return digits_split(calibration_size)
    if network.dataset == "cifar10" and download and path is None:
        return cifar10_download(network.transform, calibration_size)
    if path is None:
        hint = " or --download" if network.dataset == "cifar10" else ""
        raise DataError(f"{network.name} needs image data: give --data PATH (an ImageFolder){hint}")
    folder = Path(cache_folder) if cache_folder is not None else decoded_cache_dir()
    evaluation = image_folder(path, network.transform, network.num_classes)
    labels = np.asarray(evaluation.targets)
    evaluation = DecodedCache(evaluation, folder)  # decoded once for the many evaluations of a study
    if calibration_path is not None:
        calibration = DecodedCache(image_folder(calibration_path, network.transform, network.num_classes), folder)
        return DataSplit(calibration, evaluation, labels, network.num_classes, f"{path}")
    from torch.utils.data import Subset

    calib_idx = balanced_subset(labels, calibration_size, CALIBRATION_SEED)
    rest = np.setdiff1d(np.arange(len(labels)), calib_idx)
    return DataSplit(
        Subset(evaluation, calib_idx.tolist()),
        Subset(evaluation, rest.tolist()),
        labels[rest],
        network.num_classes,
        f"{path} ({len(calib_idx)} calibration images left out)",
    )


def image_folder(path: str | Path, transform: Any, num_classes: int) -> Any:
    """An ImageFolder data set, checked to have the network's number of classes."""
    from torchvision.datasets import ImageFolder

    path = Path(path)
    if not path.is_dir():
        raise DataError(f"data folder {path} does not exist")
    try:
        dataset = ImageFolder(str(path), transform=transform, loader=read_image)
    except (FileNotFoundError, RuntimeError) as error:
        raise DataError(f"{path} is not an ImageFolder (one sub-folder of images per class): {error}") from None
    if len(dataset.classes) != num_classes:
        raise DataError(f"{path} has {len(dataset.classes)} class folders; the network has {num_classes} classes")
    return dataset


def read_image(path: str) -> Any:
    """An image file as RGB, as torchvision's default loader reads it, or a DataError naming the file."""
    from PIL import Image

    try:
        with open(path, "rb") as handle:
            return Image.open(handle).convert("RGB")
    except (OSError, ValueError, SyntaxError) as error:  # PIL's UnidentifiedImageError is an OSError
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"{path}: not a readable image ({detail})") from None


def loader_error(error: Exception) -> str:
    """The one-line message of a DataError raised in a DataLoader worker process (which the loader re-raises
    with the worker's traceback in the message)."""
    lines = [line for line in str(error).strip().splitlines() if line.strip()]
    last = lines[-1] if lines else type(error).__name__
    marker = "DataError: "
    return last.split(marker, 1)[1] if marker in last else last


@lru_cache(maxsize=1)
def digits_arrays():
    """scikit-learn's digits as tensors: x_train, y_train, x_test, y_test (fixed stratified 70/30 split).

    Images are (n, 1, 8, 8) float32 scaled from 0..16 to -1..1; labels int64.
    """
    import torch
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.images.astype(np.float32) / 8.0 - 1.0
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, digits.target, test_size=0.3, stratify=digits.target, random_state=0
    )
    as_x = lambda a: torch.from_numpy(np.ascontiguousarray(a[:, None]))  # noqa: E731
    as_y = lambda a: torch.from_numpy(a.astype(np.int64))  # noqa: E731
    return as_x(x_tr), as_y(y_tr), as_x(x_te), as_y(y_te)


def digits_split(calibration_size: int = DEFAULT_CALIBRATION) -> DataSplit:
    """Calibration on training digits, evaluation on the held-out 30%."""
    from torch.utils.data import TensorDataset

    x_tr, y_tr, x_te, y_te = digits_arrays()
    idx = _digits_calibration(y_tr, calibration_size)
    return DataSplit(
        TensorDataset(x_tr[idx], y_tr[idx]),
        TensorDataset(x_te, y_te),
        y_te.numpy(),
        10,
        "scikit-learn digits (held-out 30%)",
    )


def digits_unseen(calibration_size: int = DEFAULT_CALIBRATION) -> Any:
    """The training digits outside the calibration slice: images no study step looks at (the network learnt them)."""
    from torch.utils.data import TensorDataset

    x_tr, y_tr, _, _ = digits_arrays()
    rest = np.setdiff1d(np.arange(len(y_tr)), _digits_calibration(y_tr, calibration_size))
    return TensorDataset(x_tr[rest], y_tr[rest])


def _digits_calibration(labels: Any, calibration_size: int) -> np.ndarray:
    """Indices of the calibration slice among the training digits (class-balanced, fixed)."""
    return balanced_subset(labels.numpy(), calibration_size, CALIBRATION_SEED)


def cifar10_download(transform: Any, calibration_size: int = DEFAULT_CALIBRATION) -> DataSplit:
    """CIFAR-10 through torchvision (downloads into the cache once): calibrate on train, evaluate on test."""
    from torch.utils.data import Subset
    from torchvision.datasets import CIFAR10

    root = cache_dir() / "cifar10"
    try:
        train = CIFAR10(str(root), train=True, download=True, transform=transform)
        test = CIFAR10(str(root), train=False, download=True, transform=transform)
    except Exception as error:  # network failures come in many types
        raise DataError(f"cannot download CIFAR-10 into {root}: {error}") from None
    idx = balanced_subset(np.asarray(train.targets), calibration_size, CALIBRATION_SEED)
    test_set = DecodedCache(test)  # no files to key a cache file by: in memory (or decoded on every use)
    return DataSplit(Subset(train, idx.tolist()), test_set, np.asarray(test.targets), 10, f"CIFAR-10 test ({root})")

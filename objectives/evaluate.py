"""Evaluation: top-1/top-5 accuracy over a data set, with a progress bar."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np
import torch

from .device import module_device


@dataclass(frozen=True)
class Accuracy:
    """Top-1 and top-5 accuracy in percent, the number of images and the wall time.

    ``hits`` holds every image's top-1 hit in evaluation order, packed eight to a byte
    (``numpy.packbits``): two evaluations on the same images give a paired drop and its standard
    error (:func:`drop_standard_error`).
    """

    top1: float
    top5: float
    images: int
    seconds: float
    hits: bytes = field(default=b"", repr=False, compare=False)

    def as_dict(self) -> dict[str, float]:
        """JSON-ready record (without the per-image hits)."""
        return {"top1": self.top1, "top5": self.top5, "images": self.images, "seconds": self.seconds}


def drop_standard_error(baseline_hits: bytes, hits: bytes, images: int) -> float | None:
    """Standard error, in points, of a top-1 drop measured on the same ``images`` images.

    The drop is the mean of ``d_i = baseline hit - hit`` over the images (each -1, 0 or 1); its
    standard error is ``std(d) / sqrt(n)``, set by the images whose prediction flips. ``None``
    when either record lacks the hits of ``images`` images, or for fewer than two images.
    """
    if images < 2 or len(baseline_hits) * 8 < images or len(hits) * 8 < images:
        return None
    base = np.unpackbits(np.frombuffer(baseline_hits, dtype=np.uint8), count=images).astype(np.int8)
    other = np.unpackbits(np.frombuffer(hits, dtype=np.uint8), count=images).astype(np.int8)
    d = base - other
    return float(100.0 * d.std(ddof=1) / math.sqrt(images))


def batches(
    dataset: Any, batch_size: int = 256, progress: bool = True, desc: str = "", device: Any = None,
) -> Iterator[tuple]:
    """(images, labels) batches of a torch data set, in order, with an optional tqdm bar over images (in images/s)
    (``device``: where the batches go next; CUDA gets pinned memory for asynchronous copies).

    A :class:`~objectives.decoded_cache.DecodedCache`, or a Subset of one, first decodes the images it lacks (in loader
    worker processes), then is read in this process; other data sets that decode image files (an ImageFolder,
    Subsets and wrappers of one) are loaded by :func:`~objectives.decoded_cache.data_workers` worker processes; in-memory
    data sets (tensors) are read in this process. Every way gives the same batches in the same order.
    """
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    from .data import loader_error
    from .decoded_cache import PROGRESS_FORMAT, PROGRESS_UNIT, data_workers, decoded_source, decodes_files
    from .errors import DataError

    pin = device is not None and torch.device(device).type == "cuda"
    cache, rows = decoded_source(dataset)
    if cache is not None:
        cache.ensure(rows, progress=progress)
    workers = data_workers() if decodes_files(dataset) else 0
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers, pin_memory=pin)
    with tqdm(total=len(dataset), unit=PROGRESS_UNIT, bar_format=PROGRESS_FORMAT, desc=desc, disable=not progress,
              leave=False) as bar:
        batches_of = iter(loader)
        while True:
            try:
                x, y = next(batches_of)
            except StopIteration:
                return
            except DataError as error:  # an unreadable image, maybe from a worker process: one line naming it
                raise DataError(loader_error(error)) from None
            yield x, y
            bar.update(len(y))


def evaluate(
    model: Callable[[torch.Tensor], torch.Tensor],
    data: Any,
    limit: int | None = None,
    batch_size: int = 256,
    progress: bool = True,
) -> Accuracy:
    """Accuracy of ``model`` (a torch module or :class:`QuantizedNetwork`) on ``data``.

    ``data`` is a :class:`objectives.data.DataSplit` (its evaluation set, or a fixed class-balanced
    subset of ``limit`` images) or any torch data set of (image, label).
    """
    dataset = data.limited(limit) if hasattr(data, "limited") else data
    if limit is not None and not hasattr(data, "limited"):
        from torch.utils.data import Subset

        dataset = Subset(dataset, range(min(limit, len(dataset))))
    if isinstance(model, torch.nn.Module):
        model.eval()
        device = module_device(model)
    else:
        device = getattr(model, "device", torch.device("cpu"))
    top1 = top5 = images = 0
    first: list[torch.Tensor] = []
    start = time.perf_counter()
    with torch.no_grad():
        for x, y in batches(dataset, batch_size, progress, desc="evaluating", device=device):
            logits = model(x.to(device, non_blocking=True))
            best = logits.topk(min(5, logits.shape[1]), dim=1).indices.cpu()
            hits = best == y[:, None]
            first.append(hits[:, 0])
            top1 += int(hits[:, 0].sum())
            top5 += int(hits.any(1).sum())
            images += len(y)
    seconds = time.perf_counter() - start
    if images == 0:
        return Accuracy(0.0, 0.0, 0, seconds)
    packed = np.packbits(torch.cat(first).numpy()).tobytes()
    return Accuracy(100.0 * top1 / images, 100.0 * top5 / images, images, seconds, packed)

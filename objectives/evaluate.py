"""Evaluation: top-1/top-5 accuracy over a data set, with a progress bar."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterator

import torch


@dataclass(frozen=True)
class Accuracy:
    """Top-1 and top-5 accuracy in percent, the number of images and the wall time."""

    top1: float
    top5: float
    images: int
    seconds: float

    def as_dict(self) -> dict[str, float]:
        """JSON-ready record."""
        return asdict(self)


def batches(dataset: Any, batch_size: int = 256, progress: bool = True, desc: str = "") -> Iterator[tuple]:
    """(images, labels) batches of a torch data set, in order, with an optional tqdm bar over images."""
    from torch.utils.data import DataLoader
    from tqdm import tqdm

    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    with tqdm(total=len(dataset), unit="img", desc=desc, disable=not progress, leave=False) as bar:
        for x, y in loader:
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
    top1 = top5 = images = 0
    start = time.perf_counter()
    with torch.no_grad():
        for x, y in batches(dataset, batch_size, progress, desc="evaluating"):
            logits = model(x)
            best = logits.topk(min(5, logits.shape[1]), dim=1).indices
            hits = best == y[:, None]
            top1 += int(hits[:, 0].sum())
            top5 += int(hits.any(1).sum())
            images += len(y)
    seconds = time.perf_counter() - start
    if images == 0:
        return Accuracy(0.0, 0.0, 0, seconds)
    return Accuracy(100.0 * top1 / images, 100.0 * top5 / images, images, seconds)

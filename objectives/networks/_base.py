"""The network record: a float torch model plus what evaluating it needs to know."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Network:
    """A float classification model (in eval mode) and the data it expects.

    ``dataset`` is ``"digits"``, ``"cifar10"`` or ``"imagenet"``; ``transform`` turns one
    PIL image into the normalised input tensor (None for the bundled digits arrays).
    """

    name: str
    model: Any
    input_shape: tuple[int, int, int]
    num_classes: int
    dataset: str
    transform: Callable | None = None

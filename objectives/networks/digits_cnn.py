"""A small CNN for scikit-learn's bundled 8x8 digits: weights shipped with the package (or trained and cached)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from torch import nn

from ..paths import cache_dir
from .checkpoints import trained_weights

logger = logging.getLogger(__name__)

#: Bump when the architecture or the training recipe changes (a new cache file is trained).
VERSION = 2  # 2: initial weights drawn from SEED (v1 took them from the caller's global RNG state)
SEED = 0
EPOCHS = 15
BATCH = 32


class DigitsCNN(nn.Module):
    """conv(1->16)-BN-ReLU, conv(16->32)-BN-ReLU, max-pool, conv(32->64)-BN-ReLU, average pool, linear."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.pool = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(64)
        self.fc = nn.Linear(64, num_classes)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.pool(self.relu(self.bn2(self.conv2(x))))
        x = self.relu(self.bn3(self.conv3(x)))
        return self.fc(x.mean(dim=(2, 3)))


def cache_path() -> Path:
    """Where the trained weights are cached."""
    return cache_dir() / f"digits-cnn-v{VERSION}-seed{SEED}.pt"


def pretrained_digits_cnn(shipped: bool = True) -> DigitsCNN:
    """The trained network: the weights shipped with the package (``shipped``), else cached, else trained and cached."""
    return trained_weights(DigitsCNN(), "digits-cnn", cache_path(), train, shipped)


def train(model: DigitsCNN) -> None:
    """Train on the digits training split with a fixed seed (Adam, cosine schedule).

    Deterministic whatever ran before: the weights are re-initialised from ``SEED`` and every
    random draw uses a generator forked from the caller's, whose global RNG state is left as it was.
    """
    from ..data import digits_arrays

    x, y, _, _ = digits_arrays()
    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: threads only add synchronisation (badly so on a busy machine)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEED)
            for module in model.modules():
                if module is not model and hasattr(module, "reset_parameters"):
                    module.reset_parameters()
            _fit(model, x, y)
    finally:
        torch.set_num_threads(threads)
    logger.info("trained digits-cnn in %.1f s", time.perf_counter() - start)


def _fit(model: DigitsCNN, x: torch.Tensor, y: torch.Tensor) -> None:
    generator = torch.Generator().manual_seed(SEED)
    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    steps = EPOCHS * ((len(x) + BATCH - 1) // BATCH)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=1e-2, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(EPOCHS):
        order = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), BATCH):
            idx = order[i : i + BATCH]
            batch = _shift(x[idx], generator)
            optimiser.zero_grad()
            loss_fn(model(batch), y[idx]).backward()
            optimiser.step()
            schedule.step()
    model.eval()


def _shift(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Augment: shift each image by up to one pixel (zero fill at the background level)."""
    dx, dy = (torch.randint(-1, 2, (2,), generator=generator)).tolist()
    background = x.amin()
    shifted = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    if dy:
        shifted[:, :, 0 if dy > 0 else -1, :] = background
    if dx:
        shifted[:, :, :, 0 if dx > 0 else -1] = background
    return shifted

"""A small vision transformer for scikit-learn's 8x8 digits: weights shipped with the package (or trained and cached).

Like torchvision's ViT in miniature: 2x2 patches embedded by a strided convolution, a class token and
learnt position embeddings, pre-norm encoder blocks of ``nn.MultiheadAttention`` and a GELU MLP, a
final LayerNorm and a linear head on the class token. Its GEMMs: the patch embedding (conv), per block
the packed input projection, Q K^T, softmax(.) V, the output projection and the two MLP layers, and the
head.
"""

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
VERSION = 1
SEED = 0
EPOCHS = 40
BATCH = 64
DIM = 32
HEADS = 4
DEPTH = 3
MLP = 64
PATCH = 2
LR = 4e-3
SMOOTHING = 0.1
DECAY = 0.05
AUGMENT = 0.3  # share of batches shifted by up to a pixel (every batch: the 2x2 patches underfit)


class EncoderBlock(nn.Module):
    """x + attention(LayerNorm(x)), then x + MLP(LayerNorm(x))."""

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.self_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ln_1(x)
        x = x + self.self_attention(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class DigitsViT(nn.Module):
    """Patches of 2x2 pixels (16 tokens and a class token), ``DEPTH`` encoder blocks, a linear head."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        tokens = (8 // PATCH) ** 2
        self.conv_proj = nn.Conv2d(1, DIM, PATCH, stride=PATCH)
        self.class_token = nn.Parameter(torch.zeros(1, 1, DIM))
        self.pos_embedding = nn.Parameter(torch.empty(1, tokens + 1, DIM).normal_(std=0.02))
        self.blocks = nn.Sequential(*[EncoderBlock(DIM, HEADS, MLP) for _ in range(DEPTH)])
        self.ln = nn.LayerNorm(DIM)
        self.head = nn.Linear(DIM, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_proj(x).flatten(2).transpose(1, 2)  # (N, 16, DIM)
        x = torch.cat([self.class_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embedding
        return self.head(self.ln(self.blocks(x))[:, 0])


def cache_path() -> Path:
    """Where the trained weights are cached."""
    return cache_dir() / f"digits-vit-v{VERSION}-seed{SEED}.pt"


def pretrained_digits_vit(shipped: bool = True) -> DigitsViT:
    """The trained network: the weights shipped with the package (``shipped``), else cached, else trained and cached."""
    return trained_weights(DigitsViT(), "digits-vit", cache_path(), train, shipped)


def train(model: DigitsViT) -> None:
    """Train on the digits training split with a fixed seed (AdamW, one-cycle schedule, one-pixel shifts).

    Deterministic whatever ran before: the weights are re-initialised from ``SEED`` and every random
    draw uses a generator forked from the caller's, whose global RNG state is left as it was.
    """
    from ..data import digits_arrays
    from .digits_cnn import _shift

    x, y, _, _ = digits_arrays()
    start = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: threads only add synchronisation
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEED)
            fresh = DigitsViT()  # the initial weights from SEED, as the constructor draws them
            model.load_state_dict(fresh.state_dict())
            generator = torch.Generator().manual_seed(SEED)
            model.train()
            decay = [p for n, p in model.named_parameters() if p.dim() > 1 and "embedding" not in n]
            rest = [p for n, p in model.named_parameters() if not (p.dim() > 1 and "embedding" not in n)]
            optimiser = torch.optim.AdamW([{"params": decay, "weight_decay": DECAY}, {"params": rest, "weight_decay": 0.0}],
                                          lr=LR)
            steps = EPOCHS * ((len(x) + BATCH - 1) // BATCH)
            schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=LR, total_steps=steps)
            loss_fn = nn.CrossEntropyLoss(label_smoothing=SMOOTHING)
            for _ in range(EPOCHS):
                order = torch.randperm(len(x), generator=generator)
                for i in range(0, len(x), BATCH):
                    idx = order[i : i + BATCH]
                    optimiser.zero_grad()
                    batch = x[idx]
                    if float(torch.rand((), generator=generator)) < AUGMENT:
                        batch = _shift(batch, generator)
                    loss_fn(model(batch), y[idx]).backward()
                    optimiser.step()
                    schedule.step()
            model.eval()
    finally:
        torch.set_num_threads(threads)
    logger.info("trained digits-vit in %.1f s", time.perf_counter() - start)

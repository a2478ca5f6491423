"""Per-image top-1 hits of an evaluation and the paired standard error of a drop."""

import math

import numpy as np
import torch
from torch.utils.data import TensorDataset

from objectives.evaluate import drop_standard_error, evaluate


def _packed(bits) -> bytes:
    return np.packbits(np.asarray(bits, dtype=bool)).tobytes()


def test_hits_are_the_top1_hits_in_order():
    torch.manual_seed(0)
    x = torch.randn(37, 5)
    labels = torch.randint(0, 5, (37,))
    result = evaluate(lambda t: t, TensorDataset(x, labels), batch_size=8, progress=False)
    hits = np.unpackbits(np.frombuffer(result.hits, dtype=np.uint8), count=37).astype(bool)
    assert np.array_equal(hits, (x.argmax(1) == labels).numpy())
    assert math.isclose(result.top1, 100.0 * hits.mean())
    assert set(result.as_dict()) == {"top1", "top5", "images", "seconds"}  # `dse eval --json` unchanged


def test_paired_standard_error_counts_the_flips():
    base = [True] * 100
    other = [False] * 10 + [True] * 90  # 10 images lost: drop 10 points
    d = np.array([1] * 10 + [0] * 90)
    want = 100.0 * d.std(ddof=1) / 10.0
    assert math.isclose(drop_standard_error(_packed(base), _packed(other), 100), want)
    # the same drop made of 15 losses and 5 gains is noisier
    mixed = [False] * 15 + [True] * 85
    base2 = [True] * 95 + [False] * 5
    d2 = np.array(base2, dtype=int) - np.array(mixed, dtype=int)
    assert math.isclose(d2.mean(), 0.1)
    got = drop_standard_error(_packed(base2), _packed(mixed), 100)
    assert math.isclose(got, 100.0 * d2.std(ddof=1) / 10.0) and got > want
    assert drop_standard_error(_packed(base), _packed(base), 100) == 0.0


def test_missing_or_short_hits_give_none():
    assert drop_standard_error(b"", _packed([True] * 16), 16) is None
    assert drop_standard_error(_packed([True] * 8), _packed([True] * 16), 16) is None
    assert drop_standard_error(_packed([True]), _packed([True]), 1) is None

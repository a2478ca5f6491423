"""GEMM dims per layer, balanced subsets and calibration slices."""

from __future__ import annotations

import numpy as np

from objectives.data import balanced_subset
from objectives.layers import gemm_layers
from objectives.networks import get_network


def test_resnet20_gemm_dims():
    network = get_network("resnet20-cifar10", pretrained=False)
    layers = gemm_layers(network.model, network.input_shape)
    assert len(layers) == 20
    first, last = layers["conv1"], layers["linear"]
    assert (first.m, first.k, first.n, first.macs) == (1024, 27, 16, 442_368)
    assert (layers["layer2.0.conv1"].m, layers["layer2.0.conv1"].k, layers["layer2.0.conv1"].n) == (256, 144, 32)
    assert (last.m, last.k, last.n) == (1, 64, 10)
    assert sum(i.macs for i in layers.values()) == 40_551_040


def test_balanced_subset_is_fixed_and_balanced():
    labels = np.repeat(np.arange(10), [50, 60, 70, 80, 90, 100, 110, 120, 130, 140])
    a = balanced_subset(labels, 100, seed=2)
    assert np.array_equal(a, balanced_subset(labels, 100, seed=2))
    assert np.all(np.bincount(labels[a], minlength=10) == 10)
    assert len(np.unique(a)) == 100


def test_calibration_slice_is_left_out_of_evaluation(resnet20):
    _, data = resnet20
    calib = set(data.calibration.indices)
    evaluation = set(data.evaluation.indices)
    assert len(calib) == 64 and not calib & evaluation
    assert len(calib) + len(evaluation) == 10_000
    subset = data.limited(50)
    assert len(subset) == 50
    assert np.all(np.bincount(data.labels[subset.indices], minlength=10) == 5)


def test_held_out_images_are_the_evaluation_images_a_limit_leaves_out(resnet20):
    _, data = resnet20
    limited, held = data.limited(50), data.held_out(50)
    assert len(limited) + len(held) == len(data.evaluation)
    assert not set(limited.indices) & set(held.indices)
    assert sorted(limited.indices + held.indices) == list(range(len(data.evaluation)))
    assert len(data.held_out(None)) == 0 and len(data.held_out(len(data.evaluation))) == 0


def test_unseen_digits_are_the_training_digits_the_calibration_slice_leaves_out():
    import torch

    from objectives.data import digits_arrays, digits_split, digits_unseen

    x_tr = digits_arrays()[0]
    calibration = digits_split(100).calibration.tensors[0]
    unseen = digits_unseen(100).tensors[0]
    assert len(unseen) == len(x_tr) - 100
    # together they are the training digits, each once (rows compared as a multiset)
    rows = lambda t: sorted(map(tuple, t.reshape(len(t), -1).tolist()))  # noqa: E731
    assert rows(torch.cat([calibration, unseen])) == rows(x_tr)

"""Network registry, checkpoint safety, digits CNN training and caching."""

from __future__ import annotations

import pytest
import torch

from objectives.errors import CheckpointError, ObjectiveInputError
from objectives.networks import get_network
from objectives.networks.checkpoints import read_state_dict


class _Custom:
    """An object that only arbitrary unpickling could restore."""

    def __init__(self) -> None:
        self.value = 3


def test_checkpoint_needing_unpickling_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "extra": _Custom()}, path)
    with pytest.raises(CheckpointError, match="unpickling"):
        read_state_dict(path)


def test_checkpoints_load_with_weights_only(tmp_path, monkeypatch):
    path = tmp_path / "ok.pt"
    torch.save({"module.w": torch.ones(2)}, path)
    calls = []
    real = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(k) or real(*a, **k))
    assert list(read_state_dict(path)) == ["w"]  # DataParallel prefix removed
    assert calls and all(k.get("weights_only") is True for k in calls)


def test_tensors_that_do_not_fit_are_refused(tmp_path):
    state = get_network("resnet20-cifar10", pretrained=False).model.state_dict()
    state["linear.weight"] = torch.zeros(10, 32)
    path = tmp_path / "wrong.th"
    torch.save({"state_dict": state}, path)
    with pytest.raises(CheckpointError, match="shape mismatch.*linear.weight"):
        get_network("resnet20-cifar10", path)
    del state["linear.weight"]
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="missing 1 tensors"):
        get_network("resnet20-cifar10", path)


def test_missing_file_and_unknown_names_are_clear():
    with pytest.raises(CheckpointError, match="does not exist"):
        get_network("resnet20-cifar10", "/nonexistent/r20.th")
    with pytest.raises(CheckpointError, match="needs --weights"):
        get_network("resnet32-cifar10")
    with pytest.raises(ObjectiveInputError, match="did you mean resnet20-cifar10"):
        get_network("resnet20-cifar")


def test_published_resnet20_checkpoint_loads(resnet20):
    network, _ = resnet20
    assert network.input_shape == (3, 32, 32)
    assert sum(p.numel() for p in network.model.parameters()) == 269_722


def test_cifar_resnet_depths_build():
    for depth, blocks in ((20, 3), (32, 5), (56, 9)):
        model = get_network(f"resnet{depth}-cifar10", pretrained=False).model
        assert len(model.layer2) == blocks
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_digits_cnn_comes_with_its_weights_or_is_trained_once_and_cached(digits, tmp_path, monkeypatch):
    from objectives.evaluate import evaluate
    from objectives.networks.checkpoints import SHIPPED
    from objectives.networks.digits_cnn import cache_path, pretrained_digits_cnn

    network, data = digits  # the shipped weights: nothing trained, nothing cached
    assert (SHIPPED / cache_path().name).is_file() and not cache_path().exists()
    assert evaluate(network.model, data, progress=False).top1 >= 95.0
    monkeypatch.setenv("DSE_CACHE", str(tmp_path))
    trained = pretrained_digits_cnn(shipped=False)  # without them: trained (seconds) and cached
    assert cache_path().is_file()
    again = pretrained_digits_cnn(shipped=False)  # loads from the cache
    for a, b in zip(trained.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    assert evaluate(trained, data, progress=False).top1 >= 95.0


def test_digits_cnn_training_does_not_depend_on_the_callers_random_state(monkeypatch):
    from objectives.networks import digits_cnn

    monkeypatch.setattr(digits_cnn, "EPOCHS", 1)  # the weights, not the accuracy, are compared
    weights = []
    for state in (1, 2):
        torch.manual_seed(state)  # a different global state, and so different initial weights
        model = digits_cnn.DigitsCNN()
        before = torch.get_rng_state()
        digits_cnn.train(model)
        assert torch.equal(torch.get_rng_state(), before)  # the caller's RNG is left as it was
        weights.append(model.state_dict())
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])

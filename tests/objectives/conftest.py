"""Fixtures for the objectives tests: an isolated cache, the digits network, ResNet-20 on shared data."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Point DSE_CACHE at a fresh folder: the digits CNN is trained once per test session."""
    saved = os.environ.get("DSE_CACHE")
    os.environ["DSE_CACHE"] = str(tmp_path_factory.mktemp("dse-cache"))
    yield
    if saved is None:
        os.environ.pop("DSE_CACHE", None)
    else:
        os.environ["DSE_CACHE"] = saved


@pytest.fixture(scope="session")
def digits():
    """(network, data) of the built-in digits CNN."""
    from objectives.data import load_data
    from objectives.networks import get_network

    network = get_network("digits-cnn")
    return network, load_data(network)


@pytest.fixture(scope="session")
def digits_nets(digits):
    """Quantised digits CNN per scheme (callers reset assignments they set)."""
    from objectives.quantize import quantize

    network, data = digits
    return {s: quantize(network.model, data.calibration, network.input_shape, s) for s in ("int8", "uint8")}


@pytest.fixture()
def digits_net(digits_nets, request):
    """One scheme's quantised digits CNN, reset to exact after the test."""
    net = digits_nets[request.param]
    net.reset()
    yield net
    net.reset()


@pytest.fixture(scope="session")
def resnet20(shared_data):
    """(network, data) of ResNet-20 on the shared CIFAR-10 JPEGs, 64 calibration images."""
    from objectives.data import load_data
    from objectives.networks import get_network

    network = get_network("resnet20-cifar10", shared_data / "resnet-cifar10" / "resnet20-12fca82f.th")
    return network, load_data(network, shared_data / "cifar10-test-jpg", calibration_size=64)


@pytest.fixture(scope="session")
def resnet20_nets(resnet20):
    """Quantised ResNet-20 per scheme."""
    from objectives.quantize import quantize

    network, data = resnet20
    return {s: quantize(network.model, data.calibration, network.input_shape, s) for s in ("int8", "uint8")}


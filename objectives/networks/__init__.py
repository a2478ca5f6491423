"""Network registry: ``get_network(name, weights)`` for every built-in and torchvision network.

Names: ``digits-cnn``, ``resnet20-cifar10`` ... ``resnet110-cifar10``, ``torchvision:<name>``.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from ..errors import CheckpointError, ObjectiveInputError
from ._base import Network

CIFAR_RESNETS = {f"resnet{d}-cifar10": d for d in (20, 32, 44, 56, 110)}
NAMES = ("digits-cnn", *CIFAR_RESNETS, "torchvision:<name>")


def get_network(name: str, weights: str | Path | None = None, pretrained: bool = True) -> Network:
    """The float network called ``name`` in eval mode; ``pretrained=False`` gives the bare architecture."""
    if name == "digits-cnn":
        from .digits_cnn import DigitsCNN, pretrained_digits_cnn

        if weights is not None:
            model = DigitsCNN()
            _load(model, weights, name)
        else:
            model = pretrained_digits_cnn() if pretrained else DigitsCNN()
        return Network(name, model.eval(), (1, 8, 8), 10, "digits")
    if name in CIFAR_RESNETS:
        from .resnet_cifar import ResNetCifar, cifar_transform

        model = ResNetCifar(CIFAR_RESNETS[name])
        if pretrained:
            if weights is None:
                raise CheckpointError(
                    f"{name} needs --weights PATH: a published checkpoint such as "
                    f"resnet{CIFAR_RESNETS[name]}-*.th (akamaster/pytorch_resnet_cifar10)"
                )
            _load(model, weights, name)
        return Network(name, model.eval(), (3, 32, 32), 10, "cifar10", cifar_transform())
    if name.startswith("torchvision:"):
        from .torchvision_models import torchvision_network

        return torchvision_network(name.split(":", 1)[1], weights, pretrained)
    close = difflib.get_close_matches(name, NAMES, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ObjectiveInputError(f"unknown network {name!r}{hint} (networks: {', '.join(NAMES)})")


def _load(model, weights: str | Path, name: str) -> None:
    from .checkpoints import load_into, read_state_dict

    load_into(model, read_state_dict(weights), name)


__all__ = ["NAMES", "Network", "get_network"]

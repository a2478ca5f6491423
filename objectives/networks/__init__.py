"""Network registry: ``get_network(name, weights)`` for every built-in, torchvision and user network.

Names: ``digits-cnn``, ``digits-vit``, ``resnet20-cifar10`` ... ``resnet110-cifar10``, ``torchvision:<name>``,
and a user's factory, ``path/to/file.py:function`` or ``package.module:function`` (:mod:`.user`).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Mapping

from ..errors import CheckpointError, ObjectiveInputError
from ._base import Network

CIFAR_RESNETS = {f"resnet{d}-cifar10": d for d in (20, 32, 44, 56, 110)}
NAMES = ("digits-cnn", "digits-vit", *CIFAR_RESNETS, "torchvision:<name>", "file.py:factory", "package.module:factory")
#: The names that are not templates.
BUILT_IN = ("digits-cnn", "digits-vit", *CIFAR_RESNETS)


def get_network(name: str, weights: str | Path | None = None, pretrained: bool = True,
                options: Mapping[str, Any] | None = None) -> Network:
    """The float network called ``name`` in eval mode; ``pretrained=False`` gives the bare architecture.

    ``options`` (a user factory's input description: ``input_size``, ``mean``, ``std``; see :mod:`.user`) come
    first, before the factory's own attributes; built-in networks ignore them.
    """
    if name == "digits-cnn":
        from .digits_cnn import DigitsCNN, pretrained_digits_cnn

        if weights is not None:
            model = DigitsCNN()
            _load(model, weights, name)
        else:
            model = pretrained_digits_cnn() if pretrained else DigitsCNN()
        return Network(name, model.eval(), (1, 8, 8), 10, "digits")
    if name == "digits-vit":
        from .digits_vit import DigitsViT, pretrained_digits_vit

        if weights is not None:
            model = DigitsViT()
            _load(model, weights, name)
        else:
            model = pretrained_digits_vit() if pretrained else DigitsViT()
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
    from .user import is_factory_spec

    if is_factory_spec(name):
        from .user import user_network

        return user_network(name, weights, pretrained, options)
    if name.startswith("torchvision:"):
        from .torchvision_models import torchvision_network

        return torchvision_network(name.split(":", 1)[1], weights, pretrained)
    close = difflib.get_close_matches(name, NAMES, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise ObjectiveInputError(f"unknown network {name!r}{hint} (networks: {', '.join(NAMES)})")


def _load(model, weights: str | Path, name: str) -> None:
    from .checkpoints import load_into, read_state_dict

    load_into(model, read_state_dict(weights), name)


__all__ = ["BUILT_IN", "NAMES", "Network", "get_network"]

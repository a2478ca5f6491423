"""Any torchvision classification model by name, with a local state dict or torchvision's weights."""

from __future__ import annotations

from pathlib import Path

from ..errors import CheckpointError, ObjectiveInputError
from ._base import Network
from .checkpoints import load_into, read_state_dict

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def torchvision_network(arch: str, weights: str | Path | None, pretrained: bool = True) -> Network:
    """``torchvision:<arch>``; ``weights`` is a state-dict file or a torchvision weights name (``DEFAULT`` downloads)."""
    from torchvision import models

    name = f"torchvision:{arch}"
    available = models.list_models(module=models)
    if arch not in available:
        import difflib

        close = difflib.get_close_matches(arch, available, n=4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ObjectiveInputError(f"torchvision has no classification model {arch!r}{hint}")
    if weights is None or not pretrained:
        if pretrained:
            raise CheckpointError(
                f"{name} needs --weights: a state-dict file, or a torchvision weights name such as DEFAULT (downloads)"
            )
        return Network(name, models.get_model(arch, weights=None).eval(), (3, 224, 224), 1000, "imagenet", imagenet_transform())
    path = Path(weights)
    if path.suffix in (".pt", ".pth", ".th", ".bin") or path.exists():
        model = models.get_model(arch, weights=None)
        load_into(model, read_state_dict(path), name)
        return Network(name, model.eval(), (3, 224, 224), _classes(model), "imagenet", imagenet_transform())
    try:
        enum = models.get_model_weights(arch)
        chosen = enum[str(weights)] if str(weights) != "DEFAULT" else enum.DEFAULT
    except KeyError:
        raise CheckpointError(f"{weights!r} is neither a file nor a weights name of {arch}") from None
    model = models.get_model(arch, weights=chosen)  # downloads into torch hub's cache once
    return Network(name, model.eval(), (3, 224, 224), len(chosen.meta["categories"]), "imagenet", chosen.transforms())


def imagenet_transform():
    """Resize 256, centre crop 224, ImageNet normalisation."""
    from torchvision import transforms

    return transforms.Compose(
        [
            transforms.Resize(256),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def _classes(model) -> int:
    from torch import nn

    last = [m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))][-1]
    return last.out_features if isinstance(last, nn.Linear) else last.out_channels

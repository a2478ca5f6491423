"""Users' own networks and data sets: ``path/to/file.py:factory`` or ``package.module:factory``.

A network factory is a function returning an ``nn.Module`` (called without arguments); its weights come
from a state-dict file (``weights_only=True``, fitted strictly). What the tool must know of the input is
taken, in this order, from the caller's options (study keys ``network.input_size``, ``network.mean``,
``network.std``), from attributes of the factory function, or from attributes of the module it returns:

* ``input_size`` -- (C, H, W) of one input image (required);
* ``mean`` and ``std`` -- per-channel normalisation after ``ToTensor`` (default none: 0 and 1);
* ``num_classes`` -- default: the size of the model's output for one image;
* ``transform`` -- a callable PIL image -> tensor replacing the default (resize the shorter side to H,
  centre crop (H, W), grayscale for one channel, ``ToTensor``, normalise).

A data set factory (``data.test`` / ``--data`` given as ``package.module:factory`` or ``file.py:factory``)
returns a torch data set of (image tensor, label) pairs: the test set; calibration takes a fixed,
class-balanced slice of it that evaluation leaves out (as for an image folder). Every mistake (no such
file or module, no such function, a factory that raises or returns the wrong thing, weights that do
not fit) is one :class:`~objectives.errors.ObjectiveInputError` line.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from ..errors import CheckpointError, ObjectiveInputError
from ._base import Network

_SPEC = re.compile(r"^(?P<where>.+?):(?P<name>[A-Za-z_][A-Za-z0-9_]*)$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
#: Keys of the options that describe the input (study keys, factory or module attributes).
OPTION_KEYS = ("input_size", "mean", "std", "num_classes", "transform")


def is_factory_spec(text: Any) -> bool:
    """Whether ``text`` names a factory: ``file.py:name`` or ``package.module:name`` (not ``torchvision:...``)."""
    if not isinstance(text, (str, os.PathLike)):
        return False
    match = _SPEC.match(str(text))
    if match is None or str(text).startswith("torchvision:"):
        return False
    where = match.group("where")
    return where.endswith(".py") or bool(_MODULE.match(where))


def load_factory(spec: str, what: str = "network") -> Callable[..., Any]:
    """The function a spec names, importing its file or module (a failing import is one clear line)."""
    match = _SPEC.match(str(spec))
    if match is None or not is_factory_spec(spec):
        raise ObjectiveInputError(f"{what} {spec!r}: expected path/to/file.py:function or package.module:function")
    where, name = match.group("where"), match.group("name")
    if where.endswith(".py"):
        path = Path(where).expanduser().resolve()
        if not path.is_file():
            raise ObjectiveInputError(f"{what} {spec!r}: file {path} does not exist")
        module_name = f"_dse_user_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}_{path.stem}"
        module = sys.modules.get(module_name)
        if module is None:
            with _on_path(str(path.parent)), _import_errors(what, spec):
                loader_spec = importlib.util.spec_from_file_location(module_name, path)
                module = importlib.util.module_from_spec(loader_spec)
                sys.modules[module_name] = module
                try:
                    loader_spec.loader.exec_module(module)
                except BaseException:
                    sys.modules.pop(module_name, None)
                    raise
    else:
        with _on_path(os.getcwd()), _import_errors(what, spec):
            try:
                module = importlib.import_module(where)
            except ModuleNotFoundError as error:
                if error.name and where.startswith(error.name):
                    raise ObjectiveInputError(f"{what} {spec!r}: no module named {error.name!r} (not installed, nor "
                                              "in the current folder)") from None
                raise
    factory = getattr(module, name, None)
    if factory is None:
        defined = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                         and getattr(v, "__module__", None) == module.__name__)
        hint = f"; it defines {', '.join(defined[:8])}" if defined else ""
        raise ObjectiveInputError(f"{what} {spec!r}: {where} has no {name!r}{hint}")
    if not callable(factory):
        raise ObjectiveInputError(f"{what} {spec!r}: {name} is a {type(factory).__name__}, not a function")
    return factory


def user_network(spec: str, weights: str | Path | None = None, pretrained: bool = True,
                 options: Mapping[str, Any] | None = None) -> Network:
    """The network a factory builds, with ``weights`` loaded (``pretrained=False``: as built)."""
    from torch import nn

    factory = load_factory(spec)
    try:
        model = factory()
    except Exception as error:  # the user's code: any exception is theirs to fix
        raise ObjectiveInputError(f"network {spec!r}: the factory raised {type(error).__name__}: "
                                  f"{_first_line(error)}") from None
    if not isinstance(model, nn.Module):
        raise ObjectiveInputError(f"network {spec!r}: the factory returned {type(model).__name__}, not a torch.nn.Module")
    if weights is not None and pretrained:
        from .checkpoints import load_into, read_state_dict

        load_into(model, read_state_dict(weights), spec)
    settings = _settings(factory, model, options or {})
    input_size = settings.get("input_size")
    if input_size is None:
        raise ObjectiveInputError(
            f"network {spec!r}: the input size is unknown; set network.input_size = [C, H, W] in the study file, or "
            f"give the factory (or the module it returns) an attribute input_size = (C, H, W)")
    try:
        input_shape = tuple(int(v) for v in input_size)
    except (TypeError, ValueError):
        input_shape = ()
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ObjectiveInputError(f"network {spec!r}: input_size must be (C, H, W), got {input_size!r}")
    model.eval()
    classes = settings.get("num_classes") or _output_size(model, input_shape, spec)
    transform = settings.get("transform") or default_transform(input_shape, settings.get("mean"), settings.get("std"))
    return Network(spec, model, input_shape, int(classes), "custom", transform)  # type: ignore[arg-type]


def default_transform(input_shape: tuple[int, int, int], mean: Any = None, std: Any = None) -> Any:
    """PIL image -> tensor: shorter side resized to H, centre crop (H, W), grayscale for one channel, normalised."""
    from torchvision import transforms

    c, h, w = input_shape
    steps: list[Any] = [transforms.Resize(min(h, w)), transforms.CenterCrop((h, w))]
    if c == 1:
        steps.append(transforms.Grayscale(1))
    steps.append(transforms.ToTensor())
    if mean is not None or std is not None:
        mean = tuple(float(v) for v in (mean if mean is not None else [0.0] * c))
        std = tuple(float(v) for v in (std if std is not None else [1.0] * c))
        steps.append(transforms.Normalize(mean, std))
    return transforms.Compose(steps)


def factory_split(network: Any, spec: str, calibration_size: int) -> Any:
    """The :class:`~objectives.data.DataSplit` of a data set factory's test set (see the module docstring)."""
    import numpy as np
    from torch.utils.data import Dataset, Subset

    from ..data import CALIBRATION_SEED, DataSplit, balanced_subset

    factory = load_factory(spec, "data set")
    try:
        dataset = factory()
    except Exception as error:
        raise ObjectiveInputError(f"data set {spec!r}: the factory raised {type(error).__name__}: "
                                  f"{_first_line(error)}") from None
    if not isinstance(dataset, Dataset) or not hasattr(dataset, "__len__") or len(dataset) == 0:
        raise ObjectiveInputError(f"data set {spec!r}: the factory returned {type(dataset).__name__}, not a non-empty "
                                  "torch data set of (image, label)")
    targets = getattr(dataset, "targets", None)
    labels = np.asarray(targets if targets is not None else [int(dataset[i][1]) for i in range(len(dataset))])
    if labels.ndim != 1 or len(labels) != len(dataset):
        raise ObjectiveInputError(f"data set {spec!r}: its targets do not list one label per item")
    calib_idx = balanced_subset(labels, calibration_size, CALIBRATION_SEED)
    rest = np.setdiff1d(np.arange(len(labels)), calib_idx)
    return DataSplit(Subset(dataset, calib_idx.tolist()), Subset(dataset, rest.tolist()), labels[rest],
                     network.num_classes, f"{spec} ({len(calib_idx)} calibration images left out)")


def _settings(factory: Callable, model: Any, options: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key in OPTION_KEYS:
        for source in (options.get(key), getattr(factory, key, None), getattr(model, key, None)):
            if source is not None and not (isinstance(source, (tuple, list)) and not source):
                out[key] = source
                break
    return out


def _output_size(model: Any, input_shape: tuple[int, ...], spec: str) -> int:
    import torch

    try:
        with torch.no_grad():
            out = model(torch.zeros(1, *input_shape))
    except Exception as error:
        raise ObjectiveInputError(f"network {spec!r}: a {tuple(input_shape)} input fails: {type(error).__name__}: "
                                  f"{_first_line(error)}") from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise ObjectiveInputError(f"network {spec!r}: expected (batch, classes) logits, got "
                                  f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
    return int(out.shape[1])


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else "")[:200]


@contextlib.contextmanager
def _on_path(folder: str) -> Iterator[None]:
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        yield
    finally:
        if added and folder in sys.path:
            sys.path.remove(folder)


@contextlib.contextmanager
def _import_errors(what: str, spec: str) -> Iterator[None]:
    try:
        yield
    except (ObjectiveInputError, CheckpointError):
        raise
    except Exception as error:
        raise ObjectiveInputError(f"{what} {spec!r}: importing it raised {type(error).__name__}: "
                                  f"{_first_line(error)}") from None

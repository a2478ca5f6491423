"""Where inference runs: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (CUDA when present), checked with one clear error."""

from __future__ import annotations

import re

import torch

from .errors import ObjectiveInputError

#: What ``--device`` and the study key ``run.device`` accept.
DEVICE_CHOICES = "cpu, cuda, cuda:N or auto"
_PATTERN = re.compile(r"^(cpu|auto|cuda)(?::(\d+))?$")


class DeviceError(ObjectiveInputError):
    """A device that is unknown or not on this machine."""


def available_devices() -> list[str]:
    """The devices this machine has, as ``--device`` spells them."""
    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return found


def resolve_device(spec: str | torch.device | None) -> torch.device:
    """The torch device for ``spec`` (None or ``auto``: ``cuda:0`` when CUDA is present, else ``cpu``).

    Raises :class:`DeviceError` (one line naming what is available) for a string that is not a device,
    or a CUDA device this machine lacks.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    text = (spec or "auto").strip().lower()
    match = _PATTERN.match(text)
    if match is None:
        raise DeviceError(f"unknown device {spec!r}; choose {DEVICE_CHOICES}")
    kind, index = match.group(1), match.group(2)
    if kind == "auto":
        if index is not None:
            raise DeviceError(f"unknown device {spec!r}; choose {DEVICE_CHOICES}")
        return torch.device("cuda:0") if torch.cuda.is_available() else torch.device("cpu")
    if kind == "cpu":
        if index not in (None, "0"):
            raise DeviceError(f"unknown device {spec!r}; choose {DEVICE_CHOICES}")
        return torch.device("cpu")
    have = ", ".join(available_devices())
    if not torch.cuda.is_available():
        reason = "this torch build has no CUDA support" if torch.version.cuda is None else "no CUDA GPU is visible"
        raise DeviceError(f"device {spec!r} asks for CUDA, but {reason} (available: {have})")
    number = int(index or 0)
    if number >= torch.cuda.device_count():
        raise DeviceError(f"device {spec!r} does not exist: this machine has {torch.cuda.device_count()} CUDA "
                          f"device(s) (available: {have})")
    return torch.device("cuda", number)


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of a module's first parameter or buffer (CPU for a module holding neither)."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (for timings); a no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)

"""Safe checkpoint loading: ``torch.load(weights_only=True)`` and a strict fit to the architecture."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, Mapping

from ..errors import CheckpointError


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """The tensors of a checkpoint file, never unpickling arbitrary objects.

    Accepts a bare state dict or a dict holding one under ``state_dict`` (or ``model``);
    a DataParallel ``module.`` prefix is removed.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise CheckpointError(
            f"refusing {path}: it holds objects that would need arbitrary unpickling "
            f"(loaded with weights_only=True; {first[:120]}); save a plain state_dict instead"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise CheckpointError(f"cannot read {path} as a torch checkpoint: {str(error).splitlines()[0][:160]}") from None
    state = _find_state_dict(loaded)
    if state is None:
        raise CheckpointError(f"{path} holds no state dict of tensors (expected a dict of name -> tensor)")
    return {_strip(key): value for key, value in state.items()}


def load_into(model: Any, state: Mapping[str, Any], what: str) -> None:
    """Copy ``state`` into ``model``; names and shapes must match exactly (BN batch counters may be absent)."""
    own = model.state_dict()
    # Checkpoints from before torch 0.4.1 lack BN's num_batches_tracked counters (unused in eval).
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k} {tuple(state[k].shape)} != {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} tensors (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensors (e.g. {', '.join(unexpected[:3])})")
    if wrong:
        problems.append(f"{len(wrong)} shape mismatches (e.g. {'; '.join(wrong[:2])})")
    if problems:
        raise CheckpointError(f"weights do not fit {what}: {'; '.join(problems)}")
    model.load_state_dict(dict(state), strict=False)


def _find_state_dict(loaded: Any) -> dict[str, Any] | None:
    import torch

    if isinstance(loaded, Mapping):
        if loaded and all(isinstance(v, torch.Tensor) for v in loaded.values()):
            return dict(loaded)
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(loaded.get(key), Mapping):
                return _find_state_dict(loaded[key])
        tensors = {k: v for k, v in loaded.items() if isinstance(v, torch.Tensor)}
        return tensors or None
    return None


def _strip(key: str) -> str:
    return key[len("module."):] if key.startswith("module.") else key

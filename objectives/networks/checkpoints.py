"""Safe checkpoint loading: ``torch.load(weights_only=True)`` and a strict fit to the architecture."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

from ..errors import CheckpointError


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """The tensors of a checkpoint file, never unpickling arbitrary objects.

    Accepts a bare state dict or a dict holding one under ``state_dict`` (or ``model``);
    a DataParallel ``module.`` prefix is removed. A file that is missing, empty, cut short, damaged,
    not a checkpoint at all or holding more than tensors raises :class:`CheckpointError` naming it
    and the problem (torch raises a dozen kinds of exception on damaged files; each is one line here).
    """
    import torch

    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"weights file {path} is a folder; give the checkpoint file")
    if not path.is_file():
        raise CheckpointError(f"weights file {path} does not exist")
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"weights file {path} is empty (0 bytes); it was cut short or never written")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of files it then refuses or reads
            warnings.simplefilter("ignore", UserWarning)
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - EOFError, RuntimeError, KeyError, struct.error ... on damaged files
        raise CheckpointError(_unreadable(path, size, error)) from None
    state = _find_state_dict(loaded)
    if state is None:
        raise CheckpointError(f"{path} holds no state dict of tensors (expected a dict of name -> tensor)")
    names = [key for key in state if not isinstance(key, str)]
    if names:
        raise CheckpointError(f"{path}: tensor names must be strings, found {names[0]!r}")
    return StateDict({_strip(key): value for key, value in state.items()}, path)


class StateDict(dict):
    """A checkpoint's tensors by name, knowing the file they came from (for :func:`load_into`'s messages)."""

    def __init__(self, tensors: Mapping[str, Any], path: Path | None = None) -> None:
        super().__init__(tensors)
        self.path = path


def _unreadable(path: Path, size: int, error: BaseException) -> str:
    """One line saying why torch could not load ``path``: objects needing arbitrary unpickling, or a damaged file."""
    cause = _innermost(error)
    said = first_line(cause)
    if isinstance(error, pickle.UnpicklingError) and said.startswith("Unsupported global"):
        return (
            f"refusing {path}: it holds objects that would need arbitrary unpickling (loaded with weights_only=True; "
            f"{said[:120]}); save a plain state_dict instead"
        )
    if isinstance(cause, OSError) and cause.errno is not None:
        return f"cannot read weights file {path}: {cause.strerror}"
    if isinstance(cause, MemoryError):
        return f"cannot read {path} as a torch checkpoint: it asks for more memory than there is (damaged?)"
    kind = type(cause).__name__
    if type(cause).__module__ not in ("builtins", "torch"):  # struct.error, pickle.UnpicklingError ...
        kind = f"{type(cause).__module__.lstrip('_')}.{kind}"
    what = kind if said == type(cause).__name__ else f"{kind}: {said}"
    return (
        f"cannot read {path} as a torch checkpoint ({size:,} bytes): cut short, damaged or not a checkpoint "
        f"({what[:160]})"
    )


def _innermost(error: BaseException) -> BaseException:
    """The exception at the bottom of ``error``'s chain of causes (torch wraps the unpickler's own error)."""
    seen = {id(error)}
    while True:
        inner = error.__cause__ or error.__context__
        if inner is None or id(inner) in seen:
            return error
        seen.add(id(inner))
        error = inner


def first_line(error: BaseException) -> str:
    """An exception's first non-empty line of text, or its type's name when it has none (``EOFError()``)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def load_into(model: Any, state: Mapping[str, Any], what: str) -> None:
    """Copy ``state`` into ``model``; names and shapes must match exactly (BN batch counters may be absent).

    A mismatch raises :class:`CheckpointError` naming the file when ``state`` came from :func:`read_state_dict`.
    """
    path = getattr(state, "path", None)
    what = f"{what} ({path})" if path is not None else what
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
    for key, tensor in own.items():
        given = state.get(key)
        if given is None or not tensor.is_floating_point():
            continue
        if not (given.is_floating_point() or given.dtype in _integer_dtypes()):
            raise CheckpointError(f"weights do not fit {what}: {key} holds {given.dtype} values, expected real numbers")
        if given.is_floating_point() and not bool(given.isfinite().all()):
            raise CheckpointError(f"weights for {what} hold non-finite values (NaN or infinity) in {key}")
    model.load_state_dict(dict(state), strict=False)


def _integer_dtypes() -> frozenset:
    import torch

    return frozenset({torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64})


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


#: The built-in networks' trained weights, shipped with the package (a few hundred KB in all).
SHIPPED = Path(__file__).parent / "weights"


def trained_weights(model: Any, what: str, cached: Path, train: Callable[[Any], None], shipped: bool = True) -> Any:
    """``model`` with its trained weights: the file of ``cached``'s name in :data:`SHIPPED` (``shipped``), else
    ``cached``, else ``train`` (then cached).

    The shipped weights are what ``train`` gives on torch 2.14 (x86-64); training elsewhere (another torch, another
    CPU's float kernels) can differ in the last bits and so move every figure of a study: shipping them makes the
    built-in studies the same network everywhere. A damaged cache (a disk that filled up, a copy cut short) is
    trained again; a cache that cannot be written costs the next run the training again, no more.
    """
    import logging

    import torch

    from ..atomic_file import write_atomically

    logger = logging.getLogger(__name__)
    if shipped and (SHIPPED / cached.name).is_file():
        load_into(model, read_state_dict(SHIPPED / cached.name), what)
        return model.eval()
    if cached.is_file():
        try:
            load_into(model, read_state_dict(cached), what)
            return model.eval()
        except CheckpointError as error:
            logger.warning("the cached %s weights are unusable (%s); training them again", what, error)
    train(model)
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(cached, lambda handle: torch.save(model.state_dict(), handle))
        logger.info("cached %s weights in %s", what, cached)
    except OSError as error:
        logger.warning("cannot cache the %s weights in %s (%s); they are trained again next time",
                       what, cached, error.strerror or error)
    return model.eval()

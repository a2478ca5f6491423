"""Every GEMM of a model as a module: found by walking the module and by watching one forward.

Quantisation swaps modules for their quantised twins (brevitas' layer map), so a GEMM must be a
module to meet a multiplier. :func:`explicit_gemms` makes it one, in place:

* every ``nn.MultiheadAttention`` becomes a :class:`~objectives.attention.DecomposedAttention`
  (packed input projection, Q K^T, softmax(.) V and output projection as modules);
* every call of ``torch.matmul``, ``torch.bmm``, the ``@`` operator or
  ``F.scaled_dot_product_attention`` in a module's ``forward`` becomes a child module of that module
  (``matmul0``, ``sdpa1``, ... numbered in call order within the module's forward), and the model
  routes each call to its module while it runs (a ``TorchFunctionMode`` entered by a hook of the
  root module; call sites are told apart by their module and their order in its forward, so the
  model's code is never edited).

A product is made a module when its result has at least three dimensions (the first the images, as
in attention); others, and every other multiplying operation inside a module that is not a GEMM
layer (``F.linear`` or ``F.conv1d`` called directly, ``torch.einsum``, ``nn.Conv1d``, ...), stay float
and are named in a warning.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from .attention import DecomposedAttention, Matmul, ScaledDotProductAttention

logger = logging.getLogger(__name__)

#: Products of two operand matrices, by the name prefix of the module a call site becomes.
_MATMULS = {torch.matmul, torch.bmm, torch.Tensor.matmul, torch.Tensor.bmm, torch.Tensor.__matmul__}
_SDPA = {F.scaled_dot_product_attention}
#: Multiplying operations the tool does not approximate (outside the layers it knows): named in a warning.
_UNSUPPORTED: dict[Callable, str] = {
    F.linear: "F.linear", F.bilinear: "F.bilinear", F.conv1d: "F.conv1d", F.conv2d: "F.conv2d", F.conv3d: "F.conv3d",
    F.conv_transpose1d: "F.conv_transpose1d", F.conv_transpose2d: "F.conv_transpose2d",
    F.conv_transpose3d: "F.conv_transpose3d", torch.einsum: "torch.einsum", torch.mm: "torch.mm",
    torch.Tensor.mm: "Tensor.mm", torch.addmm: "torch.addmm", torch.baddbmm: "torch.baddbmm",
    torch.addbmm: "torch.addbmm", torch.mv: "torch.mv", torch.tensordot: "torch.tensordot",
    F.multi_head_attention_forward: "F.multi_head_attention_forward",
}
#: Modules whose own forward does its GEMMs through modules or as a known layer.
_KNOWN = (nn.Conv2d, nn.Linear, Matmul)
#: Attribute marking a model converted by :func:`explicit_gemms`.
MARK = "_dse_explicit_gemms"


@dataclass(frozen=True)
class CallSite:
    """One product of two activations in a module's forward: the module, its order there, and its kind."""

    module: str
    index: int
    kind: str  # "matmul" or "sdpa"
    convertible: bool
    what: str

    @property
    def child(self) -> str:
        """The name of the child module the call becomes."""
        return f"{self.kind}{self.index}"


def explicit_gemms(model: nn.Module, input_shape: tuple[int, ...]) -> nn.Module:
    """Make every GEMM of ``model`` a module (see the module docstring), in place; returns ``model``.

    One forward of a zero image of ``input_shape`` finds the call sites; what cannot be approximated is
    logged as a warning naming its module. Converting a model twice is a no-op.
    """
    if getattr(model, MARK, False):
        return model
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.MultiheadAttention):
            _replace(model, name, DecomposedAttention(module).train(module.training))
    sites, unsupported = _discover(model, input_shape)
    holders: dict[str, nn.Module] = {}
    for site in sites:
        if not site.convertible:
            continue
        holder = model.get_submodule(site.module)
        if site.child in holder._modules or hasattr(holder, site.child):
            raise ValueError(f"module {site.module or 'the model'} already has an attribute {site.child!r}")
        holder.add_module(site.child, Matmul() if site.kind == "matmul" else ScaledDotProductAttention())
        holders[site.module] = holder
    for site in sites:
        if not site.convertible:
            unsupported.append(f"{_label(model, site.module)} calls {site.what} on operands it cannot take as a GEMM "
                               "(a result of fewer than three dimensions, or an out= argument)")
    for message in dict.fromkeys(unsupported):
        logger.warning("%s: not approximated (stays float)", message)
    if holders:
        for holder in holders.values():
            holder.register_forward_pre_hook(_enter_site_holder)
            holder.register_forward_hook(_leave_site_holder, always_call=True)
        model.register_forward_pre_hook(_enter_router)
        model.register_forward_hook(_leave_router, always_call=True)
    setattr(model, MARK, True)
    return model


def _label(model: nn.Module, name: str) -> str:
    module = model.get_submodule(name)
    return f"module {name!r} ({type(module).__name__})" if name else f"the model ({type(module).__name__})"


def _replace(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


# -- discovery ------------------------------------------------------------------------------------------
def _discover(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[list[CallSite], list[str]]:
    """The call sites of products in every module's forward, and messages for multiplications left float."""
    names = {id(m): n for n, m in model.named_modules()}
    stack: list[list[Any]] = []
    sites: dict[tuple[str, int], CallSite] = {}
    unsupported: list[str] = []

    def enter(module: nn.Module, args: Any) -> None:
        stack.append([module, 0])

    def leave(module: nn.Module, args: Any, output: Any) -> None:
        stack.pop()

    class Watch(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if stack and not isinstance(stack[-1][0], _KNOWN):
                frame = stack[-1]
                kind = "matmul" if func in _MATMULS else "sdpa" if func in _SDPA else None
                if kind is not None:
                    name = names.get(id(frame[0]), "")
                    site = CallSite(name, frame[1], kind, _convertible(kind, args, kwargs), _what(func))
                    sites.setdefault((name, site.index), site)
                    frame[1] += 1
                elif func in _UNSUPPORTED and not isinstance(frame[0], (DecomposedAttention, ScaledDotProductAttention)):
                    unsupported.append(f"{_label(model, names.get(id(frame[0]), ''))} calls {_UNSUPPORTED[func]}")
            return func(*args, **kwargs)

    handles = []
    for module in model.modules():
        handles.append(module.register_forward_pre_hook(enter))
        handles.append(module.register_forward_hook(leave, always_call=True))
    training = model.training
    try:
        with torch.no_grad(), Watch():
            model.eval()(torch.zeros(1, *input_shape))
    finally:
        model.train(training)
        for handle in handles:
            handle.remove()
    return list(sites.values()), unsupported


def _what(func: Callable) -> str:
    if func in _SDPA:
        return "F.scaled_dot_product_attention"
    return {torch.bmm: "torch.bmm", torch.Tensor.bmm: "Tensor.bmm"}.get(func, "torch.matmul")


def _operands(kind: str, args: tuple, kwargs: dict) -> tuple[Any, Any]:
    if kind == "sdpa":
        return (args[0] if args else kwargs.get("query")), (args[1] if len(args) > 1 else kwargs.get("key"))
    first = args[0] if args else kwargs.get("input")
    second = args[1] if len(args) > 1 else kwargs.get("other", kwargs.get("mat2"))
    return first, second


def _convertible(kind: str, args: tuple, kwargs: dict) -> bool:
    if "out" in kwargs:
        return False
    a, b = _operands(kind, args, kwargs)
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor) or a.dim() < 2 or b.dim() < 2:
        return False
    return max(a.dim(), b.dim()) >= 3


# -- routing at run time --------------------------------------------------------------------------------
class _State(threading.local):
    def __init__(self) -> None:
        self.frames: list[list[Any]] = []
        self.modes: list[TorchFunctionMode] = []


_STATE = _State()


class _Router(TorchFunctionMode):
    """Sends each product call to the child module its call site became (float where there is none)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        kind = "matmul" if func in _MATMULS else "sdpa" if func in _SDPA else None
        if kind is not None and _STATE.frames:
            frame = _STATE.frames[-1]
            child = frame[0]._modules.get(f"{kind}{frame[1]}")
            frame[1] += 1
            if child is not None:
                if kind == "matmul":
                    return child(*_operands(kind, args, kwargs))
                return child(*args, **kwargs)
        return func(*args, **kwargs)


def _enter_site_holder(module: nn.Module, args: Any) -> None:
    _STATE.frames.append([module, 0])


def _leave_site_holder(module: nn.Module, args: Any, output: Any) -> None:
    if _STATE.frames:
        _STATE.frames.pop()


def _enter_router(module: nn.Module, args: Any) -> None:
    mode = _Router()
    mode.__enter__()
    _STATE.modes.append(mode)


def _leave_router(module: nn.Module, args: Any, output: Any) -> None:
    if _STATE.modes:
        _STATE.modes.pop().__exit__(None, None, None)

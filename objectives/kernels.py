"""Where quantised layers get their arithmetic: ``objectives.emulation.make_kernel`` (cached there per table)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import AssignmentError


def get_kernel(lut: np.ndarray, signed: bool, method: str = "auto", device: Any = None, products: bool = False) -> Any:
    """A product kernel for ``lut`` (row = activation, column = weight) on ``device`` (``auto`` picks per device
    type, and for ``products`` of two activations); a path that cannot take it is a user error."""
    from .emulation import make_kernel

    try:
        return make_kernel(np.asarray(lut), signed, method, device=device, products=products)
    except ValueError as error:
        raise AssignmentError(f"kernel path {method!r}: {error}") from None

"""Bit-exact arithmetic of AxM-emulated conv/linear layers.

Every product of a layer is the multiplier's LUT entry and the sums are exact::

    from objectives.emulation import make_kernel
    kernel = make_kernel(multiplier.lut, multiplier.signed)   # method="auto"
    prepared = kernel.prepare_weight(w)                         # once per layer; cache it
    y = kernel.conv2d(x_padded, prepared, stride=(1, 1), dilation=(1, 1), groups=1)
    y = kernel.linear(x, prepared)

Operands are integer values (-128..127 signed, codes 0..255 unsigned) in any float or int
dtype; results are float64 tensors of exact integers. ``kernel.sums`` / ``kernel.linear_sums``
are the same arithmetic for operands in range by construction (a quantised layer's rounded,
clamped codes): no per-call value check, and float32 results where every sum is exact there.
Paths (``kernel.method``):

* ``exact`` -- the exact table: one float32 GEMM, bounds checked per layer.
* ``lowrank`` -- ``lut = [exact +] sum_r u_r(a) v_r(w)``, exact integer factors found and
  verified per LUT; one conv with the factors stacked along channels.
* ``gather`` -- any table: exact GEMM plus the error read as embedding bags of per-layer tables.
* ``reference`` -- im2col and one lookup per product, summed in int64 (ground truth).
"""

from ._analysis import LowRankPlan, lowrank_plans
from ._base import METHODS, PreparedWeight, ProductKernel
from ._exact import ExactKernel
from ._factorise import Factorisation, exact_factorisation
from ._factory import AUTO_MAX_CHANNELS, choose_method, make_kernel
from ._gather import GatherKernel
from ._im2col import window_sums
from ._lowrank import LowRankKernel
from ._operands import conv_output_size
from ._reference import ReferenceKernel

__all__ = [
    "AUTO_MAX_CHANNELS",
    "METHODS",
    "ExactKernel",
    "Factorisation",
    "GatherKernel",
    "LowRankKernel",
    "LowRankPlan",
    "PreparedWeight",
    "ProductKernel",
    "ReferenceKernel",
    "choose_method",
    "conv_output_size",
    "exact_factorisation",
    "lowrank_plans",
    "make_kernel",
    "window_sums",
]

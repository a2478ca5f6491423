"""How strongly each layer's output error reaches the logits: linearised sensitivities, checked by injection.

A layer's accumulator error is modelled per output channel n as
``dC[m, n] = b_n + alpha_n (C[m, n] - E C_n) + r[m, n]``: a constant (bias), a gain error and a
residual of variance rho_n (see :mod:`objectives.distortion.layer_model`). To first order the logit
change is ``J dC`` with J the Jacobian of the logits with respect to the layer's output, so

    E ||d logits||^2 = b^T G_bias b + alpha^T G_gain alpha + sum_n h_n rho_n

with ``G_bias[n, n'] = E sum_o g_on g_on'`` (g_on = sum_m J[o, m, n]), ``G_gain`` likewise with
g_on = sum_m J[o, m, n] (C[m, n] - E C_n), and ``h_n = E sum_o sum_m J[o, m, n]^2`` — residuals taken
as independent from output to output. Jacobians come from the float (batch-norm folded) network,
scaled to accumulator units. Then each layer is calibrated by injection: white noise of known
power is added to that one layer of the quantised network and the measured logit change divides
the linearised prediction, giving a factor that carries what linearisation misses (clipping and
rounding downstream).

The logits are taken centred (their mean over classes removed): an error that adds the same amount
to every logit changes no decision, so the score is the logit error power that can move one,
E ||P d logits||^2 with P = I - 11^T / classes, in the linearisation and the injection alike. How
much of a layer's error reaches the logits as such a common shift depends on its level: a large
error rectified by the ReLUs after it raises many activations at once (in the digits CNN, white
noise at 100% of the last convolution's output power leaves 32% of the logit error after
centring, at 0.1% 96%), which no linearisation sees. So the injection also runs at larger levels
(:data:`INJECTION_POWERS`) and measures the centred share of the logit error at each; a design's
contribution is scaled by the share at its own predicted error level relative to the share at the
reference level (1 in networks without such a shift, ResNet-20's for one).
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: Relative power (vs the layer's exact output energy) of the white noise whose logit change sets a layer's factor,
#: and the levels (from it up) at which the centred share of that change is measured.
INJECTION_POWER = 1e-3
INJECTION_POWERS = (INJECTION_POWER, 1e-2, 1e-1, 1.0)


@dataclass
class LayerSensitivity:
    """Linearised sensitivities of one layer (accumulator units) and its injection factor."""

    gram_bias: np.ndarray  # (N, N)
    gram_gain: np.ndarray  # (N, N)
    white: np.ndarray  # (N,)
    factor: float = 1.0  # measured / linearised centred logit error power at INJECTION_POWER
    levels: np.ndarray | None = None  # (P,) relative powers injected, increasing, the first INJECTION_POWER
    shares: np.ndarray | None = None  # (P,) centred / raw logit error power measured at each

    def factor_at(self, relative_power: np.ndarray) -> np.ndarray:
        """The factor at each relative error power: :attr:`factor` times the centred share there over the share at
        the reference level (interpolated in log power, flat beyond the levels measured)."""
        power = np.asarray(relative_power, dtype=np.float64)
        if self.levels is None or self.shares is None:
            return np.full(power.shape, self.factor)
        share = np.interp(np.log(np.maximum(power, 1e-300)), np.log(self.levels), self.shares)
        return self.factor * share / self.shares[0]

    def logit_error(self, bias: np.ndarray, gain: np.ndarray, residual: np.ndarray,
                    relative_power: np.ndarray | None = None) -> np.ndarray:
        """Predicted E||d logits||^2 (centred logits) for designs' per-channel (bias, gain, residual variance), each
        (n, N); ``relative_power`` (n,): each design's error power relative to the layer's exact output energy, which
        picks the injection factor (:attr:`factor` when not given)."""
        quad_bias = np.einsum("in,nm,im->i", bias, self.gram_bias, bias)
        quad_gain = np.einsum("in,nm,im->i", gain, self.gram_gain, gain)
        factor = self.factor if relative_power is None else self.factor_at(relative_power)
        return factor * (quad_bias + quad_gain + residual @ self.white)


def linearised_sensitivities(qnet: Any, max_images: int = 256, progress: bool = False) -> dict[str, LayerSensitivity]:
    """Per layer Gram matrices and white-noise sensitivities from the float network's Jacobians."""
    import torch

    from ..evaluate import batches

    # On the CPU wherever the network runs: float convolutions and their gradients differ in the last
    # bits between devices, and the surrogate (so the search and its front) must not.
    model = qnet.float_model if qnet.device.type == "cpu" else copy.deepcopy(qnet.float_model).cpu()
    names = list(qnet.layers)
    modules = {name: model.get_submodule(name) for name in names}
    scales = {name: qnet.layer(name).requant_scale.detach().double().cpu() for name in names}
    # every output as (batch, channels, positions): conv (N, O, HW), linear (N, O, rows), products (N, heads, MN)
    layouts = {name: qnet.layer(name).channel_layout for name in names}
    outputs: dict[str, Any] = {}

    def keep(name: str):
        def hook(module, inputs, output):
            output.retain_grad()
            outputs[name] = output

        return hook

    data = _first_images(qnet.calibration, max_images)
    # pass 1: each channel's mean output (E C_n), 2: Jacobians
    means = {name: 0.0 for name in names}
    positions = {name: 1 for name in names}
    handles = [modules[n].register_forward_hook(lambda m, i, o, n=n: outputs.__setitem__(n, o)) for n in names]
    count = 0
    with torch.no_grad():
        for x, _ in batches(data, qnet.batch_size, progress=False):
            model(x)
            count += x.shape[0]
            for n in names:
                y = layouts[n](outputs[n].double())
                means[n] = means[n] + y.sum((0, 2))
                positions[n] = y.shape[2]
    for h in handles:
        h.remove()
    means = {n: means[n] / (count * positions[n]) for n in names}

    grams_b = {n: 0.0 for n in names}
    grams_g = {n: 0.0 for n in names}
    white = {n: 0.0 for n in names}
    handles = [modules[n].register_forward_hook(keep(n)) for n in names]
    try:
        for x, _ in batches(data, qnet.batch_size, progress=progress, desc="sensitivities"):
            logits = centred(model(x))
            for o in range(logits.shape[1]):
                for n in names:
                    outputs[n].grad = None
                logits[:, o].sum().backward(retain_graph=o < logits.shape[1] - 1)
                for n in names:
                    y, jac = layouts[n](outputs[n].detach().double()), layouts[n](outputs[n].grad.double())
                    g_bias = jac.sum(2) * scales[n]  # (B, N): d logit / d (constant acc offset)
                    g_gain = (jac * (y - means[n].view(1, -1, 1))).sum(2)  # d logit / d (relative gain)
                    grams_b[n] = grams_b[n] + g_bias.T @ g_bias
                    grams_g[n] = grams_g[n] + g_gain.T @ g_gain
                    white[n] = white[n] + (jac * jac).sum((0, 2)) * scales[n] ** 2
    finally:
        for h in handles:
            h.remove()
        model.zero_grad(set_to_none=True)
    return {
        n: LayerSensitivity(
            (grams_b[n] / count).numpy(), (grams_g[n] / count).numpy(), (white[n] / count).numpy()
        )
        for n in names
    }


def calibrate_by_injection(
    qnet: Any, sensitivities: dict[str, LayerSensitivity], output_energy: dict[str, float], seed: int = 0,
    max_images: int = 256, progress: bool = False,
) -> None:
    """Set each layer's factor (measured / linearised centred logit change under white noise in that layer alone)
    and the centred share of that change at each of :data:`INJECTION_POWERS`."""
    import torch

    from ..evaluate import batches

    data = _first_images(qnet.calibration, max_images)
    saved = dict(qnet.assignment), qnet.compensation, dict(qnet.injection)
    qnet.reset()
    try:
        # logits to the CPU before any sum: bit-identical logits give identical factors on every device
        reference = [qnet(x).double().cpu() for x, _ in batches(data, qnet.batch_size, progress=False)]
        names = list(qnet.layers)
        iterator = names
        if progress:
            from tqdm import tqdm

            iterator = tqdm(names, desc="injection calibration", unit="layer")
        for index, name in enumerate(iterator):
            layer = qnet.layer(name)
            info = qnet.layers[name]
            s = sensitivities[name]
            shares, centred_powers, variances = [], [], []
            for level in INJECTION_POWERS:
                variance = level * output_energy[name] / (info.m * info.n)  # per output, accumulator units
                variances.append(variance)
                generator = torch.Generator().manual_seed(seed * 7919 + index)  # the same draws at every level
                layer.noise = lambda _layer, sums, std=variance**0.5, g=generator: (torch.randn(
                    sums.shape, generator=g, dtype=torch.float64) * std).to(sums.device)
                centred_power = raw_power = 0.0
                try:
                    for (x, _), ref in zip(batches(data, qnet.batch_size, progress=False), reference):
                        change = qnet(x).double().cpu() - ref
                        raw_power += float((change**2).sum())
                        centred_power += float((centred(change) ** 2).sum())
                finally:
                    layer.noise = None
                shares.append(centred_power / raw_power if raw_power > 0 else 1.0)
                centred_powers.append(centred_power / len(data))
            # the factor: measured / linearised at the reference level, INJECTION_POWERS[0]
            predicted = float(s.white.sum() * variances[0])
            s.factor = centred_powers[0] / predicted if predicted > 0 else 1.0
            s.levels, s.shares = np.array(INJECTION_POWERS), np.array(shares)
            logger.debug("layer %s: injection factor %.3f, centred shares %s", name, s.factor, np.round(s.shares, 3))
    finally:
        assignment, compensation, injection = saved
        qnet.set_assignment(assignment, compensation)
        qnet.set_injection(injection)


def centred(logits: Any) -> Any:
    """Logits (batch, classes) less their mean over classes: the part of a change that can move a decision."""
    return logits - logits.mean(dim=1, keepdim=True)


def _first_images(dataset: Any, n: int) -> Any:
    from torch.utils.data import Subset

    return dataset if len(dataset) <= n else Subset(dataset, list(range(n)))

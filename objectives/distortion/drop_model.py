"""From a network score to a predicted top-1 drop with its interval: the logit-margin model.

The score of an assignment is the predicted logit error power E||d logits||^2 per image, of the logits
centred over classes (:mod:`.network_score`, :mod:`.sensitivity`). How much top-1 accuracy such an error
costs depends on how close the network's decisions are: an image whose winning logit leads the runner-up
by a margin far above the error keeps its class, one within the error may flip. :class:`MarginCurve`
measures that once per network from the exact network's own logits: the expected drop when isotropic
Gaussian noise of standard deviation sigma is added to every logit (a Monte-Carlo average over fixed
draws, so it is smooth and deterministic). :func:`margins_on` takes it on the images the drops are
measured on (a study's confirmation images, ``dse predict``'s and a benchmark's evaluation images),
whose near-ties are the ones that flip: taken on the calibration slice of the built-in digits networks,
which is training data classified with wide margins, it said a small error costs nothing, while on the
test digits a few borderline images flip under any error. Its shape is the physics of the step from
logit errors to accuracy: linear in sigma while errors are small (the density of margins near zero),
saturating at chance.

:class:`DropModel` ties the score to that curve with two numbers fitted on real evaluations,

    sigma^2 = kappa * (score / (classes - 1)) ** gamma,

(isotropic noise of std sigma per logit has a centred power of (classes - 1) sigma^2, so kappa = gamma = 1
says the error flips decisions as such noise of the score's power would),

``kappa`` absorbing what the score misses in scale (errors that are not isotropic noise, images
other than the calibration ones) and ``gamma`` (held near 1 by a prior) how the score's error grows
with its level.

The interval says where a measurement of the assignment will fall. Two things spread it: the model's
own error, a factor exp(s) in sigma (the score misjudges some assignments more than others), and the
measurement's noise. A measured drop is the images an error flips to wrong less those it flips to
right, and near-ties flip both ways: on ResNet-20's test images an error that costs 0 points flips
about 3 % of them, one that costs 1 point 8 %. So the curve also counts the images whose top-1 hit
changes, F(sigma) in % (:meth:`MarginCurve.flipped`), and a drop measured on N images has a standard
error of sqrt(100 F / N) points (0.4 point at no drop on 2,000 images). ``s`` is the maximum-
likelihood spread of the fitted points given both, with a prior (a factor of about 1.6 in sigma)
worth :data:`PRIOR_POINTS` points, so that two or three residuals do not decide it alone. The
interval's half-widths are the two parts added in quadrature; its low end may be negative, as
measured drops can be (an assignment that happens to classify an image more than exact).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Monte-Carlo draws of logit noise per image, and the sigma grid (relative to the median margin).
DRAWS = 32
GRID = np.logspace(-3.0, 2.0, 101)
#: Prior of the fit: gamma ~ 1 +- GAMMA_PRIOR (the score is the logit error power, measured proportional to it up
#: to drops of 13 points on ResNet-20); the spread in log sigma ~ SPREAD_PRIOR, worth PRIOR_POINTS points.
GAMMA_PRIOR = 0.1
SPREAD_PRIOR = 0.5
PRIOR_POINTS = 2.0
#: Interval coverage reported by default (two-sided, central).
COVERAGE = 0.8
#: A fitted point's residual is scaled by its measurement noise and RELATIVE_ERROR x its measured drop (in
#: quadrature); ABSOLUTE_ERROR (points) stands for the noise where the images measured are unknown.
ABSOLUTE_ERROR = 0.3
RELATIVE_ERROR = 0.2
#: Images whose hit changes per net flip, for a curve without flip counts (one built by hand).
CHURN = 2.0


@dataclass(frozen=True)
class MarginCurve:
    """Expected top-1 drop (points) of a network when Gaussian noise of std sigma is added to its logits."""

    sigmas: np.ndarray  # (G,) increasing, > 0
    drops: np.ndarray  # (G,) non-decreasing, >= 0
    classes: int
    flips: np.ndarray | None = None  # (G,) % of images whose top-1 hit changes, either way; None: not counted

    @classmethod
    def from_logits(cls, logits: np.ndarray, labels: np.ndarray, seed: int = 0, draws: int = DRAWS) -> "MarginCurve":
        """The curve of a network from its exact logits (N, C) and the labels (N,)."""
        z = np.asarray(logits, dtype=np.float64)
        y = np.asarray(labels, dtype=np.int64)
        if z.ndim != 2 or z.shape[0] != y.shape[0] or z.shape[0] == 0 or z.shape[1] < 2:
            raise ValueError(f"logits {z.shape} and labels {y.shape} do not describe a classifier's outputs")
        top2 = np.sort(z, axis=1)[:, -2:]
        margins = top2[:, 1] - top2[:, 0]
        scale = float(np.median(margins[margins > 0])) if np.any(margins > 0) else 1.0
        sigmas = scale * GRID
        rng = np.random.default_rng(seed)
        hit = z.argmax(axis=1) == y
        base = float(np.mean(hit))
        accuracy = np.zeros(len(sigmas))
        changed = np.zeros(len(sigmas))
        for _ in range(draws):  # the same noise at every sigma (common random numbers): a smooth curve
            noise = rng.standard_normal(z.shape)
            for g, sigma in enumerate(sigmas):
                noisy = (z + sigma * noise).argmax(axis=1) == y
                accuracy[g] += np.mean(noisy)
                changed[g] += np.mean(noisy != hit)
        drops = np.maximum.accumulate(np.maximum(100.0 * (base - accuracy / draws), 0.0))
        return cls(sigmas, drops, int(z.shape[1]), np.maximum.accumulate(100.0 * changed / draws))

    @property
    def directions(self) -> int:
        """Independent directions of a centred logit error (classes - 1): isotropic noise of std sigma per logit has
        a centred power of ``directions * sigma^2``."""
        return self.classes - 1

    def __call__(self, sigma: np.ndarray) -> np.ndarray:
        """Drop at each sigma: interpolated in log sigma, linear to 0 below the grid, flat above it."""
        return self._interpolate(self.drops, sigma)

    def flipped(self, sigma: np.ndarray) -> np.ndarray:
        """% of images whose top-1 hit changes at each sigma, interpolated as the drop (CHURN x the drop when the
        curve has no flip counts)."""
        return CHURN * self(sigma) if self.flips is None else self._interpolate(self.flips, sigma)

    def _interpolate(self, values: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """``values`` (on the grid) at each sigma: interpolated in log sigma, linear to 0 below the grid, flat above."""
        sigma = np.asarray(sigma, dtype=np.float64)
        inside = np.interp(np.log(np.maximum(sigma, 1e-300)), np.log(self.sigmas), values)
        return np.where(sigma < self.sigmas[0], values[0] * np.clip(sigma / self.sigmas[0], 0.0, 1.0), inside)

    def noise(self, sigma: np.ndarray, images: int) -> np.ndarray:
        """Standard error (points) of a drop measured on ``images`` images where the logits err by ``sigma``: each
        image whose hit changes moves it by 100 / images points, one way or the other."""
        return np.sqrt(100.0 * np.maximum(self.flipped(sigma), 100.0 / images) / images)

    def inverse(self, drop: float) -> float | None:
        """The smallest sigma at which the curve reaches ``drop`` (None beyond its range or at <= 0)."""
        if drop <= 0 or drop >= self.drops[-1]:
            return None
        if drop <= self.drops[0]:
            return float(self.sigmas[0] * drop / self.drops[0])
        i = int(np.searchsorted(self.drops, drop, side="left"))
        d0, d1 = self.drops[i - 1], self.drops[i]
        x0, x1 = np.log(self.sigmas[i - 1]), np.log(self.sigmas[i])
        return float(np.exp(x0 + (x1 - x0) * (drop - d0) / (d1 - d0))) if d1 > d0 else float(self.sigmas[i])


def margins_on(qnet: Any, dataset: Any, seed: int = 0) -> MarginCurve:
    """The margin curve of the exact quantised network ``qnet`` on ``dataset`` (its assignment is kept)."""
    saved = dict(qnet.assignment), qnet.compensation, dict(qnet.injection)
    qnet.reset()
    try:
        logits, labels = logits_on(qnet, dataset)
    finally:
        assignment, compensation, injection = saved
        qnet.set_assignment(assignment, compensation)
        qnet.set_injection(injection)
    return MarginCurve.from_logits(logits, labels, seed=seed)


def logits_on(qnet: Any, dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """Logits (N, classes), in float64 on the CPU, of ``qnet`` as it is assigned, and the labels (N,) of ``dataset``."""
    import torch

    from ..evaluate import batches

    logits, labels = [], []
    with torch.no_grad():
        for x, y in batches(dataset, qnet.batch_size, progress=False):
            logits.append(qnet(x).double().cpu().numpy())
            labels.append(np.asarray(y).reshape(-1))
    return np.concatenate(logits), np.concatenate(labels)


@dataclass(frozen=True)
class DropModel:
    """Score -> predicted drop (points) through the margin curve, with an interval from the fit's spread."""

    curve: MarginCurve
    log_kappa: float
    gamma: float = 1.0
    spread: float = SPREAD_PRIOR  # std of log sigma around the model
    ceiling: float | None = None  # the drop to chance accuracy on the evaluation images
    images: int | None = None  # evaluation images of a measurement (its noise); None: no measurement noise

    def sigma(self, scores: np.ndarray) -> np.ndarray:
        """Effective logit noise std of each score (0 at score 0)."""
        s = np.maximum(np.asarray(scores, dtype=np.float64), 0.0) / self.curve.directions
        with np.errstate(divide="ignore"):
            log_sigma = 0.5 * (self.log_kappa + self.gamma * np.log(s))
        return np.where(s > 0, np.exp(log_sigma), 0.0)

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """Predicted drop of each score."""
        return self._capped(self.curve(self.sigma(scores)))

    def interval(self, scores: np.ndarray, coverage: float = COVERAGE) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) drops of the central ``coverage`` interval of each score."""
        from scipy.stats import norm

        z = float(norm.ppf(0.5 + coverage / 2))
        sigma = self.sigma(scores)
        factor = np.exp(z * self.spread)
        centre = self._capped(self.curve(sigma))
        noise = z * self.measurement_noise(sigma)
        down = np.hypot(centre - self._capped(self.curve(sigma / factor)), noise)
        up = np.hypot(self._capped(self.curve(sigma * factor)) - centre, noise)
        return centre - down, self._capped(centre + up)

    def measurement_noise(self, sigma: np.ndarray) -> np.ndarray:
        """Standard error (points) of a drop measured on :attr:`images` images where the logits err by ``sigma``;
        0 when the images are unknown."""
        sigma = np.asarray(sigma, dtype=np.float64)
        return self.curve.noise(sigma, self.images) if self.images else np.zeros_like(sigma)

    def inverse(self, drops: np.ndarray) -> np.ndarray:
        """The score the model puts at each drop (inf where the curve never reaches it, 0 at <= 0)."""
        out = []
        for d in np.asarray(drops, dtype=np.float64).ravel():
            sigma = self.curve.inverse(float(d)) if d > 0 else 0.0
            if sigma is None:
                out.append(np.inf)
            elif sigma == 0.0:
                out.append(0.0)
            else:
                out.append(self.curve.directions * np.exp((2 * np.log(sigma) - self.log_kappa) / self.gamma))
        return np.array(out).reshape(np.shape(drops))

    def _capped(self, drops: np.ndarray) -> np.ndarray:
        return drops if self.ceiling is None else np.minimum(drops, self.ceiling)

    @classmethod
    def fit(cls, curve: MarginCurve, scores: np.ndarray, drops: np.ndarray, ceiling: float | None = None,
            images: int | None = None) -> "DropModel":
        """Fit kappa and gamma on real evaluations (each assignment's score and measured drop on ``images`` images).

        Least squares on the drops, with the prior on gamma as one more residual; points at chance
        (``ceiling``) say only that the error is large. Each residual is scaled by its measurement noise
        and a relative error of 0.2 x the measured drop, in quadrature; the noise depends on the fitted
        sigma, so a first fit with 0.3 point for it gives the scales of the second.
        """
        scores = np.asarray(scores, dtype=np.float64)
        drops = np.asarray(drops, dtype=np.float64)
        keep = scores > 0
        if keep.sum() < 1:
            raise ValueError("the drop model needs at least one evaluation with a non-zero score")
        s, d = scores[keep] / curve.directions, drops[keep]
        top = curve.drops[-1] if ceiling is None else min(curve.drops[-1], ceiling)
        saturated = d >= 0.95 * top
        log_s = np.log(s)
        relative = RELATIVE_ERROR * np.clip(d, 0.0, None)
        log_kappa, gamma = _solve(curve, log_s, d, saturated, top, 1.0 / (ABSOLUTE_ERROR + relative))
        if images:
            noise = curve.noise(np.exp(0.5 * (log_kappa + gamma * log_s)), images)
            log_kappa, gamma = _solve(curve, log_s, d, saturated, top, 1.0 / np.hypot(noise, relative))
        model = cls(curve, log_kappa, gamma, SPREAD_PRIOR, ceiling, images)
        return cls(curve, log_kappa, gamma, model._spread(s * curve.directions, d, saturated), ceiling, images)

    def _spread(self, scores: np.ndarray, drops: np.ndarray, saturated: np.ndarray) -> float:
        """Maximum-likelihood spread (log sigma) of the points around the model, given their measurement noise.

        A point's residual (measured - predicted drop) has variance ((curve(sigma e^s) - curve(sigma e^-s)) / 2)^2
        + noise^2; the prior adds :data:`PRIOR_POINTS` points whose residual is exactly :data:`SPREAD_PRIOR`
        in log sigma.
        """
        keep = ~saturated
        sigma = self.sigma(scores[keep])
        centre = self(scores[keep])
        residual = drops[keep] - centre
        noise2 = self.measurement_noise(sigma) ** 2
        grid = np.exp(np.linspace(np.log(0.02), np.log(3.0), 200))
        best, best_ll = SPREAD_PRIOR, -np.inf
        for s in grid:
            half = 0.5 * (self._capped(self.curve(sigma * np.exp(s))) - self._capped(self.curve(sigma / np.exp(s))))
            variance = np.maximum(half**2 + noise2, 1e-6)
            ll = -0.5 * np.sum(np.log(variance) + residual**2 / variance)
            ll -= 0.5 * PRIOR_POINTS * ((SPREAD_PRIOR / s) ** 2 + 2 * np.log(s))  # points at exactly SPREAD_PRIOR
            if ll > best_ll:
                best, best_ll = float(s), ll
        return best

    def to_dict(self) -> dict:
        """The fitted numbers (the curve is saved with the surrogate's arrays)."""
        return {"log_kappa": self.log_kappa, "gamma": self.gamma, "spread": self.spread, "ceiling": self.ceiling,
                "images": self.images}


def _solve(curve: MarginCurve, log_s: np.ndarray, d: np.ndarray, saturated: np.ndarray, top: float,
           weight: np.ndarray) -> tuple[float, float]:
    """(log kappa, gamma) minimising the robust weighted residuals of the drops ``d`` at log scores ``log_s``."""
    from scipy.optimize import least_squares

    def residuals(p: np.ndarray) -> np.ndarray:
        predicted = np.minimum(curve(np.exp(0.5 * (p[0] + p[1] * log_s))), top)
        # at chance, any prediction at or beyond it is right
        error = np.where(saturated, np.minimum(predicted - d, 0.0), predicted - d)
        return np.append(error * weight, (p[1] - 1.0) / GAMMA_PRIOR)

    # a coarse scan of kappa first: far from the data the curve is flat (every prediction 0, or at chance)
    # and a local fit would stay there
    start = _start(curve, np.exp(log_s), d, saturated)
    scan = start + np.linspace(-12.0, 12.0, 97)
    cost = [float(np.sum(_soft_l1(residuals(np.array([k, 1.0]))))) for k in scan]
    fit = least_squares(residuals, np.array([scan[int(np.argmin(cost))], 1.0]), loss="soft_l1", f_scale=1.0)
    return float(fit.x[0]), float(np.clip(fit.x[1], 0.25, 4.0))


def _soft_l1(r: np.ndarray) -> np.ndarray:
    """The robust loss least_squares minimises (``loss="soft_l1"``, ``f_scale=1``)."""
    return 2.0 * (np.sqrt(1.0 + r**2) - 1.0)


def _start(curve: MarginCurve, s: np.ndarray, d: np.ndarray, saturated: np.ndarray) -> float:
    """Starting log kappa: the median of log(sigma_i^2 / s_i) over points the curve can invert."""
    guesses = []
    for si, di, sat in zip(s, d, saturated):
        own = None if sat else curve.inverse(float(di))
        if own is not None:
            guesses.append(2 * np.log(own) - np.log(si))
    if guesses:
        return float(np.median(guesses))
    # nothing invertible (every drop 0 or at chance): put the largest score at the curve's middle
    middle = curve.sigmas[np.searchsorted(curve.drops, 0.5 * curve.drops[-1])] if curve.drops[-1] > 0 else curve.sigmas[0]
    return float(2 * np.log(middle) - np.log(s.max()))

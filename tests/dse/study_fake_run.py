"""``dse`` with the study's network replaced by fast stand-ins, for tests that run studies in processes.

``python tests/dse/study_fake_run.py run STUDY.toml --out DIR ...`` runs the real ``dse`` command
line, but every study's target is :class:`FakeTarget` (the four layers of :mod:`study_fakes`, a
drop that follows the fake surrogate's prediction) and its surrogate :class:`study_fakes.FakeSurrogate`:
a study runs in seconds, with everything else (storage, claims, engines, confirmation rounds) real.
``DSE_FAKE_EVAL_SECONDS`` makes each real-inference stand-in take that long, so a test can kill a
run while a measurement is in flight; ``DSE_FAKE_HANG_AFTER=N`` makes the (N+1)-th never end.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.dse.study_fakes import LAYERS, FakeSurrogate, candidates  # noqa: E402

DELAY_VARIABLE = "DSE_FAKE_EVAL_SECONDS"
#: After this many real-inference stand-ins, the next one never ends (the test kills the process in it).
HANG_VARIABLE = "DSE_FAKE_HANG_AFTER"


class _Info:
    def __init__(self, layer: Any) -> None:
        self.layer = layer

    def as_dict(self) -> dict[str, Any]:
        m, k, n = self.layer.m, self.layer.k, self.layer.n
        return {"name": self.layer.name, "m": m, "k": k, "n": n, "macs": m * k * n}


class FakeTarget:
    """A study target whose real inference is a deterministic function of the assignment."""

    def __init__(self, config: Any, multipliers: list | None = None) -> None:
        self.config = config
        self.multipliers = multipliers or candidates()
        self.layers = list(LAYERS)
        self.approximated = [layer.name for layer in LAYERS]
        self.surrogate = FakeSurrogate(LAYERS, self.multipliers)
        self.qnet = None
        self.evaluations = 0

    def layer_info(self, name: str) -> _Info:
        return _Info(next(layer for layer in self.layers if layer.name == name))

    def held_out_images(self, images: int | None) -> int:
        """The fake's test set is the confirmation's: nothing held out."""
        return 0

    def evaluate(self, assignment: dict, compensation: str, images: int | None, progress: bool = False,
                 held_out: bool = False) -> dict:
        """Top-1 = 95 minus the fake surrogate's drop, bent a little and jittered by the assignment's hash."""
        time.sleep(float(os.environ.get(DELAY_VARIABLE, "0")))
        self.evaluations += 1
        if self.evaluations > int(os.environ.get(HANG_VARIABLE, "1000000")):
            time.sleep(3600)
        index = {m.name: i for i, m in enumerate(self.multipliers)}
        x = np.array([[index[assignment[name]] for name in self.approximated]])
        digest = hashlib.sha256(json.dumps([assignment, compensation], sort_keys=True).encode()).digest()
        jitter = (digest[0] / 255.0 - 0.5) * 0.2
        drop = float(1.2 * self.surrogate.predict_drop(x)[0]) + (jitter if x.any() else 0.0)
        return {"top1": 95.0 - drop, "top5": 99.0, "images": 540, "seconds": 0.0}


def surrogate_factory(target: FakeTarget, multipliers: list, compensation: str, folder: Path, progress: bool) -> FakeSurrogate:
    """The fake surrogate (a fresh one per run, as a loaded cache would be)."""
    return FakeSurrogate(LAYERS, multipliers)


def install(setattr_: Callable[[Any, str, Any], None] = setattr, plots: bool = True) -> None:
    """Make every study in this process use the stand-ins (``setattr_``: e.g. pytest's monkeypatch.setattr).

    ``plots=False`` also replaces the front's plots by empty files (matplotlib takes seconds to load).
    """
    if not plots:
        import types

        blank = types.ModuleType("dse.study.plots")
        for name in ("front_plot", "assignment_heatmap", "predicted_vs_measured"):
            setattr(blank, name, lambda *args, **kwargs: b"")
        sys.modules["dse.study.plots"] = blank
    import dse.study.candidates
    import dse.study.runner
    import dse.study.target

    built: dict[str, FakeTarget] = {}

    def build_target(config: Any, multipliers: list | None = None) -> FakeTarget:
        return built.setdefault(config.digest(), FakeTarget(config, multipliers))

    setattr_(dse.study.target, "build_target", build_target)
    setattr_(dse.study.candidates, "select_multipliers", lambda config: candidates())
    setattr_(dse.study.runner, "build_surrogate", surrogate_factory)


if __name__ == "__main__":
    install(plots=False)
    from dse.cli import main

    sys.exit(main(sys.argv[1:]))

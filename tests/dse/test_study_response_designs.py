"""[surrogate] response_designs: how many real designs measure each layer's response, passed to the study's surrogate
and part of its cache key."""

from types import SimpleNamespace

import numpy as np
import pytest

from dse.study.config import load_study
from dse.study.schema import SurrogateSection
from objectives.distortion.layer_response import RESPONSE_DESIGNS
from objectives.distortion.network_score import ScoreTable
from objectives.distortion.surrogate import NetworkSurrogate, design_set_key

from .test_study_run import DIGITS


def test_the_study_default_is_the_models():
    assert SurrogateSection().response_designs == RESPONSE_DESIGNS


@pytest.mark.parametrize("count", [0, 3, RESPONSE_DESIGNS])
def test_the_study_builds_with_its_count_and_caches_each_count_apart(tmp_path, monkeypatch, count):
    from dse.study import searched

    config = load_study(DIGITS, ['compensation.mode="bias"', f"surrogate.response_designs={count}"])
    designs = [SimpleNamespace(name=f"d{i}", lut_sha256=str(i)) for i in range(3)]
    target = SimpleNamespace(config=config, qnet=SimpleNamespace(weight_tuning=False), approximated=["a", "b"])
    calls = []

    def build(qnet, multipliers, compensation="none", seed=0, progress=True, response_designs=-1):
        calls.append(response_designs)
        return NetworkSurrogate(ScoreTable(("a", "b"), ("d0", "d1", "d2"), np.ones((2, 3))), compensation, {},
                                np.ones(2))

    monkeypatch.setattr(searched.NetworkSurrogate, "build", build)
    searched.build_study_surrogate(target, designs, "bias", tmp_path, progress=False)
    searched.build_study_surrogate(target, designs, "bias", tmp_path, progress=False)  # the second from the cache
    assert calls == [count]
    (folder,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert folder.name == design_set_key(designs, "bias", "", count)
    assert (folder.name == design_set_key(designs, "bias", "")) == (count == RESPONSE_DESIGNS)

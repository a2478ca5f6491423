"""The MSE calibrator tries the same range fractions, and so picks the same scales, on every CPU.

``torch.linspace`` rounds differently in vector code (one fused multiply-add per value) and in scalar code
(a product and a sum, each rounded): for (0.2, 1.0, 41) 7 of the 41 fractions differ by one float32 step, and
on ResNet-20 five of the twenty activation scales with them, and then every figure of a study. The grid is
computed in exact arithmetic instead (:func:`objectives.calibration.fractions`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction

import numpy as np
import torch

from objectives.calibration import FRACTIONS, fractions

SCALES = """
import json, sys
from objectives.data import load_data
from objectives.networks import get_network
from objectives.quantize import quantize
network = get_network("resnet20-cifar10", sys.argv[1])
data = load_data(network, sys.argv[2], calibration_size=256)
qnet = quantize(network.model, data.calibration, network.input_shape, "int8", batch_size=250)
print(json.dumps({name: qnet.layer(name).quant.input_scale.hex() for name in qnet.layers}))
"""


def test_the_fractions_are_one_rounding_of_the_exact_value():
    step = np.float32(0.8 / 40)
    for i, value in enumerate(FRACTIONS):
        exact = Fraction(float(np.float32(0.2))) + Fraction(float(step)) * i if i < 20 else \
            Fraction(float(np.float32(1.0))) - Fraction(float(step)) * (40 - i)
        assert value == float(np.float32(float(exact)))  # the float64 is exact: one rounding, as an fma
        assert Fraction(float(exact)) == exact
    assert FRACTIONS[0] == float(np.float32(0.2)) and FRACTIONS[-1] == 1.0 and len(set(FRACTIONS)) == 41
    assert fractions(0.0, 1.0, 5) == (0.0, 0.25, 0.5, 0.75, 1.0)


def test_the_fractions_are_torch_linspace_where_torch_uses_vector_code():
    if torch.backends.cpu.get_cpu_capability() not in ("AVX2", "AVX512"):
        return  # scalar kernels here: torch.linspace itself is the odd one out
    assert FRACTIONS == tuple(torch.linspace(0.2, 1.0, 41).tolist())


def test_a_cpu_without_vector_kernels_calibrates_resnet20_to_the_same_scales(shared_data):
    argv = [sys.executable, "-c", SCALES, str(shared_data / "resnet-cifar10" / "resnet20-12fca82f.th"),
            str(shared_data / "cifar10-test-jpg")]
    env = {**os.environ, "DSE_DATA_WORKERS": "0"}
    scales = []
    for capability in ("", "default"):
        run_env = {**env, "ATEN_CPU_CAPABILITY": capability} if capability else env
        done = subprocess.run(argv, capture_output=True, text=True, env=run_env, check=True)
        scales.append(json.loads(done.stdout.strip().splitlines()[-1]))
    assert scales[0] == scales[1]

#!/usr/bin/env bash
# The GPU checks of one session, as one script: CPU = CUDA logits, emulation speed, the ResNet-20 study on CUDA.
#
#   OUT=gpu-checks bash benchmarks/gpu_checks.sh
#
# Needs a CUDA GPU, the project's dependencies (optuna among them) and the shared data ($DSE_SHARED_DATA or
# ../shared/data). Writes into $OUT (default gpu-checks/): steps.txt (when each step started), env.txt,
# tests.txt, bench_resnet20.txt, study.txt with the study's wall time, front_cuda.json (compare it with a CPU run's
# `dse front DIR --json`: inference is bit-exact, so the fronts must be identical), bench_resnet50.txt.
# Each step has a time limit (T_TESTS, T_R20, T_STUDY, T_R50 seconds) so the whole fits a short lease.
set -o pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-gpu-checks}
mkdir -p "$OUT"
start=$(date +%s)
stamp() { echo "== $1 at +$(( $(date +%s) - start )) s" | tee -a "$OUT/steps.txt"; }
PYTHON=${PYTHON:-python3}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$OUT/env.txt" 2>&1
$PYTHON -c "import torch, numpy, optuna; print('torch', torch.__version__, 'numpy', numpy.__version__, 'optuna', optuna.__version__, torch.cuda.get_device_name())" >> "$OUT/env.txt" 2>&1
$PYTHON -c "import triton; print('triton', triton.__version__)" >> "$OUT/env.txt" 2>&1
echo "cpus $(nproc)" >> "$OUT/env.txt"

stamp tests
timeout "${T_TESTS:-170}" $PYTHON -m pytest -q -p no:cacheprovider tests/objectives/test_cuda.py \
    "tests/objectives/test_emulation.py::test_cuda_matches_cpu_reference" --durations=8 2>&1 | tail -60 > "$OUT/tests.txt"
stamp bench_resnet20
timeout "${T_R20:-100}" $PYTHON benchmarks/emulation.py --device cuda 2>&1 | tail -30 > "$OUT/bench_resnet20.txt"
stamp study
study_dir=$(mktemp -d)/resnet20
( time timeout "${T_STUDY:-200}" $PYTHON -m dse.cli -v run studies/resnet20_cifar10.toml --set run.device=cuda \
    --out "$study_dir" ) > "$OUT/study_full.txt" 2>&1
tr '\r' '\n' < "$OUT/study_full.txt" | grep -v "it/s\]$\|images/s\]$\|eval/s\]$" | tail -90 > "$OUT/study.txt"
rm -f "$OUT/study_full.txt"
timeout 60 $PYTHON -m dse.cli front "$study_dir" --json > "$OUT/front_cuda.json" 2>&1
stamp bench_resnet50
timeout "${T_R50:-110}" $PYTHON benchmarks/emulation.py --device cuda --network torchvision:resnet50 2>&1 | tail -30 > "$OUT/bench_resnet50.txt"
stamp done

#!/usr/bin/env bash
# The CUDA check, prepared as the one command a session lent a GPU machine runs (the `device` tool's `run`):
#
#     bash bench/device_wheels.sh                                   # here, once: the wheels the GPU image lacks -> .whl/
#     run(command="bash bench/device_check.sh", carry=[".whl"], timeout_s=540)   # ~8.5 min at most: tests 300 s, runs 2 x 100 s
#
# 1. the whole test suite with device auto, so every training, evaluation and predictor in it runs on the GPU in
#    bf16, plus the tests marked `cuda` that skip elsewhere (kill-and-resume on the GPU, a pipeline trained and
#    served there, a recommender beating popularity there); ../shared/data does not travel, so its tests skip;
# 2. the two default runs (`guimo run`, `guimo run lm`) timed on the GPU, for docs/benchmarks/ beside their
#    CPU times.
# Everything lands in $OUT (the tool brings it back): gpu.txt, pytest.log, junit.xml, runs.txt.
# On a machine without a GPU it runs too (the cuda tests skip), which is how it was checked before any lease:
# `OUT=/tmp/dc bash bench/device_check.sh tests/train`.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/device-check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
if ls .whl/*.whl >/dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH="$PYTHONPATH:/tmp/site" || echo "wheel install failed: the serve and optimize tests will skip or fail" >&2
fi

{
  date -u +"%Y-%m-%d %H:%M UTC"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
  $PY -c "import torch, platform; print('python', platform.python_version(), '| torch', torch.__version__, '| cuda', torch.version.cuda,
'| available', torch.cuda.is_available(), '|', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu only')"
  nproc
} 2>&1 | tee "$OUT/gpu.txt"

# 1. the suite (the CI machine's 5 minutes on 2 cores; the cuda tests add well under a minute)
TESTS=("$@")
[ ${#TESTS[@]} -eq 0 ] && TESTS=(tests)
timeout 300 $PY -m pytest -q -p no:cacheprovider -rfEs --junitxml="$OUT/junit.xml" "${TESTS[@]}" 2>&1 \
  | tee "$OUT/pytest.log" | tail -40
echo "pytest exit: ${PIPESTATUS[0]}" | tee -a "$OUT/pytest.log"

# 2. the default runs, timed (stage seconds from each manifest)
{
  for scenario in recommend lm; do
    rm -rf "/tmp/dc-$scenario"
    start=$(date +%s.%N)
    timeout 100 $PY -m guimo run "$scenario" --quiet --out "/tmp/dc-$scenario" >/dev/null 2>"$OUT/run-$scenario.err" || echo "$scenario: failed, see run-$scenario.err"
    end=$(date +%s.%N)
    $PY - "$scenario" "/tmp/dc-$scenario" "$start" "$end" <<'PYEOF'
import json, sys
from pathlib import Path
name, run, t0, t1 = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
if (run / "manifest.json").exists():
    m = json.loads((run / "manifest.json").read_text())
    stages = {k: round(v.get("seconds", 0), 1) for k, v in m.get("stages", {}).items()}
    train = m.get("stages", {}).get("train", {})
    metrics = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").exists() else {}
    headline = metrics.get("headline")
    print(f"{name}: wall {t1 - t0:.1f} s, status {m.get('status')}, device {train.get('device')}, precision {train.get('precision')}, "
          f"steps {train.get('steps')}, stages {stages}, {headline} {metrics.get('model', {}).get(headline)}")
PYEOF
  done
} 2>&1 | tee "$OUT/runs.txt"

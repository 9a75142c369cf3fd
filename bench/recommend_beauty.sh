#!/usr/bin/env bash
# SASRec+ on Amazon Beauty, one run per seed: bench/recommend_beauty.sh [SEED ...] (default: 0 1 2).
# Runs one after another into runs/beauty-seed<S>; extra guimo args go after "--".
#
# The MALLOC_* variables keep glibc from returning freed memory to the OS after every step:
# the large temporaries of the softmax over tens of thousands of items are then reused instead
# of re-faulted, which halved the step time here (docs/FACTS.md). They only affect this process.
set -euo pipefail
cd "$(dirname "$0")/.."
export MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=17179869184 MALLOC_TOP_PAD_=1073741824
seeds=()
while [[ $# -gt 0 && "$1" != "--" ]]; do seeds+=("$1"); shift; done
[[ "${1:-}" == "--" ]] && shift
[[ ${#seeds[@]} -eq 0 ]] && seeds=(0 1 2)
for s in "${seeds[@]}"; do
  start=$(date +%s)
  .venv/bin/guimo run recommend --config bench/recommend_beauty.toml --set seed="$s" --out "runs/beauty-seed$s" --quiet "$@"
  echo "seed $s: $(( $(date +%s) - start )) s wall"
done

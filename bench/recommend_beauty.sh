#!/usr/bin/env bash
# SASRec+ on Amazon Beauty, one run per seed: bench/recommend_beauty.sh [SEED ...] (default: 0 1 2).
# Runs one after another into runs/beauty-seed<S>; extra guimo args go after "--".
#
# The MALLOC_* variables keep glibc from returning freed memory to the OS after every step:
# the large temporaries of the softmax over tens of thousands of items are then reused instead
# of re-faulted, which halved the step time here (DEVELOPERS.md). They only affect this process.
set -euo pipefail
cd "$(dirname "$0")/.."
export MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=17179869184 MALLOC_TOP_PAD_=1073741824
# One intra-op thread by default: on this shared 2-core machine, with other jobs running, two
# OpenMP threads spent most of each step waiting for each other at barriers (measured 6.6 s vs
# 0.51 s per Beauty step). On an idle machine try OMP_NUM_THREADS=2.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
seeds=()
while [[ $# -gt 0 && "$1" != "--" ]]; do seeds+=("$1"); shift; done
[[ "${1:-}" == "--" ]] && shift
[[ ${#seeds[@]} -eq 0 ]] && seeds=(0 1 2)
for s in "${seeds[@]}"; do
  start=$(date +%s)
  .venv/bin/guimo run recommend --config bench/recommend_beauty.toml --set seed="$s" --out "runs/beauty-seed$s" --quiet "$@"
  echo "seed $s: $(( $(date +%s) - start )) s wall"
done

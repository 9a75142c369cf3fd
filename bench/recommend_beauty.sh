#!/usr/bin/env bash
# SASRec+ on Amazon Beauty, one run per seed: bench/recommend_beauty.sh [SEED ...] (default: 0 1 2).
# Each seed runs into runs/beauty-seed<S> (log runs/beauty-seed<S>.log); extra guimo args go after "--".
# JOBS=2 runs two seeds at a time, each on one intra-op thread. Per seed it writes
# runs/beauty-seed<S>/bench_wall.json: wall seconds and the load average at start and end.
#
# The MALLOC_* variables keep glibc from returning freed memory to the OS after every step:
# the large temporaries of the sampled softmax are then reused instead of re-faulted, which
# halved the step time here (docs/FACTS.md). They only affect this process.
set -euo pipefail
cd "$(dirname "$0")/.."
export MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=17179869184 MALLOC_TOP_PAD_=1073741824
# One intra-op thread by default: on this shared 2-core machine, with other jobs running, two
# OpenMP threads spent most of each step waiting for each other at barriers (measured 6.6 s vs
# 0.51 s per Beauty step). On an idle machine try OMP_NUM_THREADS=2 with JOBS=1.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
jobs_at_once="${JOBS:-1}"
seeds=()
while [[ $# -gt 0 && "$1" != "--" ]]; do seeds+=("$1"); shift; done
[[ "${1:-}" == "--" ]] && shift
[[ ${#seeds[@]} -eq 0 ]] && seeds=(0 1 2)

one_seed() {
  local s=$1; shift
  local out="runs/beauty-seed$s" load0 start
  load0=$(cut -d' ' -f1-3 /proc/loadavg); start=$(date +%s)
  .venv/bin/guimo run recommend --config bench/recommend_beauty.toml --set seed="$s" --out "$out" --quiet "$@" > "$out.log" 2>&1
  local wall=$(( $(date +%s) - start ))
  printf '{"seed": %s, "wall_s": %s, "load_start": "%s", "load_end": "%s", "threads": %s, "jobs": %s}\n' \
    "$s" "$wall" "$load0" "$(cut -d' ' -f1-3 /proc/loadavg)" "$OMP_NUM_THREADS" "$jobs_at_once" > "$out/bench_wall.json"
  echo "seed $s: $wall s wall (load $load0 -> $(cut -d' ' -f1-3 /proc/loadavg))"
}

running=0
for s in "${seeds[@]}"; do
  one_seed "$s" "$@" &
  running=$((running + 1))
  if (( running >= jobs_at_once )); then wait -n; running=$((running - 1)); fi
done
wait

#!/usr/bin/env bash
# The poisoning runs that need a GPU, as one script for a lent device machine (torch, no Ray or
# MLflow): the in-process runner, each grid under a time limit; every finished cell is already in
# its JSON-lines file when the limit stops a grid, so partial results come back.
#   here:   mkdir -p data && cp -r ../shared/data/ml-100k data/
#   device: run(command="bash benchmarks/reproduction/poisoning_device.sh", carry=["data"], timeout_s=600)
#   then:   python benchmarks/grid_in_process.py --table <files_at>/dlattack.jsonl --metric target_hr_all_at_10 ...
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-benchmarks/results}"
mkdir -p "$out"
budget="${POISON_DEVICE_SECONDS:-540}"
run() {  # run GRID SECONDS NAME [--where AXIS=TEXT ...]
  local grid=$1 seconds=$2 name=$3; shift 3
  timeout "$seconds" python benchmarks/grid_in_process.py "$grid" --data-dir data --device cuda \
    --out "$out/$name.jsonl" "$@" > "$out/$name.log" 2>&1
  echo "$name: exit $? ($(wc -l < "$out/$name.jsonl") cells)"
}
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader
# DL-Attack's ML-100k comparison at the paper's sizes, smallest first (5, 9, 28, 47 fake users).
run grids/poisoning/dlattack-ml100k.yaml $((budget * 2 / 3)) dlattack
# The general table's GPU-only cells on ML-100k: LightGCN against every attack, one seed.
run grids/poisoning/general-ml100k.yaml $((budget / 3)) general-lightgcn --where target=lightgcn --where seed=0

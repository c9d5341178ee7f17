#!/usr/bin/env bash
# Wall time of `train-supernet` on the default cnn space and data: one process with 1 and
# with 2 torch threads, against torchrun with 2 processes of 1 thread (gloo), each in a
# fresh folder under a temporary directory. Prints one line per run.
#
#   bash benchmarks/supernet_ranks.sh
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

run() {  # NAME THREADS COMMAND...
  local name=$1 threads=$2 start end
  shift 2
  mkdir -p "$work/$name"
  start=$(date +%s.%N)
  (cd "$work/$name" && OMP_NUM_THREADS=$threads "$@" +space=cnn train=supernet >out.txt 2>&1)
  end=$(date +%s.%N)
  echo "$name: $(echo "$end - $start" | bc) s wall; $(grep -m1 -o 'supernet epoch 6 of 6: .*' "$work/$name/out.txt")"
}

echo "commit $(git -C "$repo" rev-parse --short HEAD),$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), load $(cut -d' ' -f1-3 /proc/loadavg)"
run one-1thread 1 python -m nas train-supernet
run one-2threads 2 python -m nas train-supernet
run torchrun-2x1 1 python -m torch.distributed.run --nproc_per_node=2 -m nas train-supernet
echo "load after $(cut -d' ' -f1-3 /proc/loadavg)"

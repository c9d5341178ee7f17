#!/usr/bin/env bash
# Reproduce the figures the README and the documentation show, each in a fresh folder,
# with the current defaults: the quick-start search (front table, wall time and peak
# memory, and the two PNGs in docs/), the retrain demo, the per-space table and the
# weight-sharing example. Writes what each command printed to docs/figures.txt, headed by
# the date, the commit (marked when the code differs from it) and the machine, and copies
# the PNGs into docs/. Runs the code of this checkout, whatever `nas` is installed from.
# Takes about 15 minutes on 2 CPU cores. The fronts are the same on the same machine;
# another CPU can round differently and give other fronts.
#
#   bash docs/regenerate.sh
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
out="$repo/docs/figures.txt"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
commit="$(git -C "$repo" rev-parse --short HEAD)"
if ! git -C "$repo" diff --quiet HEAD -- nas search_spaces conf; then
  commit="$commit with uncommitted changes to nas/, search_spaces/ or conf/"
fi

nas() { python -m nas "$@"; }
section() { printf '\n## %s\n$ %s\n' "$1" "$2" >>"$out"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# run TITLE FOLDER COMMAND...: run COMMAND in FOLDER, timing it, its output into $out, with
# the machine's load averages (1, 5, 15 minutes) before and after it: other jobs slow it
run() {
  local title="$1" folder="$2" before
  shift 2
  mkdir -p "$folder"
  section "$title" "$*"
  before="$(loadavg)"
  (cd "$folder" && /usr/bin/time -f "wall %e s, peak memory %M KB" "$@") >>"$out" 2>"$folder/stderr" \
    || { cat "$folder/stderr" >&2; exit 1; }
  echo "$(grep -E "^wall " "$folder/stderr"), load average $before before, $(loadavg) after" >>"$out"
}

{
  echo "# README and documentation figures"
  echo "date: $(date -u +%Y-%m-%d), commit: $commit"
  echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs) ($(nproc) cores), $(python -c 'import torch; print("torch", torch.__version__)')"
} >"$out"

# Quick start: the default search, then its report (the PNGs the README shows).
run "quick start" "$work/quick" nas search +space=cnn
run "quick start report" "$work/quick" nas report study.name=cnn
report_dir="$(dirname "$(ls -t "$work"/quick/outputs/runs/*/front_accuracy_params.png | head -1)")"
cp "$report_dir/front_accuracy_params.png" "$report_dir/layer_sparsity.png" "$repo/docs/"

# Which points were lucky: a 6-trial search and its retrains with 3 other seeds.
demo=(study.name=demo study.n_trials=6 train.epochs=2 train.finetune_epochs=1 device=cpu)
run "retrain demo: search" "$work/retrain" nas search +space=cnn "${demo[@]}"
run "retrain demo: report" "$work/retrain" nas report "${demo[@]:0:1}" train.epochs=2 \
  train.finetune_epochs=1 device=cpu retrain_seeds=3

# The other spaces: three trials each.
for space in mlp resnet mobilenet; do
  run "space $space" "$work/$space" nas search +space="$space" study.n_trials=3
done

# Weight sharing: the quick-start search with train=supernet.
run "weight sharing" "$work/supernet" nas search +space=cnn train=supernet

echo "written: $out"

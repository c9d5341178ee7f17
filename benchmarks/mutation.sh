#!/usr/bin/env bash
# Mutation testing of the weight code with mutmut (its settings: [tool.mutmut] in
# pyproject.toml): the mutants of the weight code (below, or the mutant names or patterns
# given) are run against the unit tests that reach their function (pytest -m "not slow"),
# then summarised by file. Slow (about an hour on 2 cores per 1,000 mutants; the trial's
# take longer, as many tests reach them); kept out of CI. `rm -rf mutants` starts afresh.
#
#   bash benchmarks/mutation.sh                 # mutate, run the weight code's, summarise
#   bash benchmarks/mutation.sh 'nas.prune.*'   # only these mutants
#   JOBS=2 bash benchmarks/mutation.sh          # two mutants at a time
#   mutmut show nas.prune.methods.x_nm_mask__mutmut_3     # one mutant's diff
#
# The weight code: nas/supernet and nas/prune whole; in nas/trial what loads, slices,
# trains, prunes, re-estimates and distils weights and counts their cost; and the
# measures of benchmarks/front_quality.py (not its plots, command line or runner).
#
# Tests that start `python -m nas` in a subprocess must run the mutated code too: mutmut
# runs the tests inside mutants/ and sets MUTANT_UNDER_TEST for the process and its
# children, and PYTHONPATH below puts mutants/ ahead of the editable install for them
# (mutation_site/sitecustomize.py: while mutmut records coverage, such a child runs
# the code unmutated).
set -euo pipefail
cd "$(dirname "$0")/.."

python -c "import mutmut" 2>/dev/null || pip install -q "mutmut==3.8.1"
mkdir -p mutants  # before Python starts: a path missing then stays unsearched
export PYTHONPATH="$PWD/mutants:$PWD/benchmarks/mutation_site${PYTHONPATH:+:$PYTHONPATH}"
# one OpenMP thread: a process forked after torch has run a parallel op can hang in it
export OMP_NUM_THREADS=1
PIPELINE='nas.trial.pipeline.xǁTrialPipelineǁ'
BENCH='benchmarks.front_quality.x'
WEIGHT_CODE=(
  'nas.supernet.*' 'nas.prune.*'
  "${PIPELINE}_load_dense*" "${PIPELINE}_train_dense*" "${PIPELINE}_prune*"
  "${PIPELINE}_finetune*" "${PIPELINE}_dense_state*" "${PIPELINE}_targets*"
  "${PIPELINE}_pruning_steps*" "${PIPELINE}_recalibrat*" "${PIPELINE}_train_*"
  "${PIPELINE}planned_epochs*"
  'nas.trial.train.x_train_epoch*' 'nas.trial.train.x_shuffled_batches*'
  'nas.trial.train.x_finite_mean*' 'nas.trial.train.x_accuracy*'
  'nas.trial.train.x_make_optimizer*' 'nas.trial.distill.*' 'nas.trial.dense_cache.*'
  "${BENCH}_measure*" "${BENCH}__train_flops*" "${BENCH}_at_equal_flops*" "${BENCH}_best_known*"
  "${BENCH}_with_regret*" "${BENCH}_pooled_regret*" "${BENCH}_pairs_of*"
  "${BENCH}_pairs_at_equal_flops*" "${BENCH}_mean_regret*" "${BENCH}_paired*" "${BENCH}_spread*"
  "${BENCH}_at_size_tables*" 'benchmarks.front_quality.xǁMeasuredǁbest*' "${BENCH}_reference_size*"
)
if [ $# -eq 0 ]; then set -- "${WEIGHT_CODE[@]}"; fi
mutmut run --max-children "${JOBS:-1}" "$@" || true
mutmut export-cicd-stats
python benchmarks/mutation_score.py

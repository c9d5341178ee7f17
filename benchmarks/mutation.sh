#!/usr/bin/env bash
# Mutation testing of the weight code with mutmut (its settings: [tool.mutmut] in
# pyproject.toml): every mutant of the files `only_mutate` names is run against the unit
# tests that reach its function (pytest -m "not slow"), then summarised by file. Slow (about
# an hour on 2 cores per 1,000 mutants); kept out of CI. Re-running reuses the verdicts of
# unchanged mutants; `rm -rf mutants` starts afresh.
#
#   bash benchmarks/mutation.sh                 # mutate, run, summarise
#   JOBS=2 bash benchmarks/mutation.sh          # two mutants at a time
#   mutmut show nas.prune.methods.x_nm_mask__mutmut_3     # one mutant's diff
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
mutmut run --max-children "${JOBS:-1}" || true
mutmut export-cicd-stats
python benchmarks/mutation_score.py

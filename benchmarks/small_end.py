"""Where the accuracy goes at the small end of a front: the best trials within a share of
the reference's nonzero parameters, read from the front-quality benchmark's studies.

For each seed, the most accurate finished trial with at most `--share` of the
space's largest dense network's nonzero parameters: its architecture, its dense network's
parameters and validation accuracy, the share pruned, and its validation accuracy. Then,
over the seeds, the mean of each, which splits the gap to a target into what the dense
network lacks (its training and size) and what pruning takes from it.

    python benchmarks/small_end.py --out outputs/bench/cnn3 --tag d120 --method search_no_shift \
        --seeds 30 31 32 33 34 35 36 37 --share 0.02
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.front_quality import reference_size, storage_file, study_name  # noqa: E402
from nas.record.measures import metric, objective_names  # noqa: E402
from nas.report.compression import AtSize, accuracy_at_sizes  # noqa: E402


def best_within(study: optuna.Study, share: float) -> AtSize:
    """The most accurate finished trial within `share` of the reference's nonzero params
    (the trial the benchmark's accuracy-at-a-size table reports)."""
    params, flops = reference_size(study)
    trials = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    sizes = {"nonzero_params": params, "flops": flops}
    rows = accuracy_at_sizes(trials, sizes, objective_names(study), [share])
    return next(r for r in rows if r.size == "nonzero_params")


def row(best: AtSize) -> dict:
    """What the table shows of the trial."""
    attrs = best.trial.user_attrs
    params = metric(best.trial, "nonzero_params", best.names)
    return {
        "trial": best.trial.number,
        "arch": attrs.get("arch", "?"),
        "dense_params": attrs["dense_params"],
        "pruned": 1 - params / attrs["dense_params"],
        "params": params,
        "dense_accuracy": attrs["dense_accuracy"],
        "accuracy": best.accuracy,
        "test_accuracy": best.test_accuracy,
    }


HEAD = [
    "seed",
    "trial",
    "architecture",
    "dense params",
    "pruned",
    "params",
    "dense acc.",
    "acc.",
    "test",
]


def cells(r: dict) -> list[str]:
    """A row's measures as the table prints them (from `dense params` on)."""
    return [
        f"{r['dense_params']:,.0f}",
        f"{r['pruned']:.0%}",
        f"{r['params']:.0f}",
        *(f"{r[key]:.3f}" for key in ("dense_accuracy", "accuracy", "test_accuracy")),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the benchmark's --out folder")
    parser.add_argument("--tag", required=True, help="the benchmark's --tag")
    parser.add_argument("--method", required=True, help="a front_quality method, e.g. search")
    parser.add_argument("--seeds", type=int, nargs="+", required=True)
    parser.add_argument("--share", type=float, default=0.02, help="of the reference's params")
    args = parser.parse_args(argv)

    print(
        f"{args.method} ({args.tag}), best trial within {args.share:.1%} of the reference's params"
    )
    print("| " + " | ".join(HEAD) + " |")
    print("|" + " --- |" * len(HEAD))
    rows = []
    for seed in args.seeds:
        storage = f"sqlite:///{storage_file(args.out, seed)}"
        study = optuna.load_study(
            study_name=study_name(args.method, seed, args.tag), storage=storage
        )
        best = best_within(study, args.share)
        if best.trial is None:
            print(f"| {seed} | - | none that small |" + " |" * (len(HEAD) - 3))
            continue
        rows.append(row(best))
        print(
            "| "
            + " | ".join([str(seed), str(rows[-1]["trial"]), rows[-1]["arch"], *cells(rows[-1])])
            + " |"
        )
    if rows:
        mean = {
            key: statistics.fmean(r[key] for r in rows)
            for key in rows[0]
            if key not in ("trial", "arch")
        }
        print("| " + " | ".join(["mean", "", "", *cells(mean)]) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

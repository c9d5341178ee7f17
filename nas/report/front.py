"""The Pareto front of a study as rows, a terminal table, CSV and JSON."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pandas as pd

from nas.record.attrs import ARCH, DENSE_PARAMS, TEST_ACCURACY
from nas.record.measures import metric, objective_names
from nas.report.compression import accuracy_at_sizes, at_size_table
from nas.report.study_views import complete_trials, dense_reference, feasible
from nas.trial.objectives import DEFAULT

FRONT_COLUMNS = (
    "trial",
    "accuracy",
    "test_accuracy",
    "nonzero_params",
    "flops",
    "sparsity",
    "compression",
    "agreement",
    "worst_class_accuracy",
    "ece",
    "arch",
)


# From the trial's user attrs (NaN for trials recorded before they existed).
PRESERVATION_COLUMNS = ("agreement", "worst_class_accuracy", "ece")


def front_rows(study: optuna.Study) -> list[dict]:
    """One row per non-dominated finished trial, most accurate first.

    `sparsity` is the share of the candidate's parameters that are zero; `compression`
    is its dense parameter count over its nonzero count (e.g. 4.0: a quarter remains).
    `agreement` (with the dense parent's predictions), `worst_class_accuracy` and `ece`
    are validation measures of what pruning preserved.
    """
    rows = []
    names = objective_names(study)
    for trial in study.best_trials:
        accuracy, nonzero, flops = (metric(trial, name, names) for name in DEFAULT)
        dense = DENSE_PARAMS.of(trial)
        rows.append(
            {
                "trial": trial.number,
                "accuracy": accuracy,
                "test_accuracy": TEST_ACCURACY.of(trial),
                "nonzero_params": int(nonzero),
                "flops": int(flops),
                "sparsity": 1 - nonzero / dense,
                "compression": dense / max(nonzero, 1),
                **{name: metric(trial, name, names, math.nan) for name in PRESERVATION_COLUMNS},
                "arch": ARCH.of(trial),
            }
        )
    return sorted(rows, key=lambda row: (-row["accuracy"], row["nonzero_params"]))


def front_table(rows: list[dict]) -> str:
    """The front as an aligned text table."""
    if not rows:
        return "(no feasible trial)"
    frame = pd.DataFrame(rows, columns=FRONT_COLUMNS)
    return frame.to_string(
        index=False,
        formatters={
            "accuracy": "{:.4f}".format,
            "test_accuracy": "{:.4f}".format,
            "nonzero_params": "{:,}".format,
            "flops": "{:,}".format,
            "sparsity": "{:.1%}".format,
            "compression": "{:.1f}x".format,
            "agreement": "{:.3f}".format,
            "worst_class_accuracy": "{:.3f}".format,
            "ece": "{:.3f}".format,
        },
    )


def write_front(rows: list[dict], folder: Path) -> tuple[Path, Path]:
    """Write the front as `front.csv` and `front.json` in `folder`; returns both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows, columns=FRONT_COLUMNS)
    csv_path, json_path = folder / "front.csv", folder / "front.json"
    frame.to_csv(csv_path, index=False)
    frame.to_json(json_path, orient="records", indent=2)
    return csv_path, json_path


def infeasible_line(study: optuna.Study) -> str | None:
    """Which finished trials of `study` are infeasible, by the constraint they break;
    None when none is."""
    trials = [trial for trial in complete_trials(study) if not feasible(trial)]
    if not trials:
        return None
    broken: dict[str, list[str]] = {}
    for trial in trials:
        for name, value in trial.constraints.items():
            if value > 0:
                broken.setdefault(name, []).append(str(trial.number))
    by_constraint = ", ".join(
        f"{name} (trial{'s' if len(numbers) > 1 else ''} {', '.join(numbers)})"
        for name, numbers in broken.items()
    )
    are = "s are" if len(trials) > 1 else " is"
    return f"{len(trials)} finished trial{are} infeasible, left off the front: {by_constraint}"


def report_front(study: optuna.Study, run_dir: Path) -> None:
    """Print the study's Pareto front, and which finished trials are infeasible, and write
    the front as CSV and JSON into `run_dir`; one line, and no files, without a finished
    trial."""
    finished = len(complete_trials(study))
    if not finished:
        print(f"\nstudy {study.study_name!r} has no finished trial yet: no front to show")
        return
    rows = front_rows(study)
    print(
        f"\nPareto front of study {study.study_name!r} ({len(rows)} of {finished} "
        f"finished trials):\n{front_table(rows)}"
    )
    infeasible = infeasible_line(study)
    if infeasible:
        print(infeasible)
    csv_path, json_path = write_front(rows, run_dir)
    print(f"front written to {csv_path} and {json_path}")


def report_accuracy_at_sizes(study: optuna.Study) -> None:
    """Print the front read as a compression curve: the best validation accuracy within
    0.5 % to 10 % of the largest dense network's nonzero parameters and FLOPs, with the
    test accuracy of the same trial."""
    trials = [trial for trial in complete_trials(study) if feasible(trial)]
    if not trials:
        return
    params, flops = dense_reference(study)
    rows = accuracy_at_sizes(
        trials, {"nonzero_params": params, "flops": flops}, objective_names(study)
    )
    print(
        "\nAccuracy at a size: the best validation accuracy within each share of the largest "
        f"dense network trained ({params:,} nonzero parameters, {flops:,} FLOPs), and the "
        f"test accuracy of that trial:\n{at_size_table(rows)}"
    )

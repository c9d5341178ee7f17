"""The chart of a front run again under other conditions (`nas.studies.retrain`: other
seeds, other folds): each front trial's recorded accuracy against its nonzero parameters,
with each run and the runs' mean ± std beside it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from nas.report.charts.spec import Axis, Chart, Points
from nas.report.study_charts import FRONT_COLOR, spans_decades

# The title of each accuracy a run measures.
MEASURE_TITLES = {"accuracy": "validation accuracy", "test_accuracy": "test accuracy"}
RUN_COLOR = "#1f1f1f"
SINGLE_RUN_COLOR = "#7f7f7f"


class Revalidation(Protocol):
    """What the chart says of the runs (see `nas.studies.retrain.Variation`)."""

    column: str  # what varies between a trial's runs, one run's value of it: seed, fold
    plural: str  # the runs, in words
    judged: str  # the accuracy charted (`MEASURE_TITLES`)
    recorded: str  # the recorded point, in the legend
    title: str


def revalidation_chart(
    summary: Sequence[dict], runs: Sequence[dict], variation: Revalidation, spread: str
) -> Chart:
    """The recorded `judged` accuracy of each trial of `summary` (one row per front trial,
    the spread of its runs' accuracy in `<spread>_mean` and `<spread>_std`) against its
    nonzero parameters, with each of `runs` (one row per trial and run) and the runs'
    mean ± std; each trial labelled with its number and verdict."""
    judged, column = variation.judged, variation.column
    size = {row["trial"]: row["nonzero_params"] for row in summary}
    one_run = Points(
        f"one {column}", [size[run["trial"]] for run in runs], [run[judged] for run in runs],
        color=SINGLE_RUN_COLOR, opacity=0.6, size=4.0,
        hover=[f"trial {run['trial']}, {column} {run[column]}: {run[judged]:.2%}" for run in runs],
    )  # fmt: skip
    means = [row[f"{spread}_mean"] for row in summary]
    mean = Points(
        f"{variation.plural}: mean ± std", list(size.values()), means,
        error=[row[f"{spread}_std"] for row in summary], marker="open circle",
        color=RUN_COLOR, size=8.0,
        hover=[f"trial {row['trial']}: mean {row[f'{spread}_mean']:.2%}" for row in summary],
    )  # fmt: skip
    notes = [f"#{row['trial']} {row['verdict']}".strip() for row in summary]
    recorded = Points(
        variation.recorded, list(size.values()), [row[judged] for row in summary],
        color=FRONT_COLOR, labels=notes,
        label_colors=[FRONT_COLOR if row["verdict"] else "black" for row in summary],
        hover=[
            f"{note}: recorded {row[judged]:.2%}, {row['nonzero_params']:,} nonzero"
            for note, row in zip(notes, summary, strict=True)
        ],
    )  # fmt: skip
    x = Axis("nonzero parameters", log=spans_decades(list(size.values())))
    y = Axis(MEASURE_TITLES[judged], percent=True)
    return Chart(variation.title, x, y, (one_run, mean, recorded))

"""Re-validation of a study's Pareto front: every front trial's candidate retrained from
scratch with other seeds, so that the points a lucky seed put on the front stand out.

`report retrain_seeds=N` rebuilds each feasible front trial's candidate from its
parameters (architecture and sparsity, or the overall sparsity of an allocation rule) and
the study's space and data configs, runs it through the same pipeline (dense training,
pruning, fine-tuning, evaluation) with each of the seeds `seed + 1, ..., seed + N`, and
compares the trial's recorded test accuracy with the retrains' mean and spread.

Retrain seed `s` trains exactly what a search run with `seed=s` would have trained for that
candidate: weights and batch order seeded by `arch_seed(s, arch)`. So with the study's own
seed the retrain reproduces the trial's recorded numbers (on the CPU, bit for bit).

The pipeline is built as `nas search` builds it (`Search.from_config`), from the
command's config with the study's recorded space, data split and objectives put in. The
study does not record its training, fine-tuning, pruning and schedule settings nor its
seed: they come from the command's config (give `report` the overrides the search ran
with), or from the study's user attrs `train_config`, `finetune_config`, `prune_config`,
`schedule_config` and `seed` where it has them. A mismatch in the epochs or in channel
pruning is refused before anything runs.

Each run's measures are stored in the study as the user attr `retrain.trial<N>` (seed ->
measures, with a key of the settings they were trained with), so a second report reuses
them and an interrupted one goes on where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import optuna
import pandas as pd
import plotly.graph_objects as go
from matplotlib.ticker import PercentFormatter
from omegaconf import DictConfig, OmegaConf
from optuna.trial import FixedTrial, FrozenTrial, TrialState
from tqdm import tqdm

from nas.errors import UsageError
from nas.report.front import front_rows
from nas.report.plots import DPI, FRONT_COLOR, STYLE, _readable_log_ticks, _spans_decades
from nas.search.recorded import recorded_config
from nas.search.study import Search
from nas.space import Candidate
from nas.trial.dense_cache import arch_seed
from nas.trial.objectives import objective_names
from nas.trial.pipeline import TrialPipeline, TrialResult
from nas.trial.train import TrainSettings

# The recorded test accuracy is `lucky` above, `unlucky` below, the retrains' mean by more
# than this many (sample) standard deviations, and by at least one test sample.
LUCKY_SIGMAS = 2.0
# Fewest retrains a verdict is given for: the spread of two seeds is too rough to judge by.
MIN_VERDICT_RETRAINS = 3
ATTR_PREFIX = "retrain.trial"
# Config groups that change what a run trains; taken from the study's `<group>_config`
# user attr where it records one.
SETTINGS_GROUPS = ("train", "finetune", "prune", "schedule")
RUN_COLUMNS = (
    "trial",
    "seed",
    "weight_seed",
    "accuracy",
    "test_accuracy",
    "nonzero_params",
    "flops",
    "seconds",
    "reused",
)
SUMMARY_COLUMNS = (
    "trial",
    "nonzero_params",
    "accuracy",
    "test_accuracy",
    "retrains",
    "test_mean",
    "test_std",
    "test_min",
    "test_max",
    "val_mean",
    "val_std",
    "verdict",
    "arch",
)
MEASURES = ("accuracy", "test_accuracy", "nonzero_params", "flops", "seconds")
RETRAIN_COLOR = "#1f1f1f"
SINGLE_RUN_COLOR = "#7f7f7f"


def retrain_count(value) -> int:
    """`retrain_seeds` checked: a whole number >= 0 (0: no retraining)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UsageError(f"retrain_seeds must be a whole number >= 0, got {value!r}")
    return value


def retrain_seeds(study_seed: int, count: int) -> list[int]:
    """The seeds a front is retrained with: the `count` seeds after the study's own."""
    return [study_seed + offset for offset in range(1, count + 1)]


def front_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The study's feasible Pareto-front trials, in the order of `front_rows`."""
    by_number = {trial.number: trial for trial in study.best_trials}
    return [by_number[row["trial"]] for row in front_rows(study)]


def lucky_verdict(recorded: float, retrained: Sequence[float], resolution: float) -> str:
    """`lucky` when `recorded` lies above the mean of `retrained` by more than
    `LUCKY_SIGMAS` sample standard deviations and more than `resolution` (one test sample),
    `unlucky` when below by as much, else an empty string; empty too with fewer than
    `MIN_VERDICT_RETRAINS` retrains, whose spread is too rough to judge by."""
    if len(retrained) < MIN_VERDICT_RETRAINS:
        return ""
    mean = statistics.fmean(retrained)
    band = max(LUCKY_SIGMAS * statistics.stdev(retrained), resolution)
    if recorded > mean + band:
        return "lucky"
    if recorded < mean - band:
        return "unlucky"
    return ""


def search_config(study: optuna.Study, cfg: DictConfig) -> DictConfig:
    """`cfg` as the search of `study` had it: with the study's name, its recorded space,
    data and objectives, and the settings groups and seed it records, if any."""
    attrs = study.user_attrs
    merged = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    recorded = {
        group: recorded_config(study, group)
        for group in ("space", "data", *SETTINGS_GROUPS)
        if f"{group}_config" in attrs
    }
    for key, value in recorded.items():
        OmegaConf.update(merged, key, value, merge=False, force_add=True)
    if "seed" in attrs:
        merged.seed = attrs["seed"]
    merged.study.name = study.study_name
    if "objectives" in merged.study:
        merged.study.objectives = list(objective_names(study))
    return merged


def _settings_key(cfg: DictConfig) -> str:
    """A short hash of the config groups that change what a retrain measures."""
    groups = {g: OmegaConf.to_container(cfg[g], resolve=True) for g in SETTINGS_GROUPS if g in cfg}
    return hashlib.sha1(json.dumps(groups, sort_keys=True).encode()).hexdigest()[:12]


def check_epochs(trials: Sequence[FrozenTrial], settings: TrainSettings) -> None:
    """Refuse `settings` unless each trial's `train_epochs` is what they would have
    trained: dense epochs unless its dense weights were cached, plus fine-tuning epochs
    unless early exit skipped them."""
    for trial in trials:
        attrs = trial.user_attrs
        if "train_epochs" not in attrs or "dense_cached" not in attrs:
            continue
        expected = (0 if attrs["dense_cached"] else settings.epochs) + (
            0 if attrs.get("finetune_skipped") else settings.finetune_epochs
        )
        if attrs["train_epochs"] != expected:
            raise UsageError(
                f"retrain_seeds: train.epochs={settings.epochs} and train.finetune_epochs="
                f"{settings.finetune_epochs} are not what the study trained with (trial "
                f"{trial.number} trained {attrs['train_epochs']} epochs): give report the "
                f"search's training overrides"
            )


@dataclass(frozen=True)
class Retrainer:
    """A study's trial pipeline rebuilt from the study and the command's config; `run`
    retrains one of its trials with another seed."""

    pipeline: TrialPipeline
    seed: int
    settings_key: str

    @classmethod
    def of_study(
        cls, study: optuna.Study, cfg: DictConfig, launch_dir: Path | None = None
    ) -> Retrainer:
        """The pipeline `study` was searched with (see `search_config`), every value
        checked (UsageError) before anything is trained or written."""
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not finished:
            raise UsageError(f"study {study.study_name!r} has no finished trial to retrain")
        attrs = study.user_attrs
        missing = [key for key in ("space_config", "data_config") if key not in attrs]
        if missing:
            raise UsageError(
                f"study {study.study_name!r} does not record {' and '.join(missing)}: only "
                f"studies made by `nas search` or `nas baseline` can be retrained"
            )
        front = front_trials(study)
        if not front:
            raise UsageError(f"study {study.study_name!r} has no feasible trial on its front")
        archs = {json.dumps(t.user_attrs.get("arch")) for t in front}
        merged = search_config(study, cfg)
        # a seed's front trials of one architecture train it once
        search = Search.from_config(merged, launch_dir or Path.cwd(), dense_cache=len(archs))
        pipeline = search.pipeline
        if not getattr(pipeline.pruning, "restructures", False) and any(
            trial.user_attrs.get("removed_channels") for trial in finished
        ):
            raise UsageError(
                f"study {study.study_name!r} removed channels (prune=channel): give report "
                f"the search's prune=channel"
            )
        check_epochs(finished, pipeline.settings)
        return cls(pipeline, search.seed, _settings_key(merged))

    def candidate(self, trial: FrozenTrial) -> Candidate:
        """`trial`'s candidate, sampled again from its parameters."""
        return self.pipeline.space.sample(FixedTrial(trial.params, number=trial.number))

    def run(self, trial: FrozenTrial, seed: int) -> tuple[int, TrialResult]:
        """Train `trial`'s candidate from scratch as a search seeded by `seed` would;
        returns the weight seed and the result. A trial whose fine-tuning early exit
        skipped is retrained without fine-tuning too."""
        candidate = self.candidate(trial)
        weight_seed = arch_seed(seed, candidate.arch)
        skip = (lambda *_: True) if trial.user_attrs.get("finetune_skipped") else None
        result, _ = self.pipeline.run(candidate, weight_seed, skip_finetune=skip)
        return weight_seed, result

    @property
    def resolution(self) -> float:
        """The test accuracy of one test sample."""
        return 1 / max(len(self.pipeline.splits.test_y), 1)


def _stored_runs(study: optuna.Study, trial: FrozenTrial) -> dict:
    return dict(study.user_attrs.get(f"{ATTR_PREFIX}{trial.number}", {}))


def retrain_front(study: optuna.Study, retrainer: Retrainer, count: int) -> list[dict]:
    """Retrain every front trial with each of the `count` seeds after the study's; returns
    one row per trial and seed (`RUN_COLUMNS`). Runs stored in the study with the same
    settings are reused; each new run is stored as soon as it ends."""
    front = front_trials(study)
    seeds = retrain_seeds(retrainer.seed, count)
    key = retrainer.settings_key

    def reusable(trial: FrozenTrial, seed: int) -> dict | None:
        entry = _stored_runs(study, trial).get(str(seed))
        return entry if entry and entry.get("settings") == key else None

    todo = [(t, s) for s in seeds for t in front if reusable(t, s) is None]  # seed by seed
    rows: dict[tuple[int, int], dict] = {}
    bar = tqdm(total=len(todo), unit="run", desc="retrain", dynamic_ncols=True, disable=not todo)
    try:
        for trial, seed in todo:
            bar.set_postfix(trial=trial.number, seed=seed)
            weight_seed, result = retrainer.run(trial, seed)
            entry = {name: getattr(result, name) for name in MEASURES}
            entry.update(weight_seed=weight_seed, settings=key)
            stored = _stored_runs(study, trial)  # read again: another report may have added
            stored[str(seed)] = entry
            study.set_user_attr(f"{ATTR_PREFIX}{trial.number}", stored)
            rows[trial.number, seed] = {**entry, "reused": False}
            bar.update(1)
    finally:
        bar.close()
    table = []
    for trial in front:
        for seed in seeds:
            row = rows.get((trial.number, seed)) or {**reusable(trial, seed), "reused": True}
            table.append({"trial": trial.number, "seed": seed, **row})
    return [{name: row[name] for name in RUN_COLUMNS} for row in table]


def summarise(study: optuna.Study, runs: Sequence[dict], resolution: float) -> list[dict]:
    """One row per front trial (`SUMMARY_COLUMNS`): its recorded measures, the mean,
    spread and range of its retrains' test accuracy, their mean validation accuracy, and
    the `lucky_verdict` of its recorded test accuracy."""
    summary = []
    for front in front_rows(study):
        mine = [run for run in runs if run["trial"] == front["trial"]]
        tests = [run["test_accuracy"] for run in mine]
        vals = [run["accuracy"] for run in mine]
        recorded = front["test_accuracy"]
        summary.append(
            {
                "trial": front["trial"],
                "nonzero_params": front["nonzero_params"],
                "accuracy": front["accuracy"],
                "test_accuracy": recorded,
                "retrains": len(mine),
                "test_mean": statistics.fmean(tests) if tests else math.nan,
                "test_std": statistics.stdev(tests) if len(tests) > 1 else math.nan,
                "test_min": min(tests, default=math.nan),
                "test_max": max(tests, default=math.nan),
                "val_mean": statistics.fmean(vals) if vals else math.nan,
                "val_std": statistics.stdev(vals) if len(vals) > 1 else math.nan,
                "verdict": lucky_verdict(recorded, tests, resolution),
                "arch": front["arch"],
            }
        )
    return summary


def retrain_table(summary: Sequence[dict]) -> str:
    """The summary as an aligned text table."""
    frame = pd.DataFrame(
        summary,
        columns=[
            "trial", "nonzero_params", "test_accuracy", "test_mean", "test_std", "test_min",
            "test_max", "val_mean", "verdict", "arch",
        ],
    )  # fmt: skip
    accuracy = "{:.4f}".format
    return frame.to_string(
        index=False,
        formatters={
            "nonzero_params": "{:,}".format,
            **{name: accuracy for name in ("test_accuracy", "test_mean", "test_min")},
            **{name: accuracy for name in ("test_max", "val_mean", "test_std")},
        },
    )


def write_retrain(runs: Sequence[dict], summary: Sequence[dict], folder: Path) -> list[Path]:
    """Write `retrain.csv` (one row per trial and seed) and `retrain_summary.csv`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "retrain.csv", folder / "retrain_summary.csv"]
    pd.DataFrame(runs, columns=RUN_COLUMNS).to_csv(paths[0], index=False)
    pd.DataFrame(summary, columns=SUMMARY_COLUMNS).to_csv(paths[1], index=False)
    return paths


def _title(seeds: Sequence[int]) -> str:
    return (
        f"Test accuracy of the Pareto front: recorded, and retrained with "
        f"{len(seeds)} other seed{'s' if len(seeds) != 1 else ''}"
    )


def retrain_png(summary: Sequence[dict], runs: Sequence[dict], path: Path, title: str) -> Path:
    """Recorded test accuracy against nonzero parameters, with each retrain and the
    retrains' mean ± std beside it, as a matplotlib PNG."""
    plt.switch_backend("Agg")
    x = {row["trial"]: row["nonzero_params"] for row in summary}
    with plt.style.context(STYLE):
        figure, ax = plt.subplots(figsize=(8, 5))
        ax.scatter(
            [x[run["trial"]] for run in runs], [run["test_accuracy"] for run in runs],
            s=12, color=SINGLE_RUN_COLOR, alpha=0.6, label="one retrain", zorder=2,
        )  # fmt: skip
        ax.errorbar(
            list(x.values()), [row["test_mean"] for row in summary],
            yerr=[0 if math.isnan(row["test_std"]) else row["test_std"] for row in summary],
            fmt="o", mfc="none", color=RETRAIN_COLOR, capsize=4, label="retrains: mean ± std",
            zorder=3,
        )  # fmt: skip
        ax.scatter(
            list(x.values()), [row["test_accuracy"] for row in summary],
            color=FRONT_COLOR, label="recorded (search seed)", zorder=4,
        )  # fmt: skip
        by_size = sorted(summary, key=lambda row: row["nonzero_params"])
        for index, row in enumerate(by_size):  # neighbours' labels above and below: no overlap
            note = f"#{row['trial']}" + (f" {row['verdict']}" if row["verdict"] else "")
            ax.annotate(
                note, (row["nonzero_params"], row["test_accuracy"]),
                xytext=(6, 5 if index % 2 else -11), textcoords="offset points", fontsize="small",
                color=FRONT_COLOR if row["verdict"] else "black",
            )  # fmt: skip
        if _spans_decades(list(x.values())):
            ax.set_xscale("log")
            _readable_log_ticks(ax.xaxis)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("nonzero parameters")
        ax.set_ylabel("test accuracy")
        ax.set_title(title)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))
        figure.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return path


def retrain_figure(summary: Sequence[dict], runs: Sequence[dict], title: str) -> go.Figure:
    """The same chart as `retrain_png`, as an interactive plotly figure."""
    x = {row["trial"]: row["nonzero_params"] for row in summary}
    figure = go.Figure()
    figure.add_scatter(
        x=[x[run["trial"]] for run in runs], y=[run["test_accuracy"] for run in runs],
        mode="markers", name="one retrain",
        marker={"color": SINGLE_RUN_COLOR, "size": 5, "opacity": 0.6},
        text=[f"trial {run['trial']}, seed {run['seed']}" for run in runs],
        hovertemplate="%{text}: test %{y:.2%}<extra></extra>",
    )  # fmt: skip
    figure.add_scatter(
        x=list(x.values()), y=[row["test_mean"] for row in summary], mode="markers",
        name="retrains: mean ± std",
        marker={"color": RETRAIN_COLOR, "symbol": "circle-open", "size": 9},
        error_y={"type": "data", "array": [row["test_std"] for row in summary]},
        text=[f"trial {row['trial']}" for row in summary],
        hovertemplate="%{text}: mean %{y:.2%}<extra></extra>",
    )  # fmt: skip
    figure.add_scatter(
        x=list(x.values()), y=[row["test_accuracy"] for row in summary],
        mode="markers+text", name="recorded (search seed)", marker={"color": FRONT_COLOR},
        text=[f"#{row['trial']} {row['verdict']}".strip() for row in summary],
        textposition="top right",
        hovertemplate="%{text}: recorded %{y:.2%}, %{x:,} nonzero<extra></extra>",
    )  # fmt: skip
    xaxis = {"title": {"text": "nonzero parameters"}}
    if _spans_decades(list(x.values())):
        xaxis["type"] = "log"
    figure.update_layout(
        title=title, xaxis=xaxis, yaxis={"title": {"text": "test accuracy"}, "tickformat": ".1~%"}
    )
    return figure


def write_retrain_plot(
    summary: Sequence[dict], runs: Sequence[dict], seeds: Sequence[int], folder: Path
) -> list[Path]:
    """Write the front with its retrains as `retrain_front.html` and `retrain_front.png`."""
    folder.mkdir(parents=True, exist_ok=True)
    title = _title(seeds)
    page = folder / "retrain_front.html"
    retrain_figure(summary, runs, title).write_html(str(page), include_plotlyjs="directory")
    return [page, retrain_png(summary, runs, folder / "retrain_front.png", title)]


def revalidate_front(
    study: optuna.Study, retrainer: Retrainer, count: int, folder: Path
) -> list[dict]:
    """Retrain the front with `count` other seeds; print the summary table and write the
    runs, the summary and the chart into `folder`. Returns the summary."""
    seeds = retrain_seeds(retrainer.seed, count)
    front = front_trials(study)
    print(
        f"\nretraining the {len(front)} front trials of study {study.study_name!r} with seeds "
        f"{', '.join(map(str, seeds))} (the study's seed is {retrainer.seed})"
    )
    runs = retrain_front(study, retrainer, count)
    summary = summarise(study, runs, retrainer.resolution)
    reused = sum(run["reused"] for run in runs)
    flagged = [row for row in summary if row["verdict"]]
    print(
        f"test accuracy, recorded and over the retrains ({len(runs) - reused} trained, "
        f"{reused} reused from the study):\n{retrain_table(summary)}"
    )
    print(verdict_line(count, len(flagged), len(summary)))
    _warn_on_size_drift(study, summary, runs, retrainer)
    paths = write_retrain(runs, summary, folder)
    paths += write_retrain_plot(summary, runs, seeds, folder)
    print(f"retrains written to {', '.join(str(path) for path in paths)}")
    return summary


def verdict_line(count: int, flagged: int, total: int) -> str:
    """The line under the retrain table for `count` seeds: the rule of the verdicts and
    how many of the `total` trials it `flagged`, or why there are none below
    `MIN_VERDICT_RETRAINS` seeds."""
    if count < MIN_VERDICT_RETRAINS:
        return (
            f"no lucky/unlucky verdicts below {MIN_VERDICT_RETRAINS} seeds: {count} "
            f"seed{'s' if count != 1 else ''} give{'' if count != 1 else 's'} too rough a spread"
        )
    return (
        f"verdict: lucky (unlucky) when the recorded test accuracy lies above (below) the "
        f"retrains' mean by more than {LUCKY_SIGMAS:g} std and one test sample; "
        f"{flagged} of {total} flagged"
    )


def _warn_on_size_drift(
    study: optuna.Study, summary: Sequence[dict], runs: Sequence[dict], retrainer: Retrainer
) -> None:
    """Print a warning for each per-layer candidate whose retrains kept another number of
    nonzero parameters than the trial: its ratios fix that number, unless the pruning
    settings differ from the search's."""
    for trial, row in zip(front_trials(study), summary, strict=True):
        if retrainer.candidate(trial).allocation is not None:
            continue  # an allocation rule's ratios depend on the trained weights
        sizes = {run["nonzero_params"] for run in runs if run["trial"] == trial.number}
        if sizes - {row["nonzero_params"]}:
            print(
                f"warning: trial {trial.number} had {row['nonzero_params']:,} nonzero "
                f"parameters, its retrains {', '.join(f'{n:,}' for n in sorted(sizes))}: "
                f"are prune and schedule the search's?"
            )

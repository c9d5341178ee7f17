"""Re-validation of a study's Pareto front: every front trial's candidate retrained from
scratch under other conditions, so that the points a lucky draw put on the front stand out.

A `Variation` says what changes between the runs: `Seeds` (`report retrain_seeds=N`, here)
retrains with other seeds, `Folds` (`report cv_folds=K`, `nas.studies.cross_validation`)
on other train / validation splits. Both rebuild each feasible front trial's candidate
from its parameters (architecture and sparsity, or the overall sparsity of an allocation
rule) and the study's space and data configs, run it through the same pipeline (dense
training, pruning, fine-tuning, evaluation) once per variant, and compare the trial's
recorded accuracy with the runs' mean and spread.

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

Each run's measures are stored in the study as the user attr `<variation>.trial<N>`
(`retrain.trial<N>`: seed -> measures; `cv.trial<N>`: `<fold> of <folds>` -> measures),
each with a key of the settings they were trained with, so a second report reuses them
and an interrupted one goes on where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import optuna
import pandas as pd
from omegaconf import DictConfig, OmegaConf
from optuna.trial import FrozenTrial, TrialState

from nas.checks import at_least, checked
from nas.data.splits import fold_splits
from nas.errors import UsageError
from nas.progress import progress
from nas.prune.methods import ChannelPruning
from nas.record.attrs import (
    ARCH,
    DENSE_CACHED,
    DENSE_SLICED,
    FINETUNE_EPOCHS,
    FINETUNE_SKIPPED,
    RECALIBRATION_EPOCHS,
    REMOVED_CHANNELS,
    TRAIN_EPOCHS,
)
from nas.record.candidate import candidate_of
from nas.record.measures import objective_names
from nas.report.charts.files import write_chart
from nas.report.front import front_rows
from nas.report.revalidation_chart import revalidation_chart
from nas.search.objective import for_trial
from nas.search.recorded import recorded_config
from nas.search.study import Search
from nas.space import Candidate
from nas.trial.dense_cache import DenseCache, arch_seed
from nas.trial.pipeline import TrialPipeline
from nas.trial.result import TrialResult
from nas.trial.train import TrainSettings

# The recorded test accuracy is `lucky` above, `unlucky` below, the retrains' mean by more
# than this many (sample) standard deviations, and by at least one test sample.
LUCKY_SIGMAS = 2.0
# Fewest retrains a verdict is given for: the spread of two seeds is too rough to judge by.
MIN_VERDICT_RETRAINS = 3
# Config groups that change what a run trains; taken from the study's `<group>_config`
# user attr where it records one.
SETTINGS_GROUPS = ("train", "finetune", "prune", "schedule")
MEASURES = ("accuracy", "test_accuracy", "nonzero_params", "flops", "seconds")
# Each accuracy a run measures: the prefix of its spread's summary columns.
SPREAD_PREFIX = {"accuracy": "val", "test_accuracy": "test"}
STATISTICS = ("mean", "std", "min", "max")
SPREAD_COLUMNS = tuple(f"{prefix}_{stat}" for prefix in ("test", "val") for stat in STATISTICS)


def retrain_count(value) -> int:
    """`retrain_seeds` checked: a whole number >= 0 (0: no retraining)."""
    return checked("retrain_seeds", value, int, at_least(0))


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
    trained: dense epochs unless its dense weights were cached or sliced out of a
    supernet, plus fine-tuning epochs (a trial's own, when it was queued with them)
    unless early exit skipped them, plus what recalibrating a sliced network's BatchNorm
    cost (`recalibration_epochs`)."""
    for trial in trials:
        if not (TRAIN_EPOCHS.on(trial) and DENSE_CACHED.on(trial)):
            continue
        reused = DENSE_CACHED.of(trial) or DENSE_SLICED.of(trial)
        own = FINETUNE_EPOCHS.of(trial)
        finetune = settings.finetune_epochs if own is None else own
        expected = (0 if reused else settings.epochs) + (
            0 if FINETUNE_SKIPPED.of(trial) else finetune
        )
        expected += RECALIBRATION_EPOCHS.of(trial)
        if TRAIN_EPOCHS.of(trial) != expected:
            raise UsageError(
                f"report: train.epochs={settings.epochs} and train.finetune_epochs="
                f"{settings.finetune_epochs} are not what the study trained with (trial "
                f"{trial.number} trained {TRAIN_EPOCHS.of(trial)} epochs): give report the "
                f"search's training overrides"
            )


@dataclass(frozen=True)
class Retrainer:
    """A study's trial pipeline rebuilt from the study and the command's config; `run`
    retrains one of its trials with another seed, `on_fold` trains on another split."""

    pipeline: TrialPipeline
    seed: int
    settings_key: str
    split_seed: int = 0

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
        archs = {json.dumps(ARCH.of(t)) for t in front}
        merged = search_config(study, cfg)
        # a seed's front trials of one architecture train it once
        search = Search.from_config(merged, launch_dir or Path.cwd(), dense_cache=len(archs))
        pipeline = search.pipeline
        if not isinstance(pipeline.pruning, ChannelPruning) and any(
            REMOVED_CHANNELS.of(trial) for trial in finished
        ):
            raise UsageError(
                f"study {study.study_name!r} removed channels (prune=channel): give report "
                f"the search's prune=channel"
            )
        check_epochs(finished, pipeline.settings)
        split_seed = int(merged.data.get("split_seed", 0))
        return cls(pipeline, search.seed, _settings_key(merged), split_seed)

    def candidate(self, trial: FrozenTrial) -> Candidate:
        """`trial`'s candidate, sampled again from its parameters."""
        return candidate_of(self.pipeline.space, trial.params, trial.number)

    def run(self, trial: FrozenTrial, seed: int) -> tuple[int, TrialResult]:
        """Train `trial`'s candidate from scratch as a search seeded by `seed` would;
        returns the weight seed and the result. A trial whose fine-tuning early exit
        skipped is retrained without fine-tuning too; one queued with its own fine-tuning
        epochs fine-tunes them again."""
        candidate = self.candidate(trial)
        weight_seed = arch_seed(seed, candidate.arch)
        skip = (lambda *_: True) if FINETUNE_SKIPPED.of(trial) else None
        pipeline = for_trial(self.pipeline, trial)
        result, _ = pipeline.run(candidate, weight_seed, skip_finetune=skip)
        return weight_seed, result

    def on_fold(self, folds: int, fold: int) -> Retrainer:
        """This retrainer training on fold `fold` of `folds` of its training and validation
        samples (`fold_splits`, shuffled by the data's split seed), with a dense cache of
        its own: the dense weights of one split are no use on another."""
        splits = fold_splits(self.pipeline.splits, folds, fold, self.split_seed)
        cache = DenseCache(self.pipeline.dense_cache.size)
        return replace(self, pipeline=replace(self.pipeline, splits=splits, dense_cache=cache))

    @property
    def pool_size(self) -> int:
        """The number of training and validation samples, which folds divide."""
        return len(self.pipeline.splits.train_y) + len(self.pipeline.splits.val_y)

    @property
    def resolution(self) -> float:
        """The test accuracy of one test sample."""
        return 1 / max(len(self.pipeline.splits.test_y), 1)


class Variation(ABC):
    """What changes between the runs of a front trial (`values`: seeds, folds), how each
    is run, and how the runs judge the trial's recorded accuracy."""

    # Stem of the files (`<name>.csv`, `<name>_summary.csv`, `<name>_front`), the progress
    # bar and the user attrs `<name>.trial<N>` the runs are stored in.
    name: ClassVar[str]
    column: ClassVar[str]  # the runs' column naming the value: `seed`, `fold`
    plural: ClassVar[str]  # the runs, in words; the summary column counting them
    judged: ClassVar[str]  # the measure the verdict and the chart judge (`MEASURES`)
    recorded: ClassVar[str]  # the recorded point, in the chart's legend
    table_columns: ClassVar[tuple[str, ...]]  # the printed summary's columns

    @property
    @abstractmethod
    def values(self) -> list[int]:
        """The seeds, or folds, each front trial is run with, in order."""

    @abstractmethod
    def key(self, value: int) -> str:
        """The key of the run of `value` in a trial's stored runs."""

    @abstractmethod
    def setting(self, retrainer: Retrainer, value: int) -> tuple[Retrainer, int]:
        """The retrainer and the seed that run `value`."""

    @abstractmethod
    def verdict(self, recorded: float, runs: Sequence[float]) -> str:
        """The runs' verdict on the `judged` measure a trial recorded; empty: none."""

    @abstractmethod
    def announcement(self, study: optuna.Study, retrainer: Retrainer) -> str:
        """The line printed before the runs: what is run, on which trials."""

    @property
    @abstractmethod
    def rule(self) -> str:
        """The verdict's rule, in words."""

    def verdict_line(self, flagged: int, total: int) -> str:
        """The line under the printed table: the rule and how many of `total` trials it
        `flagged`."""
        return f"verdict: {self.rule}; {flagged} of {total} flagged"

    @property
    @abstractmethod
    def title(self) -> str:
        """The chart's title."""

    def attr(self, trial_number: int) -> str:
        """The user attr holding trial `trial_number`'s runs."""
        return f"{self.name}.trial{trial_number}"

    @property
    def run_columns(self) -> tuple[str, ...]:
        """The columns of `<name>.csv`, one row per trial and value."""
        return ("trial", self.column, "weight_seed", *MEASURES, "reused")

    @property
    def summary_columns(self) -> tuple[str, ...]:
        """The columns of `<name>_summary.csv`, one row per front trial."""
        return ("trial", "nonzero_params", "accuracy", "test_accuracy", self.plural,
                *SPREAD_COLUMNS, "verdict", "arch")  # fmt: skip


@dataclass(frozen=True)
class Seeds(Variation):
    """The `count` seeds after the study's own (`retrain_seeds`); `lucky_verdict` on the
    test accuracy, `resolution` its one test sample."""

    study_seed: int
    count: int
    resolution: float

    name = "retrain"
    column = "seed"
    plural = "retrains"
    judged = "test_accuracy"
    recorded = "recorded (search seed)"
    table_columns = (
        "trial", "nonzero_params", "test_accuracy", "test_mean", "test_std", "test_min",
        "test_max", "val_mean", "verdict", "arch",
    )  # fmt: skip

    @property
    def values(self) -> list[int]:
        return retrain_seeds(self.study_seed, self.count)

    def key(self, value: int) -> str:
        return str(value)

    def setting(self, retrainer: Retrainer, value: int) -> tuple[Retrainer, int]:
        return retrainer, value

    def verdict(self, recorded: float, runs: Sequence[float]) -> str:
        return lucky_verdict(recorded, runs, self.resolution)

    def verdict_line(self, flagged: int, total: int) -> str:
        """The rule and the trials flagged, or why there are no verdicts below
        `MIN_VERDICT_RETRAINS` seeds."""
        if self.count < MIN_VERDICT_RETRAINS:
            plural = self.count != 1
            return (
                f"no lucky/unlucky verdicts below {MIN_VERDICT_RETRAINS} seeds: {self.count} "
                f"seed{'s' if plural else ''} give{'' if plural else 's'} too rough a spread"
            )
        return super().verdict_line(flagged, total)

    def announcement(self, study: optuna.Study, retrainer: Retrainer) -> str:
        return (
            f"retraining the {len(front_trials(study))} front trials of study "
            f"{study.study_name!r} with seeds {', '.join(map(str, self.values))} (the study's "
            f"seed is {retrainer.seed})"
        )

    @property
    def rule(self) -> str:
        return (
            f"lucky (unlucky) when the recorded test accuracy lies above (below) the "
            f"retrains' mean by more than {LUCKY_SIGMAS:g} std and one test sample"
        )

    @property
    def title(self) -> str:
        return (
            f"Test accuracy of the Pareto front: recorded, and retrained with "
            f"{self.count} other seed{'s' if self.count != 1 else ''}"
        )


def _stored_runs(study: optuna.Study, variation: Variation, trial: FrozenTrial) -> dict:
    return dict(study.user_attrs.get(variation.attr(trial.number), {}))


def retrain_front(study: optuna.Study, retrainer: Retrainer, variation: Variation) -> list[dict]:
    """Run every front trial with each of `variation`'s values; returns one row per trial
    and value (`variation.run_columns`). Runs stored in the study with the same settings
    are reused; each new run is stored as soon as it ends."""
    front = front_trials(study)
    key = retrainer.settings_key

    def reusable(trial: FrozenTrial, value: int) -> dict | None:
        entry = _stored_runs(study, variation, trial).get(variation.key(value))
        return entry if entry and entry.get("settings") == key else None

    todo = {v: [t for t in front if reusable(t, v) is None] for v in variation.values}
    rows: dict[tuple[int, int], dict] = {}
    total = sum(map(len, todo.values()))
    bar = progress(total=total, unit="run", desc=variation.name, disable=not total)
    try:
        for value, trials in todo.items():  # value by value: one retrainer each
            if not trials:
                continue
            varied, seed = variation.setting(retrainer, value)
            for trial in trials:
                bar.set_postfix({"trial": trial.number, variation.column: value})
                weight_seed, result = varied.run(trial, seed)
                entry = {name: getattr(result, name) for name in MEASURES}
                entry.update(weight_seed=weight_seed, settings=key)
                stored = _stored_runs(study, variation, trial)  # another report may have added
                stored[variation.key(value)] = entry
                study.set_user_attr(variation.attr(trial.number), stored)
                rows[trial.number, value] = {**entry, "reused": False}
                bar.update(1)
    finally:
        bar.close()
    table = []
    for trial in front:
        for value in variation.values:
            row = rows.get((trial.number, value)) or {**reusable(trial, value), "reused": True}
            table.append({"trial": trial.number, variation.column: value, **row})
    return [{name: row[name] for name in variation.run_columns} for row in table]


def spread(prefix: str, values: Sequence[float]) -> dict[str, float]:
    """The mean, sample standard deviation, minimum and maximum of `values`, keyed
    `<prefix>_mean` ...; NaN where too few values define one."""
    return {
        f"{prefix}_mean": statistics.fmean(values) if values else math.nan,
        f"{prefix}_std": statistics.stdev(values) if len(values) > 1 else math.nan,
        f"{prefix}_min": min(values, default=math.nan),
        f"{prefix}_max": max(values, default=math.nan),
    }


def summarise(study: optuna.Study, runs: Sequence[dict], variation: Variation) -> list[dict]:
    """One row per front trial (`variation.summary_columns`): its recorded measures, the
    number of its runs, the spread of their test and validation accuracy, and the
    `variation`'s verdict on its recorded `judged` measure."""
    summary = []
    for front in front_rows(study):
        mine = [run for run in runs if run["trial"] == front["trial"]]
        row = {name: front[name] for name in ("trial", "nonzero_params", "accuracy")}
        row.update(test_accuracy=front["test_accuracy"], **{variation.plural: len(mine)})
        for measure, prefix in SPREAD_PREFIX.items():
            row.update(spread(prefix, [run[measure] for run in mine]))
        judged = [run[variation.judged] for run in mine]
        row.update(verdict=variation.verdict(front[variation.judged], judged), arch=front["arch"])
        summary.append({name: row[name] for name in variation.summary_columns})
    return summary


def summary_table(summary: Sequence[dict], variation: Variation) -> str:
    """The summary's `variation.table_columns` as an aligned text table."""
    frame = pd.DataFrame(summary, columns=list(variation.table_columns))
    accuracies = ("accuracy", "test_accuracy", *SPREAD_COLUMNS)
    return frame.to_string(
        index=False,
        formatters={
            "nonzero_params": "{:,}".format,
            **{name: "{:.4f}".format for name in accuracies if name in frame},
        },
    )


def write_runs(
    runs: Sequence[dict], summary: Sequence[dict], variation: Variation, folder: Path
) -> list[Path]:
    """Write `<name>.csv` (one row per trial and value) and `<name>_summary.csv`."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{variation.name}.csv", folder / f"{variation.name}_summary.csv"]
    pd.DataFrame(runs, columns=variation.run_columns).to_csv(paths[0], index=False)
    pd.DataFrame(summary, columns=variation.summary_columns).to_csv(paths[1], index=False)
    return paths


def write_runs_plot(
    summary: Sequence[dict], runs: Sequence[dict], variation: Variation, folder: Path
) -> list[Path]:
    """Write the front with its runs (`revalidation_chart`) as `<name>_front.html` and
    `<name>_front.png`."""
    folder.mkdir(parents=True, exist_ok=True)
    chart = revalidation_chart(summary, runs, variation, SPREAD_PREFIX[variation.judged])
    return write_chart(chart, folder, f"{variation.name}_front")


def revalidate_front(
    study: optuna.Study, retrainer: Retrainer, variation: Variation, folder: Path
) -> list[dict]:
    """Run the front with each of `variation`'s values; print the summary table and write
    the runs, the summary and the chart into `folder`. Returns the summary."""
    print(f"\n{variation.announcement(study, retrainer)}")
    runs = retrain_front(study, retrainer, variation)
    summary = summarise(study, runs, variation)
    reused = sum(run["reused"] for run in runs)
    flagged = [row for row in summary if row["verdict"]]
    print(
        f"accuracy, recorded and over the {variation.plural} ({len(runs) - reused} trained, "
        f"{reused} reused from the study):\n{summary_table(summary, variation)}"
    )
    print(variation.verdict_line(len(flagged), len(summary)))
    _warn_on_size_drift(study, summary, runs, retrainer, variation)
    paths = write_runs(runs, summary, variation, folder)
    paths += write_runs_plot(summary, runs, variation, folder)
    print(f"{variation.plural} written to {', '.join(str(path) for path in paths)}")
    return summary


def _warn_on_size_drift(
    study: optuna.Study,
    summary: Sequence[dict],
    runs: Sequence[dict],
    retrainer: Retrainer,
    variation: Variation,
) -> None:
    """Print a warning for each per-layer candidate whose runs kept another number of
    nonzero parameters than the trial: its ratios fix that number, unless the pruning
    settings differ from the search's."""
    for trial, row in zip(front_trials(study), summary, strict=True):
        if retrainer.candidate(trial).allocation is not None:
            continue  # an allocation rule's ratios depend on the trained weights
        sizes = {run["nonzero_params"] for run in runs if run["trial"] == trial.number}
        if sizes - {row["nonzero_params"]}:
            print(
                f"warning: trial {trial.number} had {row['nonzero_params']:,} nonzero "
                f"parameters, its {variation.plural} "
                f"{', '.join(f'{n:,}' for n in sorted(sizes))}: are prune and schedule the "
                f"search's?"
            )

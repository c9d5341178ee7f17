"""The Optuna objective of a search: sample a candidate, run it through the trial
pipeline, record what it measured."""

from __future__ import annotations

from collections.abc import Callable

import optuna
from optuna.trial import TrialState
from torch import nn

from nas.record.attrs import FINETUNE_EPOCHS, HasUserAttrs
from nas.record.candidate import candidate_of
from nas.record.measures import metric, objective_names
from nas.trial.checkpoint import NO_CHECKPOINTS, Checkpoints
from nas.trial.dense_cache import arch_seed
from nas.trial.early_exit import NO_EARLY_EXIT, EarlyExit
from nas.trial.objectives import DEFAULT
from nas.trial.pipeline import TrialPipeline
from nas.trial.result import TrialResult


def finished_measures(study: optuna.Study) -> list[tuple[float, ...]]:
    """(accuracy, nonzero params, FLOPs) of each finished trial of `study`, whatever its
    objectives."""
    names = objective_names(study)
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [tuple(metric(t, name, names) for name in DEFAULT) for t in finished]


def holds_dense(pipeline: TrialPipeline, params: dict, seed: int) -> bool:
    """Whether the dense weights of the architecture that trial parameters `params`
    choose, in a search seeded by `seed`, are in `pipeline`'s cache."""
    arch = candidate_of(pipeline.space, params).arch
    return pipeline.dense_cache.holds(arch, arch_seed(seed, arch))


def for_trial(pipeline: TrialPipeline, trial: HasUserAttrs) -> TrialPipeline:
    """The pipeline `trial` runs: fine-tuning the epochs it was queued with
    (`FINETUNE_EPOCHS`), if any."""
    epochs = FINETUNE_EPOCHS.of(trial)
    return pipeline if epochs is None else pipeline.finetuning(int(epochs))


def trial_objective(
    pipeline: TrialPipeline,
    seed: int,
    checkpoints_for: Callable[[optuna.Trial], Checkpoints] | None = None,
    on_result: Callable[[optuna.Trial, TrialResult, nn.Module], None] | None = None,
    before_run: Callable[[optuna.Trial, float], None] | None = None,
    early_exit: EarlyExit = NO_EARLY_EXIT,
) -> Callable[[optuna.Trial], tuple[float, ...]]:
    """An Optuna objective: sample a candidate and `run` it through `pipeline` with weights
    seeded by `seed` and its architecture (trials of one architecture share dense weights),
    checkpointing into `checkpoints_for(trial)`. `before_run(trial, epochs)` sees the
    epochs the run will spend first and may refuse it (raise `optuna.TrialPruned`);
    `early_exit` may end the run before fine-tuning, judged against the study's finished
    trials, unless the trial was queued with its own fine-tuning epochs (`for_trial`).
    Stores the user attrs, hands the result and the pruned model to `on_result`, and
    returns the objectives."""
    names = pipeline.objectives.names

    def objective(trial: optuna.Trial) -> tuple[float, ...]:
        trial_pipeline = for_trial(pipeline, trial)
        candidate = pipeline.space.sample(trial)
        trial_seed = arch_seed(seed, candidate.arch)
        if before_run:
            before_run(trial, trial_pipeline.planned_epochs(candidate, trial_seed))
        checkpoints = checkpoints_for(trial) if checkpoints_for else NO_CHECKPOINTS
        own_epochs = FINETUNE_EPOCHS.on(trial)
        skip = None if own_epochs else early_exit.judge(lambda: finished_measures(trial.study))
        result, model = trial_pipeline.run(candidate, trial_seed, checkpoints, skip)
        for key, value in result.user_attrs(names).items():
            trial.set_user_attr(key, value)
        if on_result:
            on_result(trial, result, model)
        return result.values(names)

    return objective

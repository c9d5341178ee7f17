"""A search: check the config, open the study, run trials that survive faults, signals
and other workers, and say how it ended. Printing and drawing the front is the caller's
(`nas.studies.joint_search`), so that this package never imports `nas.report`."""

from __future__ import annotations

import logging
import signal
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.artifacts import FileSystemArtifactStore
from optuna.exceptions import ExperimentalWarning
from optuna.trial import FrozenTrial, TrialState
from tqdm.contrib.logging import logging_redirect_tqdm

from nas.checks import checked, from_node
from nas.data import Splits, splits_to
from nas.errors import SearchInterrupted, SearchStopped, UsageError, disk_refuses, failure_reason
from nas.optuna_internals import storage_of, unbeaten_trial_ids
from nas.record.attrs import FAIL_REASON, PREPROCESSING
from nas.search.callbacks import (
    FailureStreak,
    QueueFollowUps,
    RepeatStreak,
    SearchProgress,
    TrialBudget,
    refuse,
)
from nas.search.candidates import PipelineCandidates
from nas.search.configured import bound, configured
from nas.search.constraints import Constraints
from nas.search.interrupts import INTERRUPTS
from nas.search.objective import trial_objective
from nas.search.polish import Polish
from nas.search.recorded import trial_settings
from nas.search.reference import ReferenceTrial
from nas.search.retry import RetryTrial
from nas.search.revisits import Revisits
from nas.search.settings import StudySettings
from nas.search.siblings import Siblings
from nas.search.storage import (
    STORAGE_ERRORS,
    open_storage,
    open_study,
    storage_error,
    storage_location,
)
from nas.search.supernet import SupernetTrainer
from nas.search.trial_hooks import TrialHooks, TrialNote
from nas.space import SearchSpace
from nas.supernet.ranks import ALONE, Ranks
from nas.supernet.sandwich import SupernetSettings
from nas.trial.dense_cache import DenseCache
from nas.trial.distill import distillation_of
from nas.trial.early_exit import EarlyExit
from nas.trial.objectives import Objectives
from nas.trial.pipeline import TrialPipeline
from nas.trial.train import TrainSettings, resolve_device

log = logging.getLogger(__name__)

# Draws in a row that repeat existing trials' parameters before a search stops: the
# sampler finds nothing new in the space.
REPEATED_DRAWS = 100


def finished_trials(study: optuna.Study) -> int:
    """Number of trials of `study` that completed."""
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def guarded(
    objective: Callable[[optuna.Trial], tuple],
    budget: TrialBudget,
    retry: RetryTrial,
    streak: FailureStreak,
) -> Callable[[optuna.Trial], tuple]:
    """`objective`, run only if `budget` admits the trial, and the one place of a trial
    where a signal takes effect at once (see `nas.search.interrupts`). An exception fails
    the trial with `fail_reason` stored (a full or read-only disk also stops the search
    through `streak`); Ctrl-C or SIGTERM fails it and queues its parameters again."""

    def run(trial: optuna.Trial) -> tuple:
        if not budget.admits(trial):
            refuse(trial, "the other workers' trials fill study.n_trials or study.max_epochs")
        try:
            with INTERRUPTS.taking():
                return objective(trial)
        except KeyboardInterrupt:
            FAIL_REASON.set(trial, "interrupted")
            retry(trial.study, trial.study.get_trials(deepcopy=False)[trial.number])
            raise
        except Exception as error:
            FAIL_REASON.set(trial, failure_reason(error))
            if disk_refuses(error):
                streak.refused(trial, failure_reason(error))
            log.debug("trial %d failed", trial.number, exc_info=True)
            raise

    return run


def _open(
    url: str, settings: StudySettings, space: str, objectives: Objectives, recorded: dict
) -> optuna.Study:
    """Open the study with heartbeats if it is one of `space`, `objectives` and the trial
    settings `recorded` (see `open_study`), fail its stale trials (queuing them again, at
    most `settings.max_retry` times); any storage problem becomes a one-line UsageError."""
    try:
        retry = RetryTrial(settings.max_retry)
        storage = open_storage(url, settings.heartbeat_interval, settings.grace_period, retry)
        study = open_study(storage, settings.name, space, objectives, recorded)
    except STORAGE_ERRORS as error:
        raise storage_error(url, error) from error
    fail_stale_trials(study)
    return study


def fail_stale_trials(study: optuna.Study) -> None:
    """Fail the running trials of `study` whose heartbeat went stale, and those that never
    beat within the grace period (their worker died as it took them); the storage's
    callback queues them again (a signal waits until all is done)."""
    with INTERRUPTS.holding(), warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
        storage = storage_of(study)
        for trial_id in unbeaten_trial_ids(study):  # none without heartbeats
            try:
                failed = storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                continue  # another worker failed it first
            callback = storage.get_heartbeat_stale_trial_callback()
            if failed and callback is not None:
                callback(study, storage.get_trial(trial_id))


def _optimize(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], tuple],
    callbacks: list,
    more: Callable[[], bool],
) -> int | None:
    """Run trials until a callback stops the study, as long as `more()` says there is a
    trial to start (it may wait for one); returns the number of the signal (SIGINT,
    SIGTERM) that interrupted it, or None. Optuna's steps around each trial (asking,
    telling, callbacks) run with signals held: one arriving there stops the study before
    its next trial."""
    callbacks = [*callbacks, INTERRUPTS.stop_study]
    try:
        with logging_redirect_tqdm(), INTERRUPTS.catching():
            while more():
                with INTERRUPTS.holding():
                    study.optimize(objective, catch=(Exception,), callbacks=callbacks)
    except KeyboardInterrupt as interrupt:
        return getattr(interrupt, "signum", signal.SIGINT)
    return None


def wait_for_running(
    study: optuna.Study,
    budget: TrialBudget,
    can_start: Callable[[], bool],
    progress: SearchProgress,
    interval: float,
) -> bool:
    """While the study is short and trials run in other processes, wait for them, failing
    every `interval` seconds those whose heartbeat went stale (which queues them again).
    Returns True once one of them has stopped running and a trial can be started; False
    at once when none runs or the budget is spent."""
    awaited: set[int] | None = None
    while budget.short(study):
        running = {
            trial.number for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        }
        if awaited is not None and awaited - running and can_start():
            return True
        if not running:
            return False
        if awaited is None:
            awaited = running
        progress.wait(study, len(running))
        time.sleep(interval)
        fail_stale_trials(study)
    return False


@dataclass
class TrialRounds:
    """Whether `Search.optimize` runs trials (again): at first if one can start, later
    only once other processes' running trials, waited for (`wait_for_running`, every
    `interval` seconds), left one to start; never once one of the `stops` tripped."""

    study: optuna.Study
    budget: TrialBudget
    queued_only: bool
    stops: tuple[FailureStreak, RepeatStreak]
    progress: SearchProgress
    interval: float
    started: bool = False

    def can_start(self) -> bool:
        """Whether the budget leaves this worker a trial to start (a queued one only,
        with `queued_only`)."""
        queued = self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        return not self.budget.exhausted(self.study) and (bool(queued) or not self.queued_only)

    def __call__(self) -> bool:
        if any(stop.tripped for stop in self.stops):
            return False
        first, self.started = not self.started, True
        return (first and self.can_start()) or wait_for_running(
            self.study, self.budget, self.can_start, self.progress, self.interval
        )


def describe_study(study: optuna.Study, cfg: DictConfig, splits: Splits) -> None:
    """Record in `study` what `export` needs to rebuild and check its models (the space
    and data configs, input shape and class count) and what `report retrain_seeds=N`
    needs to train them again (the train, finetune, prune and schedule configs and the
    seed; a resume must keep these and the space and data, see `trial_settings`), once,
    when the study is new;
    and how its images became inputs, with the class names, for an export to label new
    images (data read from image files only)."""
    attrs = {
        "in_shape": list(splits.in_shape),
        "n_classes": splits.n_classes,
        **trial_settings(cfg),
    }
    if splits.preprocessing is not None:
        attrs[PREPROCESSING.key] = splits.preprocessing.as_dict()
    for key, value in attrs.items():
        if key not in study.user_attrs:
            study.set_user_attr(key, value)


@dataclass(frozen=True)
class Outcome:
    """How a call of `Search.optimize` ended: the signal that interrupted it, if any,
    and the message of a stop after repeated failures, if any."""

    interrupted_by: int | None = None
    stopped: str | None = None


@dataclass(frozen=True)
class Search:
    """A checked search configuration with its data loaded and its trial pipeline built;
    `open` a study with it, `optimize` the study and `conclude` it."""

    cfg: DictConfig
    opts: StudySettings
    seed: int
    url: str
    store_dir: Path
    pipeline: TrialPipeline
    early_exit: EarlyExit
    siblings: Siblings
    revisits: Revisits
    polish: Polish
    note: TrialNote | None = None
    supernet: SupernetSettings | None = None

    @classmethod
    def from_config(
        cls, cfg: DictConfig, launch_dir: Path, dense_cache: int = 0, note: TrialNote | None = None
    ) -> Search:
        """Check every value of `cfg` and load the data, before any storage is touched.
        The dense-weight cache holds `study.dense_cache` entries, or `dense_cache` if more;
        `note`, if given, annotates every finished trial (the dashboard's trial notes)."""
        seed = checked("seed", cfg.seed, int)
        try:
            study = {**OmegaConf.to_container(cfg.study), "name": str(cfg.study.name)}
            opts = from_node(StudySettings, study, "study")
            train = OmegaConf.to_container(cfg.train)
            settings = from_node(TrainSettings, train, "train", besides=("polish", "supernet"))
            polish = from_node(Polish, train.get("polish", {}), "train.polish")
            supernet = train.get("supernet")
            if supernet is not None:
                supernet = from_node(SupernetSettings, supernet, "train.supernet")
            device = resolve_device(str(cfg.device))
            early_exit = EarlyExit(opts.early_exit, opts.early_exit_margin)
            distill = distillation_of(OmegaConf.to_container(cfg.finetune))
            objectives = Objectives(tuple(opts.objectives))
            siblings = Siblings(
                opts.siblings, opts.sibling_factor, opts.sibling_rule, opts.sibling_tolerance
            )
            revisits = Revisits(opts.revisit_share)
        except (TypeError, ValueError) as error:
            raise UsageError(str(error)) from error
        url, store_dir = storage_location(opts.storage, opts.artifacts, launch_dir)
        space = configured(cfg.space, "space")
        pruning = configured(cfg.prune, "prune")
        schedule = configured(cfg.schedule, "schedule")
        try:
            pruning.check_schedule(schedule)
        except ValueError as error:
            raise UsageError(str(error)) from error
        configured(cfg.sampler, "sampler", seed=seed)
        if supernet is not None:
            check_weight_sharing(space, supernet, opts.max_epochs)
        splits = configured(cfg.data, "data")
        bound(space, splits.in_shape, splits.n_classes)
        trained = getattr(space, "dense_source", None)  # a space of a trained network's
        if trained is not None and supernet is not None:  # slices
            raise UsageError(
                "train=supernet trains the space's supernet from scratch; a space starting "
                "from trained weights slices each candidate out of them: use train=default"
            )
        pipeline = TrialPipeline(
            space, splits_to(splits, device), pruning, settings, device, schedule,
            DenseCache(max(opts.dense_cache, dense_cache)), distill, objectives, trained,
        )  # fmt: skip
        return cls(
            cfg, opts, seed, url, store_dir, pipeline, early_exit, siblings, revisits, polish,
            note, supernet,
        )  # fmt: skip

    def open(self, name: str) -> optuna.Study:
        """Open (or create) study `name`, recording what `export` needs, with the sampler
        seeded past the trials it already holds (a resumed study does not replay its
        first session's draws). A study made with other trial settings raises UsageError."""
        optuna.logging.set_verbosity(optuna.logging.ERROR)  # failed trials are logged below
        study = _open(
            self.url,
            replace(self.opts, name=name),
            str(self.cfg.space._target_),
            self.pipeline.objectives,
            trial_settings(self.cfg),
        )
        describe_study(study, self.cfg, self.pipeline.splits)
        study.sampler = configured(self.cfg.sampler, "sampler", seed=self.seed + len(study.trials))
        return study

    def artifact_store(self) -> FileSystemArtifactStore:
        """The study's artifact store (its folder made if need be)."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        return FileSystemArtifactStore(self.store_dir)

    def optimize(
        self,
        study: optuna.Study,
        n_trials: int,
        max_epochs: int | None,
        space: SearchSpace | None = None,
        queued_only: bool = False,
    ) -> Outcome:
        """Run trials (queued ones first) until the study holds `n_trials` finished trials
        or has spent `max_epochs` training epochs, a signal interrupts it, trials keep
        failing or the sampler draws only parameters already tried; with `queued_only`,
        also once no queued trial is left. While the study is short and the trials
        running in other processes fill the budget, it waits for them (see
        `wait_for_running`). `space`, when given, samples the candidates instead of the
        configured one."""
        opts = self.opts
        budget = TrialBudget(n_trials, max_epochs)
        finished = finished_trials(study)
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if not budget.short(study) or (queued_only and not waiting):
            log.info(
                "study %r already holds %d finished trials (n_trials=%d) and spent %g "
                "training epochs (%s)",
                study.study_name, finished, n_trials, budget.epochs_spent(study),
                epoch_limit(max_epochs),
            )  # fmt: skip
            return Outcome()
        log.info(
            "study %r: %d of %d trials finished; device %s",
            study.study_name, finished, n_trials, self.pipeline.device,
        )  # fmt: skip
        store = self.artifact_store()
        constraints = Constraints.of(opts, self.pipeline.splits.val_y)
        hooks = TrialHooks(store, budget, opts, self.pipeline.settings, constraints, self.note)
        pipeline = replace(self.pipeline, space=space) if space else self.pipeline
        if self.supernet is not None:
            pipeline = self.with_supernet(pipeline, study, store)
        run = trial_objective(
            pipeline, self.seed, hooks.checkpoints_for, hooks.keep, hooks.before_run,
            self.early_exit,
        )  # fmt: skip
        streak = FailureStreak(opts.max_consecutive_failures)
        objective = guarded(run, budget, RetryTrial(opts.max_retry), streak)
        repeats = RepeatStreak(REPEATED_DRAWS)
        progress = SearchProgress(n_trials, finished)
        rounds = TrialRounds(
            study, budget, queued_only, (streak, repeats), progress, opts.heartbeat_interval
        )
        # a baseline runs its queue only; a search queues siblings, polishes and revisits
        follow_ups = (self.siblings, self.polish, self.revisits)
        queue_more = QueueFollowUps(follow_ups, budget, PipelineCandidates(pipeline, self.seed))
        callbacks = [budget, streak, repeats, progress]
        callbacks.append(stop_when_queue_empty if queued_only else queue_more)
        try:
            interrupted_by = _optimize(study, objective, callbacks, rounds)
        finally:
            progress.close()
        stopped = next((s.message() for s in (streak, repeats) if s.tripped), None)
        return Outcome(interrupted_by, stopped)

    def with_supernet(
        self,
        pipeline: TrialPipeline,
        study: optuna.Study,
        store: FileSystemArtifactStore,
        ranks: Ranks = ALONE,
    ) -> TrialPipeline:
        """`pipeline` slicing every candidate's dense weights out of the study's supernet,
        which is trained (or waited for, or loaded) first, by this process or together
        with the other `ranks` (`nas.supernet.ranks`)."""
        space, splits = pipeline.space, pipeline.splits
        smallest = space.sample(ReferenceTrial(smallest=True))
        trainer = SupernetTrainer(
            study, store, lambda: space.supernet(splits.in_shape, splits.n_classes), splits,
            self.supernet, smallest, space.sample, pipeline.settings.batch_size, self.seed,
            self.opts.heartbeat_interval, self.opts.grace_period, ranks,
        )  # fmt: skip
        supernet = trainer.ready()
        return replace(
            pipeline,
            dense_source=supernet.weights_for,
            recalibration_images=self.supernet.bn_images,
        )

    @staticmethod
    def conclude(study: optuna.Study, outcome: Outcome) -> optuna.Study:
        """Raise what stopped the study early, if anything; returns the study."""
        finished = finished_trials(study)
        if outcome.interrupted_by is not None:
            raise SearchInterrupted(
                f"interrupted by {signal.Signals(outcome.interrupted_by).name}: a trial cut "
                f"short is marked failed and queued again; {finished} trials finished. Run "
                f"the same command to continue.",
                outcome.interrupted_by,
            )
        if outcome.stopped:
            raise SearchStopped(outcome.stopped)
        running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
        if running:
            log.info(
                "%d trial(s) still running in other workers (or in a process that died less "
                "than study.grace_period ago: run again later to retry them)",
                running,
            )
        return study


def check_weight_sharing(
    space: SearchSpace, settings: SupernetSettings, max_epochs: int | None
) -> None:
    """Raise a UsageError unless `space` offers a supernet and the epoch budget pays for
    training it (`settings.epochs` x `settings.epoch_cost`) with room left for trials."""
    if not callable(getattr(space, "supernet", None)):
        raise UsageError(
            f"train=supernet: the space {type(space).__name__} has no "
            f"supernet(in_shape, n_classes) method; add one (see the README) or use "
            f"train=default"
        )
    cost = settings.epochs * settings.epoch_cost
    if max_epochs is not None and max_epochs <= cost:
        raise UsageError(
            f"study.max_epochs={max_epochs} leaves nothing for trials after the supernet's "
            f"{cost:g} epochs (train.supernet.epochs={settings.epochs} x "
            f"{settings.epoch_cost:g} sub-network passes each)"
        )


def check_schedule_fits(pipeline: TrialPipeline) -> None:
    """Raise a UsageError, naming the settings and step counts, when the pipeline's
    schedule cannot act within its fine-tuning steps (see `Schedule.misfit`)."""
    steps = pipeline.finetune_steps()
    why = pipeline.schedule.misfit(steps)
    if why:
        settings = pipeline.settings
        raise UsageError(
            f"the pruning schedule cannot act within the {steps} fine-tuning steps "
            f"(train.finetune_epochs={settings.finetune_epochs} x {pipeline.steps_per_epoch()} "
            f"batches of train.batch_size={settings.batch_size}): {why}"
        )


def epoch_limit(max_epochs: int | None) -> str:
    """The epoch budget as the log states it: `max_epochs=N`, or `no epoch limit`."""
    return "no epoch limit" if max_epochs is None else f"max_epochs={max_epochs}"


def stop_when_queue_empty(study: optuna.Study, trial: FrozenTrial) -> None:
    """Optuna callback: stop once no trial waits in the queue."""
    if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        study.stop()

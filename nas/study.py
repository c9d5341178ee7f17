"""Create, resume and run a study: storage, sampler, callbacks, progress, the final front."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import optuna
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import SQLAlchemyError
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from nas.data import splits_to
from nas.errors import UsageError
from nas.objective import DIRECTIONS, METRIC_NAMES, TrialPipeline
from nas.report import front_rows, front_table, write_front
from nas.train import TrainSettings, resolve_device

log = logging.getLogger(__name__)


def storage_url(storage: str | None, launch_dir: Path) -> str:
    """`storage` as given, or the default SQLite file `outputs/nas.db` under `launch_dir`."""
    if storage:
        return storage
    path = launch_dir / "outputs" / "nas.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def open_study(name: str, storage: str) -> optuna.Study:
    """Create the study `name` in `storage`, or load it if it exists, with named metrics."""
    study = optuna.create_study(
        study_name=name, storage=storage, directions=list(DIRECTIONS), load_if_exists=True
    )
    if study.metric_names is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(list(METRIC_NAMES))
    return study


def finished_trials(study: optuna.Study) -> int:
    """Number of trials of `study` that completed."""
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


class SearchProgress:
    """Optuna callback: a progress bar over finished trials and one log line per trial."""

    def __init__(self, total: int, finished: int) -> None:
        self.bar = tqdm(
            total=total, initial=finished, unit="trial", desc="search", dynamic_ncols=True
        )

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state != TrialState.COMPLETE:
            log.warning("trial %d ended %s", trial.number, trial.state.name.lower())
            return
        self.bar.update(1)
        self.bar.set_postfix(front=len(study.best_trials))
        accuracy, nonzero, flops = trial.values
        attrs = trial.user_attrs
        log.info(
            "trial %d: accuracy %.4f (test %.4f), nonzero %s of %s, flops %s, %.1fs, %s",
            trial.number,
            accuracy,
            attrs["test_accuracy"],
            f"{int(nonzero):,}",
            f"{attrs['dense_params']:,}",
            f"{int(flops):,}",
            attrs["seconds"],
            attrs["arch"],
        )

    def close(self) -> None:
        """Close the bar."""
        self.bar.close()


def _instantiate(node: DictConfig, what: str, **kwargs):
    """`hydra.utils.instantiate`, with a bad value turned into a one-line UsageError."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as error:
        cause = error.__cause__ or error
        raise UsageError(f"{what}: {cause}") from error


def _whole_number(value, name: str) -> int:
    """`value` if it is an int (not a bool), else a UsageError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{name} must be a whole number, got {value!r}")
    return value


def run_search(cfg: DictConfig, launch_dir: Path, run_dir: Path) -> optuna.Study:
    """Run (or resume) the study described by `cfg` until it holds `study.n_trials`
    finished trials; print its Pareto front and write it into `run_dir`. Returns the study."""
    n_trials = _whole_number(cfg.study.n_trials, "study.n_trials")
    seed = _whole_number(cfg.seed, "seed")
    if n_trials < 1:
        raise UsageError(f"study.n_trials must be at least 1, got {n_trials}")
    try:
        settings = TrainSettings(**OmegaConf.to_container(cfg.train))
        device = resolve_device(str(cfg.device))
    except (TypeError, ValueError) as error:
        raise UsageError(str(error)) from error
    space = _instantiate(cfg.space, "space")
    pruning = _instantiate(cfg.prune, "prune")

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = open_study(str(cfg.study.name), storage_url(cfg.study.storage, launch_dir))
    except (SQLAlchemyError, ValueError) as error:
        reason = str(error).strip().splitlines()[0]
        raise UsageError(f"cannot open the study storage (study.storage): {reason}") from error
    finished = finished_trials(study)
    # Offset by the trials already stored so that a resumed study does not replay
    # the random draws of its first session.
    study.sampler = _instantiate(cfg.sampler, "sampler", seed=seed + len(study.trials))
    if finished < n_trials:
        log.info(
            "study %r: %d of %d trials finished; device %s",
            study.study_name,
            finished,
            n_trials,
            device,
        )
        splits = splits_to(_instantiate(cfg.data, "data"), device)
        objective = TrialPipeline(space, splits, pruning, settings, device).objective(seed)
        progress = SearchProgress(n_trials, finished)
        stop_at_total = optuna.study.MaxTrialsCallback(n_trials, states=(TrialState.COMPLETE,))
        try:
            with logging_redirect_tqdm():
                study.optimize(objective, callbacks=[stop_at_total, progress])
        finally:
            progress.close()
    else:
        log.info(
            "study %r already holds %d finished trials (study.n_trials=%d)",
            study.study_name,
            finished,
            n_trials,
        )
    rows = front_rows(study)
    print(
        f"\nPareto front of study {study.study_name!r} ({len(rows)} of {finished_trials(study)} "
        f"finished trials):\n{front_table(rows)}"
    )
    csv_path, json_path = write_front(rows, run_dir)
    print(f"front written to {csv_path} and {json_path}")
    return study

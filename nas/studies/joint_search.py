"""The joint search as a command runs it: search the study, then print, write and draw
its front. `nas.search` runs trials and `nas.report` shows them; this joins the two."""

from __future__ import annotations

from pathlib import Path

import optuna
from omegaconf import DictConfig

from nas.report.dashboard import save_study_plots, save_trial_note
from nas.report.front import report_front
from nas.search.reference import smallest_architecture
from nas.search.study import Outcome, Search, check_schedule_fits


def searched(cfg: DictConfig, launch_dir: Path, dense_cache: int = 0) -> Search:
    """`Search.from_config` with the dashboard's note on every finished trial, refused
    when its schedule cannot act within the fine-tuning (a study's report, which retrains
    what the study ran, is not refused)."""
    search = Search.from_config(cfg, launch_dir, dense_cache=dense_cache, note=save_trial_note)
    check_schedule_fits(search.pipeline)
    return search


def finish(study: optuna.Study, outcome: Outcome, run_dir: Path) -> optuna.Study:
    """Print and write the study's front and save its dashboard plots, then raise what
    stopped it early (see `Search.conclude`). Returns the study."""
    report_front(study, run_dir)
    save_study_plots(study)
    return Search.conclude(study, outcome)


def run_search(cfg: DictConfig, launch_dir: Path, run_dir: Path) -> optuna.Study:
    """Run (or resume) the study described by `cfg` until it holds `study.n_trials`
    finished trials or has spent `study.max_epochs`; print its Pareto front and write it
    into `run_dir`. Returns the study.

    Every value is checked, and the data loaded, before the storage is touched.
    """
    search = searched(cfg, launch_dir)
    study = search.open(search.opts.name)
    if search.opts.warm_start and not study.get_trials(deepcopy=False):
        # its sparsity is left to the sampler (its shifts too, unless given); siblings then
        # map how far it can be pruned
        first = smallest_architecture(search.pipeline.space, search.opts.warm_start_shifts)
        study.enqueue_trial(first, skip_if_exists=True)
    outcome = search.optimize(study, search.opts.n_trials, search.opts.max_epochs)
    return finish(study, outcome, run_dir)

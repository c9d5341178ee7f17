"""What a search does around each trial its pipeline runs: checkpoints, the budget's
charge and the repeat check before the run, the pruned weights, note and constraints
after it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import optuna
from optuna.artifacts import FileSystemArtifactStore
from torch import nn

from nas.search.callbacks import TrialBudget
from nas.search.checkpoints import ArtifactCheckpoints
from nas.search.constraints import Constraints
from nas.search.repeats import refuse_repeat
from nas.search.settings import StudySettings
from nas.search.weights import save_pruned_weights
from nas.trial.checkpoint import NO_CHECKPOINTS, Checkpoints
from nas.trial.result import TrialResult
from nas.trial.train import TrainSettings

# Annotates a finished trial with its result and pruned model (the dashboard's trial note).
TrialNote = Callable[[optuna.Trial, TrialResult, nn.Module], None]


@dataclass(frozen=True)
class TrialHooks:
    """The hooks a search hands its trial objective (see `trial_objective`): trials
    training more than `opts.checkpoint_over_epochs` epochs (`settings`) checkpoint into
    the artifact `store`; a trial is checked for repeats and charged to `budget` before it
    runs, and its pruned weights, `note` (if any) and `constraints` are kept after it."""

    store: FileSystemArtifactStore
    budget: TrialBudget
    opts: StudySettings
    settings: TrainSettings
    constraints: Constraints
    note: TrialNote | None = None

    def checkpoints_for(self, trial: optuna.Trial) -> Checkpoints:
        """Where `trial` keeps its checkpoints: nowhere for a short trial."""
        if self.settings.epochs + self.settings.finetune_epochs <= self.opts.checkpoint_over_epochs:
            return NO_CHECKPOINTS
        return ArtifactCheckpoints(self.store, trial)

    def before_run(self, trial: optuna.Trial, epochs: float) -> None:
        """Refuse `trial` if it repeats a trial, else charge its `epochs` to the budget."""
        refuse_repeat(trial)
        self.budget.charge(trial, epochs)

    def keep(self, trial: optuna.Trial, result: TrialResult, model: nn.Module) -> None:
        """Keep what `trial` gave: its pruned weights, its note and its constraints."""
        save_pruned_weights(self.store, trial, model)
        if self.note is not None:
            self.note(trial, result, model)
        self.constraints.set(trial, result)

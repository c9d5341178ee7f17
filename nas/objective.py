"""One trial: sample -> build -> train dense -> prune per layer -> fine-tune -> evaluate."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import optuna
import torch

from nas import counting
from nas.data import Splits
from nas.pruning import MagnitudePruning, achieved_sparsity, make_permanent
from nas.space import Candidate, SearchSpace
from nas.train import TrainSettings, accuracy, seed_everything, train_epochs

METRIC_NAMES = ("accuracy", "nonzero_params", "flops")
DIRECTIONS = ("maximize", "minimize", "minimize")


@dataclass(frozen=True)
class TrialResult:
    """Everything one candidate's run measured; `values()` are the study's objectives."""

    accuracy: float
    nonzero_params: int
    flops: int
    test_accuracy: float
    dense_accuracy: float
    dense_params: int
    dense_flops: int
    sparsity_target: dict[str, float]
    sparsity_achieved: dict[str, float]
    train_epochs: int
    seconds: float
    arch: str

    def values(self) -> tuple[float, int, int]:
        """The objectives, in the order of `METRIC_NAMES`."""
        return self.accuracy, self.nonzero_params, self.flops

    def user_attrs(self) -> dict:
        """Everything but the objectives, stored as trial user attributes."""
        attrs = asdict(self)
        for name in METRIC_NAMES:
            del attrs[name]
        return attrs


@dataclass(frozen=True)
class TrialPipeline:
    """What every trial shares: the space, the data (already on `device`), the pruning
    method and the training settings. `run` takes one candidate through the pipeline."""

    space: SearchSpace
    splits: Splits
    pruning: MagnitudePruning
    settings: TrainSettings
    device: torch.device

    def run(self, candidate: Candidate, seed: int) -> TrialResult:
        """Train, prune, fine-tune and evaluate `candidate`, its weights seeded by `seed`."""
        started = time.perf_counter()
        space, splits, settings = self.space, self.splits, self.settings
        generator = seed_everything(seed)
        model = space.build(candidate, splits.in_shape, splits.n_classes).to(self.device)
        dense_params = counting.dense_params(model)
        dense_flops = counting.dense_flops(model, splits.in_shape)

        def fit(epochs: int, lr: float) -> None:
            train_epochs(
                model, splits.train_x, splits.train_y, epochs, lr,
                settings.batch_size, settings.weight_decay, generator,
            )  # fmt: skip

        fit(settings.epochs, settings.lr)
        dense_accuracy = accuracy(model, splits.val_x, splits.val_y)
        self.pruning.apply(model, candidate.sparsity)
        if settings.finetune_epochs:
            fit(settings.finetune_epochs, settings.lr * settings.finetune_lr_scale)
        make_permanent(model)
        return TrialResult(
            accuracy=accuracy(model, splits.val_x, splits.val_y),
            nonzero_params=counting.nonzero_params(model),
            flops=counting.sparse_flops(model, splits.in_shape),
            test_accuracy=accuracy(model, splits.test_x, splits.test_y),
            dense_accuracy=dense_accuracy,
            dense_params=dense_params,
            dense_flops=dense_flops,
            sparsity_target=dict(candidate.sparsity),
            sparsity_achieved=achieved_sparsity(model, list(candidate.sparsity)),
            train_epochs=settings.epochs + settings.finetune_epochs,
            seconds=round(time.perf_counter() - started, 3),
            arch=space.describe(candidate),
        )

    def objective(self, seed: int) -> Callable[[optuna.Trial], tuple[float, int, int]]:
        """An Optuna objective: sample a candidate, `run` it with weights seeded by
        `seed + trial.number`, store the user attrs and return the objectives."""

        def objective(trial: optuna.Trial) -> tuple[float, int, int]:
            result = self.run(self.space.sample(trial), seed + trial.number)
            for key, value in result.user_attrs().items():
                trial.set_user_attr(key, value)
            return result.values()

        return objective

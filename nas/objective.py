"""One trial: sample -> build -> train dense -> prune per layer -> fine-tune -> evaluate."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import optuna
import torch
from torch import nn

from nas import counting
from nas.checkpoint import NO_CHECKPOINTS, Checkpoints
from nas.data import Splits
from nas.metrics import logits_of, preservation_metrics
from nas.pruning import (
    ChannelPruning,
    MagnitudePruning,
    achieved_sparsity,
    current_masks,
    make_permanent,
    restore_masks,
    weight_counts,
)
from nas.retry import retry_history
from nas.schedule import ONE_SHOT, Schedule
from nas.space import Candidate, SearchSpace
from nas.train import (
    TrainSettings,
    accuracy,
    autocast_dtype,
    make_optimizer,
    seed_everything,
    train_epoch,
)

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
    macro_f1: float
    worst_class_accuracy: float
    agreement: float
    kl_divergence: float
    ece: float
    dense_params: int
    dense_flops: int
    sparsity_target: dict[str, float]
    sparsity_achieved: dict[str, float]
    train_epochs: int
    resumed_from_epoch: int
    removed_channels: list
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
    method with its schedule, and the training settings. `run` takes one candidate through
    the pipeline."""

    space: SearchSpace
    splits: Splits
    pruning: MagnitudePruning | ChannelPruning
    settings: TrainSettings
    device: torch.device
    schedule: Schedule = ONE_SHOT

    def run(
        self, candidate: Candidate, seed: int, checkpoints: Checkpoints = NO_CHECKPOINTS
    ) -> tuple[TrialResult, nn.Module]:
        """Train, prune, fine-tune and evaluate `candidate`, its weights seeded by `seed`;
        returns what was measured and the pruned model (masks folded, in eval mode).

        After every epoch the training state goes to `checkpoints`; when `checkpoints`
        already holds one (a retried trial), training resumes after that epoch.
        """
        started = time.perf_counter()
        space, splits, settings = self.space, self.splits, self.settings
        generator = seed_everything(seed)
        model = space.build(candidate, splits.in_shape, splits.n_classes).to(self.device)
        dense_params = counting.dense_params(model)
        dense_flops = counting.dense_flops(model, splits.in_shape)
        dense_epochs = settings.epochs
        total_epochs = settings.epochs + settings.finetune_epochs
        finetune_lr = settings.lr * settings.finetune_lr_scale
        structural = getattr(self.pruning, "restructures", False)  # channels removed once
        dense_counts = weight_counts(model, list(candidate.sparsity))

        steps_per_epoch = math.ceil(len(splits.train_x) / settings.batch_size)
        finetune_steps = settings.finetune_epochs * steps_per_epoch

        def pruning_steps(epoch: int) -> Callable[[int], None] | None:
            """What prunes before each step of fine-tuning `epoch`, as the schedule says."""
            if epoch <= dense_epochs or structural:
                return None
            first_step = (epoch - dense_epochs - 1) * steps_per_epoch

            def before_step(step: int) -> None:
                ratios = self.schedule.ratios_at(
                    first_step + step, finetune_steps, candidate.sparsity
                )
                if ratios is not None:
                    self.pruning.apply(model, ratios)

            return before_step

        def fit(
            epochs: range,
            optimizer: torch.optim.Optimizer,
            dense_accuracy: float | None,
            dense_logits: torch.Tensor | None,
            removed_channels: list,
        ) -> None:
            for epoch in epochs:
                train_epoch(
                    model, splits.train_x, splits.train_y, optimizer, settings.batch_size,
                    generator, before_step=pruning_steps(epoch),
                    augment=splits.augmenter(generator),
                    mixed_precision=autocast_dtype(self.device, settings.mixed_precision),
                )  # fmt: skip
                checkpoints.save(
                    {
                        "epoch": epoch,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "generator": generator.get_state(),
                        "masks": current_masks(model),
                        "removed_channels": removed_channels,
                        "dense_accuracy": dense_accuracy,
                        "dense_val_logits": dense_logits,
                    }
                )

        saved = checkpoints.latest()
        done = saved["epoch"] if saved else 0
        example = splits.train_x[:2]
        removed_channels = saved.get("removed_channels", []) if saved else []
        if saved:
            if removed_channels:
                self.pruning.replay(model, removed_channels, example)
            restore_masks(model, saved["masks"])
            model.load_state_dict(saved["model"])
            generator.set_state(saved["generator"])
        if done < dense_epochs:
            optimizer = make_optimizer(model, settings.lr, settings.weight_decay)
            if saved:
                optimizer.load_state_dict(saved["optimizer"])
            fit(range(done + 1, dense_epochs + 1), optimizer, None, None, [])
        if done <= dense_epochs:
            dense_accuracy = accuracy(model, splits.val_x, splits.val_y)
            dense_logits = logits_of(model, splits.val_x)
            if structural:
                removed_channels = self.pruning.apply(model, candidate.sparsity, example)
            optimizer = make_optimizer(model, finetune_lr, settings.weight_decay)
        else:
            dense_accuracy = saved["dense_accuracy"]
            dense_logits = saved["dense_val_logits"].to(self.device)
            optimizer = make_optimizer(model, finetune_lr, settings.weight_decay)
            optimizer.load_state_dict(saved["optimizer"])
        fit(
            range(max(done, dense_epochs) + 1, total_epochs + 1),
            optimizer,
            dense_accuracy,
            dense_logits,
            removed_channels,
        )
        if not structural:
            self.pruning.apply(model, candidate.sparsity)  # final ratios, even without fine-tuning
        make_permanent(model)
        preserved = preservation_metrics(
            logits_of(model, splits.val_x), dense_logits, splits.val_y, splits.n_classes
        )
        result = TrialResult(
            accuracy=accuracy(model, splits.val_x, splits.val_y),
            nonzero_params=counting.nonzero_params(model),
            flops=counting.sparse_flops(model, splits.in_shape),
            test_accuracy=accuracy(model, splits.test_x, splits.test_y),
            dense_accuracy=dense_accuracy,
            dense_params=dense_params,
            dense_flops=dense_flops,
            sparsity_target=dict(candidate.sparsity),
            sparsity_achieved=achieved_sparsity(model, dense_counts),
            train_epochs=total_epochs,
            resumed_from_epoch=done,
            removed_channels=removed_channels,
            **preserved,
            seconds=round(time.perf_counter() - started, 3),
            arch=space.describe(candidate),
        )
        return result, model.eval()

    def objective(
        self,
        seed: int,
        checkpoints_for: Callable[[optuna.Trial], Checkpoints] | None = None,
        on_result: Callable[[optuna.Trial, TrialResult, nn.Module], None] | None = None,
    ) -> Callable[[optuna.Trial], tuple[float, int, int]]:
        """An Optuna objective: sample a candidate, `run` it with weights seeded by `seed`
        plus the trial's number (a retry keeps its original trial's number), checkpointing
        into `checkpoints_for(trial)`; store the user attrs, hand the result and the pruned
        model to `on_result`, and return the objectives."""

        def objective(trial: optuna.Trial) -> tuple[float, int, int]:
            checkpoints = checkpoints_for(trial) if checkpoints_for else NO_CHECKPOINTS
            number = (retry_history(trial) or [trial.number])[0]
            result, model = self.run(self.space.sample(trial), seed + number, checkpoints)
            for key, value in result.user_attrs().items():
                trial.set_user_attr(key, value)
            if on_result:
                on_result(trial, result, model)
            return result.values()

        return objective

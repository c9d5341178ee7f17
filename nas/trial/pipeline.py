"""One trial in phases: dense weights -> prune -> fine-tune -> measure.

`TrialPipeline.run` takes one candidate through the phases, each a method, with its state
in a `TrialRun`. The dense weights come from the first source that has them: a checkpoint
of an earlier try, the dense cache, `dense_source` (a slice of a supernet), or training
from scratch. The pruning method decides what happens before, during and after
fine-tuning (`nas.prune.methods.PruningMethod`).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from nas.data import Splits
from nas.prune import counting
from nas.prune.allocation import allocate
from nas.prune.methods import (
    PruningMethod,
    Removals,
    achieved_sparsity,
    current_masks,
    make_permanent,
    restore_masks,
    weight_counts,
)
from nas.prune.schedule import ONE_SHOT, Schedule
from nas.space import Candidate, SearchSpace
from nas.trial.checkpoint import NO_CHECKPOINTS, Checkpoints
from nas.trial.dense_cache import DenseCache, DenseState
from nas.trial.distill import Distillation, cross_entropy
from nas.trial.early_exit import SkipFinetune
from nas.trial.latency import forward_seconds
from nas.trial.metrics import logits_of, preservation_metrics, top1_accuracy
from nas.trial.objectives import Objectives
from nas.trial.result import TrialResult, training_flops
from nas.trial.run_state import Progress, TrialRun
from nas.trial.train import (
    TrainSettings,
    accuracy,
    autocast_dtype,
    make_optimizer,
    recalibrate_batchnorm,
    seed_everything,
    train_epoch,
)

# Where a candidate's dense weights come from instead of dense training: a state_dict for
# `space.build(candidate)` (e.g. sliced out of a weight-sharing supernet).
DenseSource = Callable[[Candidate], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class TrialPipeline:
    """What every trial shares: the space, the data (already on `device`), the pruning
    method with its schedule, the training settings, the cache of dense weights and, when
    fine-tuning distils from the dense parent, the `distill` loss. `run` takes one
    candidate through the pipeline and measures what the `objectives` need."""

    space: SearchSpace
    splits: Splits
    pruning: PruningMethod
    settings: TrainSettings
    device: torch.device
    schedule: Schedule = ONE_SHOT
    dense_cache: DenseCache = field(default_factory=lambda: DenseCache(0))
    distill: Distillation | None = None
    objectives: Objectives = field(default_factory=Objectives)
    dense_source: DenseSource | None = None
    recalibration_images: int = 512

    def planned_epochs(self, candidate: Candidate, seed: int) -> float:
        """Training epochs `run` will spend on `candidate`: fine-tuning alone when its dense
        weights are cached, fine-tuning and recalibration when they are sliced out of
        `dense_source`, dense training plus fine-tuning otherwise."""
        if self.dense_cache.holds(candidate.arch, seed):
            return self.settings.finetune_epochs
        if self.dense_source is not None:
            return self.settings.finetune_epochs + self._recalibration_epochs()
        return self.settings.finetune_epochs + self.settings.epochs

    def _recalibrated_images(self) -> int:
        """How many training images a sliced network's BatchNorm is recalibrated on."""
        return min(self.recalibration_images, len(self.splits.train_x))

    def _recalibration_epochs(self) -> float:
        """What recalibrating BatchNorm costs in epochs: a forward pass over each of its
        images, a third of what training on it costs (see `training_flops`)."""
        return self._recalibrated_images() / (3 * len(self.splits.train_x))

    def steps_per_epoch(self) -> int:
        """Training steps (batches) in one pass over the training set."""
        return math.ceil(len(self.splits.train_x) / self.settings.batch_size)

    def finetune_steps(self) -> int:
        """Fine-tuning steps of a run, over all its fine-tuning epochs: the steps the
        schedule spreads its pruning over."""
        return self.settings.finetune_epochs * self.steps_per_epoch()

    def finetuning(self, epochs: int) -> TrialPipeline:
        """This pipeline, fine-tuning `epochs` epochs."""
        return replace(self, settings=replace(self.settings, finetune_epochs=epochs))

    def run(
        self,
        candidate: Candidate,
        seed: int,
        checkpoints: Checkpoints = NO_CHECKPOINTS,
        skip_finetune: SkipFinetune | None = None,
    ) -> tuple[TrialResult, nn.Module]:
        """Train, prune, fine-tune and evaluate `candidate`, its weights seeded by `seed`;
        returns what was measured and the pruned model (masks folded, in eval mode).

        Dense weights come from a checkpoint of an earlier try when `checkpoints` holds
        one (training then resumes after its epoch), else from the cache when it holds
        `candidate.arch` and `seed`, else from `dense_source` when there is one (BatchNorm
        statistics then recalibrated on `recalibration_images` training images), else
        from dense training. After every epoch the training state goes to `checkpoints`.
        `skip_finetune`, when given, sees the candidate right after pruning and may end
        the trial there.
        """
        started = time.perf_counter()
        run = self._start(candidate, seed)
        saved = checkpoints.latest()
        if saved:
            self._resume(run, saved)
        else:
            self._load_dense(run)
        self._train_dense(run, checkpoints)
        if run.epoch <= self.settings.epochs:  # not pruned by an earlier try
            self._prune(run, skip_finetune)
        if run.finetuned:
            self._finetune(run, checkpoints)
        make_permanent(run.model)
        return self._measure(run, started), run.model.eval()

    def _start(self, candidate: Candidate, seed: int) -> TrialRun:
        """The candidate's network, freshly initialised from `seed`, and its dense counts."""
        splits = self.splits
        generator = seed_everything(seed)
        model = self.space.build(candidate, splits.in_shape, splits.n_classes).to(self.device)
        return TrialRun(
            candidate=candidate,
            seed=seed,
            model=model,
            generator=generator,
            example=splits.train_x[:2],
            dense_params=counting.dense_params(model),
            dense_flops=counting.dense_flops(model, splits.in_shape),
            dense_counts=weight_counts(model, candidate.layers),
        )

    def _resume(self, run: TrialRun, saved: dict) -> None:
        """Continue from the checkpoint `saved` of an earlier try: its shapes, masks,
        weights, batch order and progress, and the optimizer of the phase it was in."""
        run.epoch = run.resumed_from_epoch = saved["epoch"]
        pruned = run.epoch > self.settings.epochs
        run.progress = Progress.from_checkpoint(saved, pruned, self.device)
        self.pruning.replay(run.model, run.progress.removed_channels, run.example)
        restore_masks(run.model, saved["masks"])
        run.model.load_state_dict(saved["model"])
        run.generator.set_state(saved["generator"])
        if run.epoch != self.settings.epochs:  # at the last dense epoch, no optimizer goes on
            run.saved_optimizer = saved["optimizer"]
        if pruned and self.distill and run.progress.teacher is not None:
            splits = self.splits
            run.teacher = self.space.build(run.candidate, splits.in_shape, splits.n_classes)
            run.teacher.to(self.device).load_state_dict(run.progress.teacher)

    def _load_dense(self, run: TrialRun) -> None:
        """Dense weights without training: the cache's, else a slice of `dense_source`
        with BatchNorm recalibrated; the dense epochs then count as done."""
        run.cached = self.dense_cache.get(run.candidate.arch, run.seed)
        if run.cached:
            run.model.load_state_dict(run.cached.weights)
            run.generator.set_state(run.cached.generator)
        elif self.dense_source is not None:
            run.model.load_state_dict(self.dense_source(run.candidate))
            images = self.splits.train_x[: self._recalibrated_images()]
            recalibrate_batchnorm(run.model, images, self.settings.batch_size)
            run.progress.dense_sliced = True
        if not run.dense_trained:
            run.epoch = self.settings.epochs

    def _train_dense(self, run: TrialRun, checkpoints: Checkpoints) -> None:
        """Train the dense network for the dense epochs not done yet."""
        if run.epoch < self.settings.epochs:
            optimizer = self._optimizer(run, self.settings.lr)
            self._train(run, range(run.epoch + 1, self.settings.epochs + 1), optimizer, checkpoints)

    def _prune(self, run: TrialRun, skip_finetune: SkipFinetune | None) -> None:
        """Keep the dense state (in the cache, and as the teacher when distilling), work out
        the per-layer targets and prune as the method does before fine-tuning; or, when
        `skip_finetune` judges the candidate not worth it, prune it to its targets and end
        its training there."""
        model, splits = run.model, self.splits
        dense = run.cached or self._dense_state(model, run.generator)
        if not run.cached:
            self.dense_cache.put(run.candidate.arch, run.seed, dense)
        targets, rule_ratios = self._targets(run.candidate, model, run.seed)
        run.teacher = copy.deepcopy(model) if self.distill else None
        removed: Removals = []
        if skip_finetune is not None:
            pruned = copy.deepcopy(model)
            pruned_channels = self.pruning.apply(pruned, targets, run.example)
            make_permanent(pruned)
            if skip_finetune(
                dense.accuracy,
                accuracy(pruned, splits.val_x, splits.val_y),
                counting.nonzero_params(pruned),
                counting.sparse_flops(pruned, splits.in_shape),
            ):
                run.model, removed, run.finetuned = pruned, pruned_channels, False
        if run.finetuned:
            removed = self.pruning.before_finetuning(model, targets, run.example)
        run.progress = Progress(
            dense_sliced=run.progress.dense_sliced,
            removed_channels=removed,
            dense_accuracy=dense.accuracy,
            dense_val_logits=dense.val_logits,
            sparsity_target=targets,
            sparsity_rule=rule_ratios,
            teacher=run.teacher.state_dict() if run.teacher else None,
        )

    def _finetune(self, run: TrialRun, checkpoints: Checkpoints) -> None:
        """Fine-tune the fine-tuning epochs not done yet, pruning as the schedule says
        (distilling from the dense network when `distill` is set), then reach the final
        ratios."""
        settings = self.settings
        optimizer = self._optimizer(run, settings.lr * settings.finetune_lr_scale)
        total = settings.epochs + settings.finetune_epochs
        self._train(run, range(run.epoch + 1, total + 1), optimizer, checkpoints)
        self.pruning.after_finetuning(run.model, run.progress.sparsity_target, run.example)

    def _measure(self, run: TrialRun, started: float) -> TrialResult:
        """Everything the study records of the pruned (masks folded) network `run.model`."""
        model, splits, settings = run.model, self.splits, self.settings
        sliced = run.progress.dense_sliced
        val_logits = logits_of(model, splits.val_x)
        preserved = preservation_metrics(
            val_logits, run.progress.dense_val_logits, splits.val_y, splits.n_classes
        )
        dense_trained = settings.epochs if run.dense_trained else 0
        finetune_trained = settings.finetune_epochs if run.finetuned else 0
        recalibrated = self._recalibrated_images() if sliced else 0
        # 0, not 0.0: a trial trained from scratch still records whole epochs
        recalibration_epochs = self._recalibration_epochs() if sliced else 0
        # fine-tuning trains the network as pruning left its shapes
        finetune_flops = counting.dense_flops(model, splits.in_shape)
        return TrialResult(
            accuracy=top1_accuracy(val_logits, splits.val_y),
            nonzero_params=counting.nonzero_params(model),
            flops=counting.sparse_flops(model, splits.in_shape),
            test_accuracy=accuracy(model, splits.test_x, splits.test_y),
            dense_accuracy=run.progress.dense_accuracy,
            dense_params=run.dense_params,
            dense_flops=run.dense_flops,
            sparsity_target=dict(run.progress.sparsity_target),
            sparsity_achieved=achieved_sparsity(model, run.dense_counts),
            train_epochs=dense_trained + finetune_trained + recalibration_epochs,
            train_flops=training_flops(
                len(splits.train_x),
                (dense_trained, run.dense_flops),
                (finetune_trained, finetune_flops),
            )
            + recalibrated * run.dense_flops,
            recalibration_epochs=recalibration_epochs,
            resumed_from_epoch=run.resumed_from_epoch,
            dense_cached=run.cached is not None,
            dense_sliced=sliced,
            finetune_skipped=not run.finetuned,
            removed_channels=run.progress.removed_channels,
            **preserved,
            seconds=round(time.perf_counter() - started, 3),
            arch=self.space.describe(run.candidate),
            latency_ms=self._latency_ms(model) if "latency_ms" in self.objectives.names else None,
            sparsity_rule=run.progress.sparsity_rule,
        )

    def _optimizer(self, run: TrialRun, lr: float) -> torch.optim.Optimizer:
        """A fresh optimizer of `run.model` at `lr`, with the state of the checkpoint the
        run resumed from when it was saved in this phase."""
        optimizer = make_optimizer(run.model, lr, self.settings.weight_decay)
        if run.saved_optimizer is not None:
            optimizer.load_state_dict(run.saved_optimizer)
            run.saved_optimizer = None
        return optimizer

    def _train(
        self,
        run: TrialRun,
        epochs: range,
        optimizer: torch.optim.Optimizer,
        checkpoints: Checkpoints,
    ) -> None:
        """Train `epochs`, pruning as the schedule says once there are targets, distilling
        from `run.teacher` when there is one; checkpoint the run after each epoch."""
        splits, settings = self.splits, self.settings
        loss_fn = self.distill.against(run.teacher) if run.teacher else cross_entropy
        for epoch in epochs:
            train_epoch(
                run.model, splits.train_x, splits.train_y, optimizer, settings.batch_size,
                run.generator, before_step=self._pruning_steps(run, epoch),
                augment=splits.augmenter(run.generator),
                mixed_precision=autocast_dtype(self.device, settings.mixed_precision),
                loss_fn=loss_fn,
            )  # fmt: skip
            run.epoch = epoch
            checkpoints.save(
                {
                    **run.progress.as_checkpoint(),
                    "epoch": epoch,
                    "model": run.model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "generator": run.generator.get_state(),
                    "masks": current_masks(run.model),
                }
            )

    def _latency_ms(self, model: nn.Module) -> float:
        """Milliseconds per forward pass of a validation batch (`train.batch_size`
        samples) on the pipeline's device: median of 20 after 5 untimed passes."""
        batch = self.splits.val_x[: self.settings.batch_size]
        return 1000 * forward_seconds(model.eval(), batch, warmup=5, repeats=20)

    def _dense_state(self, model: nn.Module, generator: torch.Generator) -> DenseState:
        """The trained dense model's state; its weights are copied only if the cache keeps
        them."""
        weights = (
            {key: value.detach().clone() for key, value in model.state_dict().items()}
            if self.dense_cache.size
            else {}
        )
        val_logits = logits_of(model, self.splits.val_x)
        return DenseState(
            weights=weights,
            generator=generator.get_state(),
            accuracy=top1_accuracy(val_logits, self.splits.val_y),
            val_logits=val_logits,
        )

    @staticmethod
    def _targets(
        candidate: Candidate, model: nn.Module, seed: int
    ) -> tuple[dict[str, float], dict[str, float] | None]:
        """Per-layer sparsity ratios: the candidate's own, or its allocation rule's share
        of its overall sparsity, moved by its shifts, computed from the dense weights and
        clipped to the space's per-layer caps. Second, when the candidate has shifts, the
        ratios the rule gives without them (clipped the same way); None otherwise."""
        if candidate.allocation is None:
            return dict(candidate.sparsity), None
        rule = candidate.allocation

        def shared(shifts: Mapping[str, float] | None) -> dict[str, float]:
            generator = torch.Generator().manual_seed(seed)
            ratios = allocate(rule.method, model, rule.layers, rule.sparsity, generator, shifts)
            return rule.clip(ratios)

        return shared(rule.shifts), shared(None) if rule.shifts else None

    def _pruning_steps(self, run: TrialRun, epoch: int) -> Callable[[int], None] | None:
        """What prunes before each step of fine-tuning `epoch` towards the run's targets,
        as the schedule says; None while training densely."""
        targets = run.progress.sparsity_target
        if targets is None:
            return None
        finetune_steps = self.finetune_steps()
        first_step = (epoch - self.settings.epochs - 1) * self.steps_per_epoch()

        def before_step(step: int) -> None:
            ratios = self.schedule.ratios_at(first_step + step, finetune_steps, targets)
            if ratios is not None:
                self.pruning.schedule_step(run.model, ratios)

        return before_step

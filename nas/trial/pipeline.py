"""One trial: sample -> build -> train dense -> prune per layer -> fine-tune -> evaluate."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

import optuna
import torch
from optuna.trial import TrialState
from torch import nn

from nas.data import Splits
from nas.prune import counting
from nas.prune.allocation import allocate
from nas.prune.methods import (
    ChannelPruning,
    MagnitudePruning,
    achieved_sparsity,
    current_masks,
    make_permanent,
    restore_masks,
    weight_counts,
)
from nas.prune.schedule import ONE_SHOT, Schedule
from nas.space import Candidate, SearchSpace
from nas.trial.checkpoint import NO_CHECKPOINTS, Checkpoints
from nas.trial.dense_cache import DenseCache, DenseState, arch_seed
from nas.trial.distill import Distillation, cross_entropy
from nas.trial.early_exit import NO_EARLY_EXIT, EarlyExit, SkipFinetune
from nas.trial.latency import forward_seconds
from nas.trial.metrics import logits_of, preservation_metrics, top1_accuracy
from nas.trial.objectives import DEFAULT, Objectives, metric, objective_names
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


def finished_measures(study: optuna.Study) -> list[tuple[float, ...]]:
    """(accuracy, nonzero params, FLOPs) of each finished trial of `study`, whatever its
    objectives."""
    names = objective_names(study)
    finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [tuple(metric(t, name, names) for name in DEFAULT) for t in finished]


def training_flops(samples: int, *phases: tuple[int, int]) -> int:
    """FLOPs of training on `samples` samples for each (epochs, forward FLOPs per sample)
    phase: forward and backward cost 3 forward passes (the backward pass twice the forward),
    counted as `flops` is (a multiply-add is 2 FLOPs)."""
    return sum(3 * samples * epochs * flops for epochs, flops in phases)


OPTIONAL_ATTRS = ("latency_ms", "sparsity_rule")
# A queued trial with this user attr fine-tunes that many epochs instead of the settings'.
FINETUNE_EPOCHS_ATTR = "finetune_epochs"


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
    train_epochs: float
    train_flops: int
    recalibration_epochs: float  # the part of train_epochs its BatchNorm recalibration cost
    resumed_from_epoch: int
    dense_cached: bool
    dense_sliced: bool
    finetune_skipped: bool
    removed_channels: list
    seconds: float
    arch: str
    latency_ms: float | None = None  # measured only when it is an objective
    sparsity_rule: dict[str, float] | None = None  # the rule's ratios without the shifts

    def values(self, objectives: Sequence[str] = DEFAULT) -> tuple[float, ...]:
        """The measures named by `objectives`, in that order."""
        return tuple(getattr(self, name) for name in objectives)

    def user_attrs(self, objectives: Sequence[str] = DEFAULT) -> dict:
        """Everything measured but the objectives, stored as trial user attributes;
        `latency_ms` and `sparsity_rule` only when there are some."""
        return {
            name: value
            for name, value in asdict(self).items()
            if name not in objectives and not (name in OPTIONAL_ATTRS and value is None)
        }


@dataclass(frozen=True)
class TrialPipeline:
    """What every trial shares: the space, the data (already on `device`), the pruning
    method with its schedule, the training settings, the cache of dense weights and, when
    fine-tuning distils from the dense parent, the `distill` loss. `run` takes one
    candidate through the pipeline and measures what the `objectives` need."""

    space: SearchSpace
    splits: Splits
    pruning: MagnitudePruning | ChannelPruning
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

    def finetuning(self, epochs: int) -> TrialPipeline:
        """This pipeline, fine-tuning `epochs` epochs."""
        return replace(self, settings=replace(self.settings, finetune_epochs=epochs))

    def for_trial(self, user_attrs: Mapping[str, object]) -> TrialPipeline:
        """The pipeline a trial with `user_attrs` runs: fine-tuning the epochs it was
        queued with (`FINETUNE_EPOCHS_ATTR`), if any."""
        epochs = user_attrs.get(FINETUNE_EPOCHS_ATTR)
        return self if epochs is None else self.finetuning(int(epochs))

    def holds_dense(self, params: dict, seed: int) -> bool:
        """Whether the dense weights of the architecture that trial parameters `params`
        choose, in a search seeded by `seed`, are in the cache."""
        arch = self.space.sample(optuna.trial.FixedTrial(params)).arch
        return self.dense_cache.holds(arch, arch_seed(seed, arch))

    def run(
        self,
        candidate: Candidate,
        seed: int,
        checkpoints: Checkpoints = NO_CHECKPOINTS,
        skip_finetune: SkipFinetune | None = None,
    ) -> tuple[TrialResult, nn.Module]:
        """Train, prune, fine-tune and evaluate `candidate`, its weights seeded by `seed`;
        returns what was measured and the pruned model (masks folded, in eval mode).

        Dense weights come from the cache when it holds `candidate.arch` and `seed`, else
        from `dense_source` when there is one (BatchNorm statistics then recalibrated on
        `recalibration_images` training images), else from dense training. After
        every epoch the training state goes to `checkpoints`; when `checkpoints` already
        holds one (a retried trial), training resumes after that epoch. `skip_finetune`,
        when given, sees the candidate right after pruning and may end the trial there.
        """
        started = time.perf_counter()
        space, splits, settings = self.space, self.splits, self.settings
        generator = seed_everything(seed)
        model = space.build(candidate, splits.in_shape, splits.n_classes).to(self.device)
        dense_params = counting.dense_params(model)
        dense_flops = counting.dense_flops(model, splits.in_shape)
        dense_epochs = settings.epochs
        total_epochs = settings.epochs + settings.finetune_epochs
        structural = getattr(self.pruning, "restructures", False)  # channels removed once
        dense_counts = weight_counts(model, candidate.layers)
        example = splits.train_x[:2]
        steps_per_epoch = math.ceil(len(splits.train_x) / settings.batch_size)

        def fit(epochs: range, optimizer: torch.optim.Optimizer, state: dict, teacher=None) -> None:
            """Train `epochs`, pruning as the schedule says towards `state`'s targets once
            dense training is over, distilling from `teacher` when given; checkpoint
            `state` plus the training state each epoch."""
            loss_fn = self.distill.against(teacher) if teacher else cross_entropy
            for epoch in epochs:
                train_epoch(
                    model, splits.train_x, splits.train_y, optimizer, settings.batch_size,
                    generator, before_step=self._pruning_steps(
                        model, epoch, steps_per_epoch, state["sparsity_target"]
                    ),
                    augment=splits.augmenter(generator),
                    mixed_precision=autocast_dtype(self.device, settings.mixed_precision),
                    loss_fn=loss_fn,
                )  # fmt: skip
                checkpoints.save(
                    {
                        **state,
                        "epoch": epoch,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "generator": generator.get_state(),
                        "masks": current_masks(model),
                    }
                )

        saved = checkpoints.latest()
        cached = None if saved else self.dense_cache.get(candidate.arch, seed)
        # a resumed trial was sliced when the try its checkpoint comes from was
        sliced = (
            saved.get("dense_sliced", False)
            if saved
            else (cached is None and self.dense_source is not None)
        )
        done = saved["epoch"] if saved else (dense_epochs if cached or sliced else 0)
        if saved:
            if saved["removed_channels"]:
                self.pruning.replay(model, saved["removed_channels"], example)
            restore_masks(model, saved["masks"])
            model.load_state_dict(saved["model"])
            generator.set_state(saved["generator"])
        elif cached:
            model.load_state_dict(cached.weights)
            generator.set_state(cached.generator)
        elif sliced:
            model.load_state_dict(self.dense_source(candidate))
            images = splits.train_x[: self._recalibrated_images()]
            recalibrate_batchnorm(model, images, settings.batch_size)
        dense_state = {
            "dense_sliced": sliced,
            "removed_channels": [],
            "dense_accuracy": None,
            "dense_val_logits": None,
            "sparsity_target": None,
            "sparsity_rule": None,
            "teacher": None,
        }
        if done < dense_epochs:
            optimizer = make_optimizer(model, settings.lr, settings.weight_decay)
            if saved:
                optimizer.load_state_dict(saved["optimizer"])
            fit(range(done + 1, dense_epochs + 1), optimizer, dense_state)

        finetune_lr = settings.lr * settings.finetune_lr_scale
        optimizer = make_optimizer(model, finetune_lr, settings.weight_decay)
        finetuned = True
        if done <= dense_epochs:
            dense = cached or self._dense_state(model, generator)
            if not cached:
                self.dense_cache.put(candidate.arch, seed, dense)
            targets, rule_ratios = self._targets(candidate, model, seed)
            teacher = copy.deepcopy(model) if self.distill else None
            removed_channels = []
            if skip_finetune is not None:
                pruned = copy.deepcopy(model)
                pruned_channels = self._prune_to(pruned, targets, example)
                make_permanent(pruned)
                if skip_finetune(
                    dense.accuracy,
                    accuracy(pruned, splits.val_x, splits.val_y),
                    counting.nonzero_params(pruned),
                    counting.sparse_flops(pruned, splits.in_shape),
                ):
                    model, removed_channels, finetuned = pruned, pruned_channels, False
            if finetuned and structural:
                removed_channels = self._prune_to(model, targets, example)
                optimizer = make_optimizer(model, finetune_lr, settings.weight_decay)
            state = {
                "dense_sliced": sliced,
                "removed_channels": removed_channels,
                "dense_accuracy": dense.accuracy,
                "dense_val_logits": dense.val_logits,
                "sparsity_target": targets,
                "sparsity_rule": rule_ratios,
                "teacher": teacher.state_dict() if teacher else None,
            }
        else:
            optimizer.load_state_dict(saved["optimizer"])
            state = {key: saved.get(key) for key in dense_state}
            state["dense_val_logits"] = state["dense_val_logits"].to(self.device)
            targets = state["sparsity_target"]
            teacher = None
            if self.distill and state["teacher"] is not None:
                teacher = space.build(candidate, splits.in_shape, splits.n_classes)
                teacher.to(self.device).load_state_dict(state["teacher"])
        if finetuned:
            fit(range(max(done, dense_epochs) + 1, total_epochs + 1), optimizer, state, teacher)
            if not structural:
                self._prune_to(model, targets, example)  # final ratios, even without fine-tuning
        make_permanent(model)
        val_logits = logits_of(model, splits.val_x)
        preserved = preservation_metrics(
            val_logits, state["dense_val_logits"], splits.val_y, splits.n_classes
        )
        dense_trained = 0 if cached or sliced else dense_epochs
        finetune_trained = settings.finetune_epochs if finetuned else 0
        recalibrated = self._recalibrated_images() if sliced else 0
        # 0, not 0.0: a trial trained from scratch still records whole epochs
        recalibration_epochs = self._recalibration_epochs() if sliced else 0
        finetune_flops = counting.dense_flops(model, splits.in_shape) if structural else dense_flops
        result = TrialResult(
            accuracy=top1_accuracy(val_logits, splits.val_y),
            nonzero_params=counting.nonzero_params(model),
            flops=counting.sparse_flops(model, splits.in_shape),
            test_accuracy=accuracy(model, splits.test_x, splits.test_y),
            dense_accuracy=state["dense_accuracy"],
            dense_params=dense_params,
            dense_flops=dense_flops,
            sparsity_target=dict(targets),
            sparsity_achieved=achieved_sparsity(model, dense_counts),
            train_epochs=dense_trained + finetune_trained + recalibration_epochs,
            train_flops=training_flops(
                len(splits.train_x),
                (dense_trained, dense_flops),
                (finetune_trained, finetune_flops),
            )
            + recalibrated * dense_flops,
            recalibration_epochs=recalibration_epochs,
            resumed_from_epoch=done if saved else 0,
            dense_cached=cached is not None,
            dense_sliced=sliced,
            finetune_skipped=not finetuned,
            removed_channels=state["removed_channels"],
            **preserved,
            seconds=round(time.perf_counter() - started, 3),
            arch=space.describe(candidate),
            latency_ms=self._latency_ms(model) if "latency_ms" in self.objectives.names else None,
            sparsity_rule=state["sparsity_rule"],
        )
        return result, model.eval()

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

    def _prune_to(self, model: nn.Module, targets: dict[str, float], example: torch.Tensor):
        """Prune `model` to `targets`; returns the channels removed (structural pruning)."""
        if getattr(self.pruning, "restructures", False):
            return self.pruning.apply(model, targets, example)
        self.pruning.apply(model, targets)
        return []

    def _pruning_steps(
        self,
        model: nn.Module,
        epoch: int,
        steps_per_epoch: int,
        targets: dict[str, float] | None,
    ) -> Callable[[int], None] | None:
        """What prunes before each step of fine-tuning `epoch` towards `targets`, as the
        schedule says; None while training densely and for structural pruning."""
        if targets is None or getattr(self.pruning, "restructures", False):
            return None
        finetune_steps = self.settings.finetune_epochs * steps_per_epoch
        first_step = (epoch - self.settings.epochs - 1) * steps_per_epoch

        def before_step(step: int) -> None:
            ratios = self.schedule.ratios_at(first_step + step, finetune_steps, targets)
            if ratios is not None:
                self.pruning.apply(model, ratios)

        return before_step

    def objective(
        self,
        seed: int,
        checkpoints_for: Callable[[optuna.Trial], Checkpoints] | None = None,
        on_result: Callable[[optuna.Trial, TrialResult, nn.Module], None] | None = None,
        before_run: Callable[[optuna.Trial, float], None] | None = None,
        early_exit: EarlyExit = NO_EARLY_EXIT,
    ) -> Callable[[optuna.Trial], tuple[float, ...]]:
        """An Optuna objective: sample a candidate and `run` it with weights seeded by
        `seed` and its architecture (trials of one architecture share dense weights),
        checkpointing into `checkpoints_for(trial)`. `before_run(trial, epochs)` sees the
        epochs the run will spend first and may refuse it (raise `optuna.TrialPruned`);
        `early_exit` may end the run before fine-tuning, judged against the study's
        finished trials, unless the trial was queued with its own fine-tuning epochs
        (`for_trial`). Stores the user attrs, hands the result and the pruned model to
        `on_result`, and returns the objectives."""

        def objective(trial: optuna.Trial) -> tuple[float, ...]:
            pipeline = self.for_trial(trial.user_attrs)
            candidate = self.space.sample(trial)
            trial_seed = arch_seed(seed, candidate.arch)
            if before_run:
                before_run(trial, pipeline.planned_epochs(candidate, trial_seed))
            checkpoints = checkpoints_for(trial) if checkpoints_for else NO_CHECKPOINTS
            own_epochs = FINETUNE_EPOCHS_ATTR in trial.user_attrs
            skip = None if own_epochs else early_exit.judge(lambda: finished_measures(trial.study))
            result, model = pipeline.run(candidate, trial_seed, checkpoints, skip)
            for key, value in result.user_attrs(self.objectives.names).items():
                trial.set_user_attr(key, value)
            if on_result:
                on_result(trial, result, model)
            return result.values(self.objectives.names)

        return objective

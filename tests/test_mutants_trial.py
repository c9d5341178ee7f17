"""Exact behaviour of the trial's weight code (nas/trial/) that the broader tests leave open:
the weight seed of an architecture, what a training epoch returns, says and does with
gradients and autocast, the optimizer's order and rate, the distillation loss, and what the
pipeline's phases hand each other (cached weights, checkpoints, the teacher, removed
channels, the rule's ratios, the schedule's steps, the early stop's numbers), on tiny
networks and a few generated images."""

from __future__ import annotations

import copy
import json
import math
import re
import zlib
from collections.abc import Mapping

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas.data.splits import Splits, augment_batch, splits_to
from nas.prune.allocation import allocate
from nas.prune.methods import ChannelPruning, MagnitudePruning
from nas.prune.schedule import ONE_SHOT, Iterative
from nas.space import Allocation, Candidate
from nas.trial.dense_cache import DenseCache, DenseState, arch_seed
from nas.trial.distill import Distillation
from nas.trial.pipeline import TrialPipeline
from nas.trial.train import TrainSettings, make_optimizer, train_epoch

CPU = torch.device("cpu")
SEED = 7


# --- a tiny space, data and settings ---------------------------------------------------------


class TinySpace:
    """(1, 4, 4) images -> `hidden` units -> classes; prunable layers "hidden" and "head"."""

    def sample(self, trial) -> Candidate:
        return Candidate({"hidden": trial.suggest_categorical("arch.hidden", [8])})

    def build(self, candidate: Candidate, in_shape: tuple[int, ...], n_classes: int) -> nn.Module:
        model = nn.Sequential()
        model.add_module("flatten", nn.Flatten())
        model.add_module("hidden", nn.Linear(math.prod(in_shape), candidate.arch["hidden"]))
        model.add_module("act", nn.ReLU())
        model.add_module("head", nn.Linear(candidate.arch["hidden"], n_classes))
        return model

    def describe(self, candidate: Candidate) -> str:
        return f"tiny {candidate.arch['hidden']}"


class Watched(TinySpace):
    """The tiny space, `note(inputs, output)` called on each training pass through the
    module `which(model)` picks."""

    def __init__(self, which, note) -> None:
        self.which, self.note = which, note

    def build(self, candidate: Candidate, in_shape: tuple[int, ...], n_classes: int) -> nn.Module:
        model = super().build(candidate, in_shape, n_classes)
        self.which(model).register_forward_hook(
            lambda module, inputs, output: self.note(inputs, output) if module.training else None
        )
        return model


def tiny_data(augment: str | None = None) -> Splits:
    """8 (1, 4, 4) images to train on (2 batches of 4), 4 to validate, 4 to test; 3 classes."""
    x = torch.randn(16, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    y = torch.arange(16) % 3
    return Splits(x[:8], y[:8], x[8:12], y[8:12], x[12:], y[12:], n_classes=3, augment=augment)


def train_settings(**values) -> TrainSettings:
    defaults = {
        "epochs": 1, "finetune_epochs": 1, "batch_size": 4, "lr": 0.01,
        "finetune_lr_scale": 0.5, "weight_decay": 0.0, "mixed_precision": False,
    }  # fmt: skip
    return TrainSettings(**defaults | values)


def pipeline(pruning=None, data: Splits | None = None, **values) -> TrialPipeline:
    """The tiny space's pipeline; `values` are TrainSettings' fields or TrialPipeline's."""
    fields = set(TrainSettings.__dataclass_fields__)
    settings = train_settings(**{k: v for k, v in values.items() if k in fields})
    return TrialPipeline(
        TinySpace(), data or tiny_data(), pruning or MagnitudePruning(), settings, CPU,
        **{k: v for k, v in values.items() if k not in fields},
    )  # fmt: skip


def candidate(hidden: float = 0.5, head: float = 0.25) -> Candidate:
    return Candidate({"hidden": 8}, {"hidden": hidden, "head": head})


class Kept:
    """Checkpoints kept in a list; `latest` is the one given, if any."""

    def __init__(self, latest: dict | None = None) -> None:
        self.saved: list[dict] = []
        self._latest = latest

    def latest(self) -> dict | None:
        return self._latest

    def save(self, state: dict) -> None:
        self.saved.append(copy.deepcopy(state))


def same_tensors(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[key], b[key]) for key in a)


# --- the weight seed --------------------------------------------------------------------------


def test_the_weight_seed_is_the_architectures_crc32_stepped_by_2654435761_a_seed_in_32_bits():
    arch = {"hidden": 8, "channels": [4, 8]}
    crc = zlib.crc32(json.dumps(arch, sort_keys=True).encode())
    assert arch_seed(0, arch) == crc
    for seed in range(1, 6):  # crc + seed * 2654435761 passes 2^32 and 2^33 on the way
        assert arch_seed(seed, arch) == (arch_seed(seed - 1, arch) + 2654435761) % 2**32
        assert 0 <= arch_seed(seed, arch) < 2**32
    assert arch_seed(5, arch) == (crc + 5 * 2654435761) % 2**32


def test_the_cache_finds_an_architecture_whatever_the_order_of_its_choices():
    cache = DenseCache(1)
    state = DenseState({}, torch.zeros(1), 0.5, torch.zeros(1))
    cache.put({"hidden": 8, "depth": 2}, SEED, state)
    assert cache.holds({"depth": 2, "hidden": 8}, SEED)
    assert cache.get({"depth": 2, "hidden": 8}, SEED) is state


def test_a_cache_size_below_zero_is_refused_naming_the_setting_and_the_value():
    message = "dense cache size must be a whole number >= 0, got -1"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        DenseCache(-1)


# --- one training epoch -----------------------------------------------------------------------


def tiny_model() -> nn.Sequential:
    torch.manual_seed(0)
    return TinySpace().build(Candidate({"hidden": 8}), (1, 4, 4), 3)


def test_an_epoch_returns_the_mean_of_its_batches_losses():
    # Weights that do not move (learning rate 0) and two batches of 4: the mean of the two
    # batches' losses is the loss over all 8 images.
    data, model = tiny_data(), tiny_model()
    with torch.no_grad():
        expected = F.cross_entropy(model(data.train_x), data.train_y).item()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    loss = train_epoch(
        model, data.train_x, data.train_y, optimizer, 4, torch.Generator().manual_seed(0)
    )
    assert loss == pytest.approx(expected, rel=1e-6)


def test_a_loss_that_is_not_finite_stops_the_epoch_naming_the_training_loss():
    data, model = tiny_data(), tiny_model()
    x = data.train_x.clone()
    x[5, 0, 1, 1] = float("nan")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    with pytest.raises(FloatingPointError, match="^training loss became nan$"):
        train_epoch(model, x, data.train_y, optimizer, 4, torch.Generator().manual_seed(0))


class Branching(nn.Module):
    """A linear head, plus a linear branch only for batches of more than 4 samples (as a
    network that drops a block now and then)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.head = nn.Linear(16, 3)
        self.branch = nn.Linear(16, 3)
        self.branch_at_last_batch: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        if len(x) > 4:
            return self.head(x) + self.branch(x)
        self.branch_at_last_batch = self.branch.weight.detach().clone()
        return self.head(x)


def test_a_parameter_a_batch_does_not_reach_is_left_alone_by_that_step():
    # 8 images in batches of 5 and 3: the branch learns from the first batch only. Its
    # gradient is dropped (None), not zeroed, so Adam's momentum does not move it on.
    data, model = tiny_data(), Branching()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    train_epoch(model, data.train_x, data.train_y, optimizer, 5, torch.Generator().manual_seed(0))
    assert model.branch.weight.grad is None
    assert torch.equal(model.branch.weight, model.branch_at_last_batch)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_the_forward_pass_runs_under_autocast_of_the_dtype_given(dtype):
    data, model = tiny_data(), tiny_model()
    seen = []
    model.head.register_forward_hook(lambda layer, inputs, output: seen.append(output.dtype))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    train_epoch(
        model, data.train_x, data.train_y, optimizer, 4, torch.Generator().manual_seed(0),
        mixed_precision=dtype,
    )  # fmt: skip
    assert seen == [dtype, dtype]


# --- the optimizer ----------------------------------------------------------------------------


class Gained(nn.Linear):
    """A linear layer with a second parameter named after its weight, `weight_gain`."""

    def __init__(self, inputs: int, outputs: int) -> None:
        super().__init__(inputs, outputs)
        self.weight_gain = nn.Parameter(torch.ones(outputs))


def test_the_optimizer_keeps_its_parameter_order_when_pruning_renames_a_weight():
    model = nn.Sequential(Gained(4, 3))
    before = make_optimizer(model, 0.25, 0.125)
    order = [id(p) for p in before.param_groups[0]["params"]]
    assert order == [id(model[0].bias), id(model[0].weight), id(model[0].weight_gain)]
    MagnitudePruning().apply(model, {"0": 0.5})  # "0.weight" becomes "0.weight_orig"
    after = make_optimizer(model, 0.25, 0.125)
    assert [id(p) for p in after.param_groups[0]["params"]] == order
    assert (after.param_groups[0]["lr"], after.param_groups[0]["weight_decay"]) == (0.25, 0.125)


# --- distillation -----------------------------------------------------------------------------


@pytest.mark.filterwarnings("error")
def test_the_distillation_loss_softens_each_samples_logits_over_its_classes_and_warns_nothing():
    student = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    teacher = torch.tensor([[2.0, 0.0, 1.0], [1.0, 1.0, -2.0]])
    labels = torch.tensor([1, 2])
    t, weight = 2.0, 0.25
    p_teacher = torch.softmax(teacher / t, dim=1)
    kl = (p_teacher * (p_teacher.log() - torch.log_softmax(student / t, dim=1))).sum() / 2
    expected = (1 - weight) * F.cross_entropy(student, labels) + weight * t * t * kl
    loss = Distillation(temperature=t, weight=weight).loss(student, teacher, labels)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


# --- the pipeline's phases --------------------------------------------------------------------


def test_a_trial_trained_from_scratch_plans_its_dense_and_fine_tuning_epochs():
    assert pipeline(epochs=3, finetune_epochs=2).planned_epochs(candidate(), SEED) == 5


def test_a_cached_dense_state_gives_the_trial_its_weights_and_no_dense_training():
    # No fine-tuning and nothing pruned: the trial ends with the cached weights as they are.
    model = tiny_model()
    with torch.no_grad():
        for index, tensor in enumerate(model.parameters()):
            tensor.fill_(0.125 * (index + 1))
    weights = {key: value.clone() for key, value in model.state_dict().items()}
    cache = DenseCache(1)
    state = DenseState(
        weights, torch.Generator().manual_seed(3).get_state(), 0.625, torch.ones(4, 3)
    )
    cache.put({"hidden": 8}, SEED, state)
    pipe = pipeline(finetune_epochs=0, dense_cache=cache)
    result, pruned = pipe.run(candidate(0.0, 0.0), SEED)
    assert result.dense_cached and result.train_epochs == 0
    assert result.dense_accuracy == 0.625
    assert same_tensors(pruned.state_dict(), weights)


def test_each_epoch_is_checkpointed_once_numbered_from_one_and_a_resumed_run_goes_on():
    pipe = pipeline(epochs=2, finetune_epochs=1)
    first = Kept()
    pipe.run(candidate(), SEED, first)
    assert [saved["epoch"] for saved in first.saved] == [1, 2, 3]
    again = Kept(latest=first.saved[0])  # died after the first dense epoch
    pipe.run(candidate(), SEED, again)
    assert [saved["epoch"] for saved in again.saved] == [2, 3]
    assert same_tensors(again.saved[-1]["model"], first.saved[-1]["model"])


def test_fine_tuning_trains_at_the_learning_rate_times_its_scale():
    checkpoints = Kept()
    pipeline(lr=0.01, finetune_lr_scale=0.5).run(candidate(), SEED, checkpoints)
    dense, finetuned = (saved["optimizer"]["param_groups"][0]["lr"] for saved in checkpoints.saved)
    assert (dense, finetuned) == (0.01, 0.005)


def test_a_distilling_trials_checkpoints_keep_its_dense_network_as_the_teacher():
    checkpoints = Kept()
    pipe = pipeline(distill=Distillation(temperature=2.0, weight=0.5))
    pipe.run(candidate(), SEED, checkpoints)
    dense, finetuned = checkpoints.saved
    assert dense["teacher"] is None
    assert same_tensors(finetuned["teacher"], dense["model"])


def test_the_channels_pruning_removed_are_recorded_and_checkpointed():
    checkpoints = Kept()
    result, pruned = pipeline(ChannelPruning()).run(candidate(0.5, 0.0), SEED, checkpoints)
    assert len(result.removed_channels) == 1
    layer, channels = result.removed_channels[0]
    assert layer == "hidden" and len(channels) == 4  # half of 8, down to min_channels 4
    assert pruned.hidden.out_features == 4
    assert checkpoints.saved[-1]["removed_channels"] == result.removed_channels


def test_a_candidate_the_early_stop_skips_ends_pruned_with_the_numbers_it_was_judged_on():
    judged = []

    def skip(*numbers) -> bool:
        judged.append(numbers)
        return True

    pipe = pipeline(ChannelPruning())
    result, pruned = pipe.run(candidate(0.5, 0.0), SEED, skip_finetune=skip)
    assert result.finetune_skipped and result.train_epochs == 1
    assert judged == [(result.dense_accuracy, result.accuracy, result.nonzero_params, result.flops)]
    finetuned, _ = pipe.run(candidate(0.5, 0.0), SEED)  # the same dense network, pruned alike
    assert result.removed_channels == finetuned.removed_channels != []
    assert pruned.hidden.out_features == 4


def test_a_candidate_the_early_stop_lets_through_trains_as_without_an_early_stop():
    # Two rounds of pruning: the first, before step 0, prunes less than the targets.
    pipe = pipeline(schedule=Iterative(rounds=2))
    judged, judged_model = pipe.run(candidate(), SEED, skip_finetune=lambda *numbers: False)
    plain, plain_model = pipe.run(candidate(), SEED)
    assert not judged.finetune_skipped
    assert same_tensors(judged_model.state_dict(), plain_model.state_dict())
    assert judged.values() == plain.values()


def test_a_candidate_with_shifts_records_the_rules_ratios_without_them():
    shifted = Candidate(
        {"hidden": 8},
        allocation=Allocation("uniform", 0.5, ("hidden", "head"), shifts={"hidden": 1.0}),
    )
    result, _ = pipeline(finetune_epochs=0).run(shifted, SEED)
    assert result.sparsity_rule == {"hidden": 0.5, "head": 0.5}
    assert result.sparsity_target["hidden"] < 0.5 < result.sparsity_target["head"]


def test_a_random_allocation_draws_its_ratios_from_the_trials_seed():
    layers = ("hidden", "head")
    drawn = Candidate({"hidden": 8}, allocation=Allocation("random", 0.5, layers))
    result, _ = pipeline(finetune_epochs=0).run(drawn, SEED)
    # random densities depend on the layers' sizes only, not on their trained weights
    expected = allocate("random", tiny_model(), layers, 0.5, torch.Generator().manual_seed(SEED))
    assert result.sparsity_target == expected
    assert expected != allocate(
        "random", tiny_model(), layers, 0.5, torch.Generator().manual_seed(0)
    )


class AskedSteps:
    """One-shot pruning that notes every (step, total steps) it is asked about."""

    def __init__(self) -> None:
        self.asked: list[tuple[int, int]] = []

    def ratios_at(self, step, total_steps, final):
        self.asked.append((step, total_steps))
        return ONE_SHOT.ratios_at(step, total_steps, final)

    def misfit(self, total_steps):
        return None


def test_the_schedule_is_asked_about_each_fine_tuning_step_numbered_across_epochs():
    schedule = AskedSteps()
    pipeline(epochs=1, finetune_epochs=2, schedule=schedule).run(candidate(), SEED)
    assert schedule.asked == [(0, 4), (1, 4), (2, 4), (3, 4)]  # 2 epochs of 2 batches


class ExampleNoted(MagnitudePruning):
    """Magnitude pruning that notes the example batch each `after_finetuning` gets."""

    def __init__(self) -> None:
        self.examples: list[torch.Tensor | None] = []

    def after_finetuning(self, model, ratios, example) -> None:
        self.examples.append(example)
        super().after_finetuning(model, ratios, example)


def test_the_pruning_method_gets_an_example_batch_after_fine_tuning():
    pruning, data = ExampleNoted(), tiny_data()
    pipeline(pruning, data).run(candidate(), SEED)
    assert len(pruning.examples) == 1
    assert torch.equal(pruning.examples[0], data.train_x[:2])


def test_training_batches_are_augmented_from_the_trials_batch_order_generator():
    data, seen = tiny_data(augment="crop_flip"), []
    space = Watched(lambda model: model.flatten, lambda inputs, output: seen.append(inputs[0]))
    pipe = TrialPipeline(space, data, MagnitudePruning(), train_settings(finetune_epochs=0), CPU)
    pipe.run(candidate(0.0, 0.0), SEED)
    generator = torch.Generator().manual_seed(SEED)  # the trial's, as seed_everything makes it
    order = torch.randperm(8, generator=generator)
    first = augment_batch(data.train_x[order[:4]], "crop_flip", generator)
    assert len(seen) == 2 and torch.equal(seen[0], first)
    assert not torch.equal(first, data.train_x[order[:4]])


@pytest.mark.skipif(
    not (torch.cuda.is_available() and torch.cuda.is_bf16_supported()),
    reason="needs a CUDA GPU that supports bfloat16",
)
def test_a_trial_with_mixed_precision_on_a_gpu_trains_under_bfloat16_autocast():
    cuda, seen = torch.device("cuda"), []
    space = Watched(lambda model: model.head, lambda inputs, output: seen.append(output.dtype))
    settings = train_settings(mixed_precision=True)
    pipe = TrialPipeline(space, splits_to(tiny_data(), cuda), MagnitudePruning(), settings, cuda)
    result, _ = pipe.run(candidate(), SEED)
    assert seen == [torch.bfloat16] * 4  # 2 epochs of 2 batches
    assert math.isfinite(result.accuracy)

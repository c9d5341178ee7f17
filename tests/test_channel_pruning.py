"""prune=channel: whole output channels removed physically, coupled layers pruned together."""

from __future__ import annotations

import optuna
import pytest
import torch
from optuna.samplers import RandomSampler
from optuna.trial import FixedTrial
from torch import nn

from nas.errors import UsageError
from nas.prune import counting
from nas.prune.methods import ChannelPruning, achieved_sparsity, weight_counts
from nas.prune.schedule import OneShot
from nas.space import Candidate
from nas.trial.dense_cache import DenseCache
from nas.trial.pipeline import TrialPipeline
from nas.trial.train import TrainSettings
from search_spaces.cnn import CNNSpace
from search_spaces.mobilenet import MobileNetSpace
from search_spaces.resnet import ResNetSpace
from tests.conftest import conf_defaults
from tests.test_objective import PARAMS, Killed, MemoryCheckpoints

IN_SHAPE = (1, 12, 12)
EXAMPLE = torch.randn(2, *IN_SHAPE)


def test_channels_go_physically_and_counts_match_a_dense_rebuild_of_the_pruned_shape():
    space = CNNSpace()
    candidate = space.sample(FixedTrial(PARAMS))  # channels 8-8, hidden 32
    model = space.build(candidate, IN_SHAPE, 4).eval()
    ChannelPruning(min_channels=4).apply(model, candidate.sparsity, EXAMPLE)
    # block1 25 % of 8 -> 6; block2 50 % of 8 -> 4; hidden 90 % of 32 -> the 4 minimum
    assert model.block1.conv.out_channels == 6 and model.block2.conv.out_channels == 4
    assert model.hidden.out_features == 4 and model.head.out_features == 4
    pruned_shape = Candidate({"channels": [6, 4], "kernel_size": 3, "hidden": 4})
    rebuilt = space.build(pruned_shape, IN_SHAPE, 4)
    assert counting.dense_params(model) == counting.dense_params(rebuilt)
    assert counting.sparse_flops(model, IN_SHAPE) == counting.dense_flops(rebuilt, IN_SHAPE)
    assert model(EXAMPLE).shape == (2, 4)


@pytest.mark.slow
@pytest.mark.parametrize("space", [ResNetSpace(), MobileNetSpace()])
def test_residual_and_depthwise_dependencies_are_pruned_together(space):
    candidate = space.sample(optuna.create_study(sampler=RandomSampler(seed=3)).ask())
    model = space.build(candidate, IN_SHAPE, 4).eval()
    dense = counting.dense_params(model)
    removed = ChannelPruning().apply(model, {k: 0.5 for k in candidate.sparsity}, EXAMPLE)
    assert removed and counting.dense_params(model) < dense
    assert model(EXAMPLE).shape == (2, 4)


@pytest.mark.slow
def test_replaying_the_removals_on_a_fresh_model_gives_the_same_shapes():
    space = ResNetSpace()
    candidate = space.sample(optuna.create_study(sampler=RandomSampler(seed=3)).ask())
    pruned = space.build(candidate, IN_SHAPE, 4).eval()
    removed = ChannelPruning().apply(pruned, {k: 0.5 for k in candidate.sparsity}, EXAMPLE)
    fresh = space.build(candidate, IN_SHAPE, 4)
    ChannelPruning().replay(fresh, removed, EXAMPLE)
    assert removed
    assert shapes(fresh) == shapes(pruned)
    fresh.load_state_dict(pruned.state_dict())
    assert torch.equal(fresh.eval()(EXAMPLE), pruned(EXAMPLE))


def shapes(model: nn.Module) -> dict[str, torch.Size]:
    """Every parameter's shape, by name."""
    return {name: p.shape for name, p in model.named_parameters()}


def resnet(stem: int, widths: list[int], blocks: list[int]) -> nn.Module:
    """A dense ResNetSpace network of that shape, for 4 classes."""
    arch = {"stem_width": stem, "widths": widths, "blocks": blocks}
    return ResNetSpace().build(Candidate(arch), IN_SHAPE, 4).eval()


def test_residual_coupled_layers_lose_their_ratio_of_the_dense_channels_once():
    model = resnet(16, [16], [2])  # identity residuals: stem and both conv2 share channels
    coupled = ["stem.conv", "stage1.block1.conv2", "stage1.block2.conv2"]
    ChannelPruning().apply(model, dict.fromkeys(coupled, 0.25), EXAMPLE)
    assert [model.get_submodule(name).out_channels for name in coupled] == [12, 12, 12]
    assert model(EXAMPLE).shape == (2, 4)


def test_a_coupled_group_takes_the_largest_ratio_of_its_members():
    model = resnet(16, [16], [2])
    ratios = {"stem.conv": 0.25, "stage1.block1.conv2": 0.5, "stage1.block2.conv2": 0.0}
    ChannelPruning().apply(model, ratios, EXAMPLE)
    assert [model.get_submodule(name).out_channels for name in ratios] == [8, 8, 8]


def test_expansion_and_depthwise_convs_lose_their_ratio_of_the_hidden_channels_once():
    block = {"expansion": 6, "kernel_size": 3, "width": 16, "se": True}
    arch = {"stem_width": 16, "blocks": [block]}
    model = MobileNetSpace().build(Candidate(arch), IN_SHAPE, 4).eval()  # 96 hidden channels
    ratios = {"block1.expand.0": 0.5, "block1.depthwise.0": 0.5}
    ChannelPruning().apply(model, ratios, EXAMPLE)
    assert model.block1.expand[0].out_channels == 48
    assert model.block1.depthwise[0].out_channels == 48
    assert model.block1.se.fc2.out_channels == 48 and model.block1.project[0].in_channels == 48
    assert model(EXAMPLE).shape == (2, 4)


def test_every_layer_pruned_at_half_keeps_half_its_output_channels():
    model = resnet(16, [32], [2])  # a projection shortcut, then an identity residual
    layers = ResNetSpace.layer_names({"stem_width": 16, "widths": [32], "blocks": [2]})
    dense = {name: model.get_submodule(name).weight.shape[0] for name in layers}
    counts = weight_counts(model, layers)
    ChannelPruning().apply(model, dict.fromkeys(layers, 0.5), EXAMPLE)
    kept = {name: model.get_submodule(name).weight.shape[0] for name in layers}
    assert kept == {name: n if name == "head" else n // 2 for name, n in dense.items()}
    # outputs and inputs both halved: three quarters of the weights gone
    assert achieved_sparsity(model, counts)["stage1.block2.conv1"] == 0.75


class Classifier(nn.Module):
    """A custom network whose output layer is called `classifier`."""

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 3)
        self.hidden = nn.Linear(16, 32)
        self.classifier = nn.Linear(32, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = torch.relu(self.conv(x)).mean(dim=(2, 3))
        return self.classifier(torch.relu(self.hidden(features)))


def test_the_output_layer_keeps_its_class_outputs_whatever_its_name():
    model = Classifier(n_classes=10).eval()
    ChannelPruning().apply(model, {"conv": 0.9, "hidden": 0.9, "classifier": 0.9}, EXAMPLE)
    assert model.classifier.out_features == 10
    assert model(EXAMPLE).shape == (2, 10)
    assert model.conv.out_channels == 4 and model.hidden.out_features == 4


def pipeline(tiny_splits, finetune_epochs: int = 2, cache: DenseCache | None = None):
    settings = TrainSettings(
        **conf_defaults("train", epochs=1, finetune_epochs=finetune_epochs, batch_size=32)
    )
    return TrialPipeline(
        CNNSpace(), tiny_splits, ChannelPruning(), settings, torch.device("cpu"), OneShot(),
        dense_cache=DenseCache(0) if cache is None else cache,
    )  # fmt: skip


@pytest.mark.slow
def test_a_channel_pruned_trial_is_smaller_and_resumes_exactly(tiny_splits):
    pipe = pipeline(tiny_splits)
    candidate = CNNSpace().sample(FixedTrial(PARAMS))
    whole, _ = pipe.run(candidate, seed=0)
    assert whole.nonzero_params < whole.dense_params and whole.flops < whole.dense_flops
    assert whole.sparsity_achieved["block2.conv"] >= 0.5  # its outputs and inputs both went
    first_try = MemoryCheckpoints(die_after=2)  # after the first fine-tuning epoch
    with pytest.raises(Killed):
        pipe.run(candidate, seed=0, checkpoints=first_try)
    resumed, _ = pipe.run(candidate, seed=0, checkpoints=MemoryCheckpoints(first_try.saved))
    assert resumed.values() == whole.values()


@pytest.mark.slow
def test_fine_tuning_trains_the_channel_pruned_layers(tiny_splits):
    candidate, cache = CNNSpace().sample(FixedTrial(PARAMS)), DenseCache(1)
    _, just_pruned = pipeline(tiny_splits, 0, cache).run(candidate, seed=0)
    _, finetuned = pipeline(tiny_splits, 1, cache).run(candidate, seed=0)  # same dense weights
    before, after = just_pruned.block2.conv.weight, finetuned.block2.conv.weight
    assert before.shape == after.shape == (4, 6, 3, 3)  # both pruned, the same channels
    assert not torch.equal(before, after)


def test_channel_pruning_needs_the_one_shot_schedule(compose_config, tmp_path):
    from nas.studies.joint_search import run_search

    cfg = compose_config(
        "+space=cnn", "+debug=smoke", "prune=channel", "schedule=gradual", "study.name=x",
        f"study.storage=sqlite:///{tmp_path / 'x.db'}",
    )  # fmt: skip
    with pytest.raises(UsageError, match="use it with schedule=one_shot"):
        run_search(cfg, launch_dir=tmp_path, run_dir=tmp_path / "run")
    assert not (tmp_path / "x.db").exists()

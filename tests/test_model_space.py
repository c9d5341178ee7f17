"""A search space derived from any network (`nas.ModelSpace`): its groups of coupled
channels, what it refuses, and exact slices."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import optuna
import pytest
import torch
from torch import nn

import nas
from nas.derive.depth import BlockRun
from nas.derive.space import adapt_first_conv
from nas.search.reference import ReferenceTrial
from nas.space import Candidate
from tests.conftest import conf_defaults, forked_nas

sys.path.insert(0, str(Path(__file__).parent / "data" / "user_model"))
from my_net import UserNet  # noqa: E402  (the user's own class, as in their folder)

USER_MODEL = Path(__file__).parent / "data" / "user_model" / "my_net.py"
IN_SHAPE = (1, 12, 12)


def user_space(**options) -> nas.ModelSpace:
    return nas.ModelSpace.from_model(UserNet(), torch.zeros(2, *IN_SHAPE), **options)


def test_coupled_channels_form_one_group_and_the_classifier_is_frozen():
    space = user_space()
    groups = {group.name: group.layers for group in space.groups}
    # the residual add ties stem and body, the depthwise conv follows them; cat keeps the
    # two branches apart
    assert groups == {"stem": ("stem", "body", "depthwise"), "left": ("left",), "right": ("right",)}
    assert [(f.layers, f.reason) for f in space.frozen] == [
        (("head",), "head computes the network's outputs (the classes)")
    ]
    assert space.layers == ["stem", "body", "depthwise", "left", "right", "head"]


def test_widths_are_shares_rounded_to_the_multiple_and_named_by_the_group():
    space = user_space(widths=(0.25, 0.5, 1.0), multiple=8)
    trial = optuna.create_study().ask()
    candidate = space.sample(trial)
    assert trial.distributions["arch.right.width"].choices == (8, 16, 32)
    assert trial.distributions["arch.stem.width"].choices == (8, 16)  # 0.25 * 16 -> 8
    assert set(candidate.arch) == {"stem", "left", "right"}


class Chunked(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 16, 3)
        self.head = nn.Linear(8, 4)

    def forward(self, x):
        a, b = self.conv(x).chunk(2, dim=1)
        return self.head((a * b).mean((2, 3)))


class Reused(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, padding=1)
        self.twice = nn.Conv2d(16, 16, 3, padding=1)
        self.grouped = nn.Conv2d(16, 32, 3, padding=1, groups=4)
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        x = self.twice(self.twice(self.stem(x)))
        return self.head(self.grouped(x).mean((2, 3)))


def test_what_cannot_be_followed_is_frozen_with_its_reason_and_nothing_left_is_refused():
    with pytest.raises(
        ValueError,
        match=r"nothing that can be cut \(every group .*conv: an operation on .* \(split\)",
    ):
        nas.ModelSpace.from_model(Chunked(), torch.zeros(2, *IN_SHAPE))
    with pytest.raises(ValueError) as refused:
        nas.ModelSpace.from_model(Reused(), torch.zeros(2, *IN_SHAPE))
    assert "twice is called 2 times in one forward pass" in str(refused.value)
    assert "grouped is a grouped convolution that is not depthwise" in str(refused.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"widths": (0.5, 1.5)}, r"space.widths must be .*in \(0, 1\]"),
        ({"widths": ()}, "at least one share"),
        ({"multiple": 0}, "space.multiple must be a whole number >= 1"),
    ],
)
def test_bad_options_are_refused_naming_the_key(options, message):
    with pytest.raises(ValueError, match=message):
        nas.ModelSpace(UserNet(), **options)


def test_a_model_with_another_class_count_is_refused_in_one_line():
    space = nas.ModelSpace(UserNet(num_classes=10))
    with pytest.raises(
        ValueError, match=r"gives 10 outputs but the data has 4 classes: .*num_classes=4"
    ):
        space.bind(IN_SHAPE, 4)


def test_a_first_conv_for_rgb_takes_one_channel_with_its_kernels_summed():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.LazyLinear(4))
    kernels = model[0].weight.detach().clone()
    adapt_first_conv(model, 1)
    assert model[0].in_channels == 1
    assert torch.allclose(model[0].weight, kernels.sum(1, keepdim=True))


def slices_match(space: nas.ModelSpace, in_shape, n_classes, seed: int) -> None:
    """The standalone network of the smallest, the largest and random candidates (depths
    and widths), loaded with the supernet's weights for it, computes the supernet's
    logits."""
    supernet = space.supernet(in_shape, n_classes).eval()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    candidates = [
        space.sample(ReferenceTrial(smallest=True)),
        space.sample(ReferenceTrial()),
        *(space.sample(study.ask()) for _ in range(3)),
    ]
    x = torch.randn(3, *in_shape, generator=torch.Generator().manual_seed(seed))
    for candidate in candidates:
        network = space.build(candidate, in_shape, n_classes)
        network.load_state_dict(supernet.weights_for(candidate))
        with torch.no_grad():
            expected = supernet(x, candidate)
            assert torch.allclose(network.eval()(x), expected, atol=1e-5), candidate.arch


def test_a_sliced_candidate_computes_the_supernets_logits_residual_cat_depthwise():
    slices_match(user_space(), IN_SHAPE, 4, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_a_sliced_torchvision_candidate_computes_the_supernets_logits(name):
    import torchvision

    model = getattr(torchvision.models, name)(weights=None, num_classes=10)
    space = nas.ModelSpace.from_model(model, torch.zeros(2, 3, 16, 16))
    assert space.runs  # the smallest candidate leaves residual blocks out
    slices_match(space, (3, 16, 16), 10, seed=1)


class Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x):
        return torch.relu(x + self.bn(self.conv(x)))


class Stages(nn.Module):
    """Two runs of residual blocks in one Sequential, a plain block between them."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), Residual(8), Residual(8),
            nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()),  # same shape, no skip
            nn.Conv2d(8, 16, 3, stride=2, padding=1), Residual(16),
        )  # fmt: skip
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        return self.head(self.features(x).mean((2, 3)))


def test_runs_of_residual_blocks_get_a_depth_and_plain_blocks_do_not():
    space = nas.ModelSpace.from_model(Stages(), torch.zeros(2, *IN_SHAPE))
    assert space.runs == [
        BlockRun("features.1", ("features.1", "features.2")),
        BlockRun("features.5", ("features.5",)),
    ]
    assert (
        "  arch.features.1.depth: 0/1/2 of the residual blocks features.1, features.2"
        in space.summary()
    )
    trial = ReferenceTrial({"arch.features.1.depth": 1, "arch.features.5.depth": 0})
    candidate = space.sample(trial)
    assert "features.2.conv" not in candidate.layers and "features.1.conv" in candidate.layers
    assert "features.5.conv" not in candidate.layers
    assert space.describe(candidate) == "Stages depths 1/2 0/1"
    assert nas.ModelSpace.from_model(Stages(), torch.zeros(2, *IN_SHAPE), depth=False).runs == []
    slices_match(space, IN_SHAPE, 4, seed=2)


@pytest.mark.slow
def test_resnet_stages_keep_their_first_blocks():
    import torchvision

    resnet = torchvision.models.resnet18(weights=None, num_classes=10)
    space = nas.ModelSpace.from_model(resnet, torch.zeros(2, 3, 16, 16))
    assert space.runs == [
        BlockRun("layer1", ("layer1.0", "layer1.1")),  # layer2.0 onwards change the shape
        BlockRun("layer2", ("layer2.1",)),
        BlockRun("layer3", ("layer3.1",)),
        BlockRun("layer4", ("layer4.1",)),
    ]
    candidate = space.sample(ReferenceTrial({"arch.layer1.depth": 0}))
    assert "layer1.0.conv1" not in candidate.layers and "layer2.1.conv1" in candidate.layers
    assert space.describe(candidate) == "ResNet depths 0/2"


@pytest.mark.slow
def test_a_trained_candidate_without_a_runs_blocks_is_the_model_without_them():
    import copy

    import torchvision

    torch.manual_seed(0)
    original = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    with torch.no_grad():
        for module in original.modules():
            if isinstance(module, nn.BatchNorm2d):  # statistics and scales that differ
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
    space = nas.ModelSpace.from_model(copy.deepcopy(original), torch.zeros(2, 3, 16, 16))
    full = {g.name: g.channels for g in space.groups}
    candidate = Candidate({**full, "layer1.depth": 0, "layer3.depth": 0})
    network = space.build(candidate, (3, 16, 16), 10)
    network.load_state_dict(space.dense_source(candidate))
    expected = copy.deepcopy(original)  # computed apart: the blocks replaced by nothing
    expected.layer1 = nn.Sequential()
    expected.layer3 = nn.Sequential(expected.layer3[0])
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(network.eval()(x), expected(x), atol=1e-4)


@pytest.mark.slow
def test_a_class_in_the_users_folder_is_searched_from_one_override(tmp_path):
    shutil.copy(USER_MODEL, tmp_path / "my_net.py")
    model = ("+space=model", "space.model._target_=my_net.UserNet")
    info = forked_nas("space-info", *model, "data=synthetic", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    assert "arch.stem.width: 8/16 of 16 (layers stem, body, depthwise)" in info.stdout
    assert "head: head computes the network's outputs (the classes)" in info.stdout
    done = forked_nas("search", *model, "+debug=smoke", "study.n_trials=2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Pareto front of study 'model-smoke'" in done.stdout
    assert "UserNet" in done.stdout
    caps = "space.sparsity.layer_high={stem:0.9}"
    capped = forked_nas("search", *model, "+debug=smoke", "study.name=capped", caps, cwd=tmp_path)
    assert capped.returncode == 0, capped.stderr
    unknown = forked_nas(
        "search", *model, "+debug=smoke", "space.sparsity.layer_high={nothere:0.9}", cwd=tmp_path
    )
    assert unknown.returncode == 2 and "has no layer nothere" in unknown.stderr


@pytest.mark.slow
def test_a_space_model_without_a_target_is_one_line_and_exit_2(tmp_path):
    done = forked_nas("space-info", "+space=model", "data=synthetic", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0, done.stderr
    assert "space.model._target_ is not set" in done.stderr


def trained_user_net() -> nn.Module:
    """A UserNet with weights and BatchNorm statistics that differ per channel."""
    torch.manual_seed(3)
    model = UserNet()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(torch.rand_like(parameter) * 3)
        model.bn.running_mean.normal_()
        model.bn.running_var.uniform_(0.5, 2.0)
    return model.eval()


def test_a_trained_candidate_is_its_model_with_the_least_important_channels_removed():
    import copy

    import torch_pruning as tp

    original = trained_user_net()
    space = nas.ModelSpace.from_model(copy.deepcopy(original), torch.zeros(2, *IN_SHAPE))
    widths = {"stem": 8, "left": 16, "right": 16}
    candidate = Candidate(widths)
    network = space.build(candidate, IN_SHAPE, 4)
    network.load_state_dict(space.dense_source(candidate))
    # expected, computed apart: each group's smallest-norm channels (norms over the group's
    # layers in the original), removed from the original
    expected = copy.deepcopy(original)
    coupled = {"stem": ["stem", "body", "depthwise"], "left": ["left"], "right": ["right"]}
    drops = {}
    for name, layers in coupled.items():
        weights = [original.get_submodule(layer).weight.detach().flatten(1) for layer in layers]
        norms = torch.cat(weights, dim=1).norm(dim=1)
        drops[name] = norms.argsort()[: len(norms) - widths[name]].tolist()
    for name, drop in drops.items():
        example = torch.zeros(2, *IN_SHAPE)
        graph = tp.DependencyGraph().build_dependency(expected, example_inputs=example)
        layer = expected.get_submodule(name)
        graph.get_pruning_group(layer, tp.prune_conv_out_channels, idxs=drop).prune()
    x = torch.randn(5, *IN_SHAPE)
    with torch.no_grad():
        assert torch.allclose(network.eval()(x), expected.eval()(x), atol=1e-5)
        # the largest candidate is the trained model itself
        largest = Candidate({g.name: g.channels for g in space.groups})
        full = space.build(largest, IN_SHAPE, 4)
        full.load_state_dict(space.dense_source(largest))
        assert torch.allclose(full.eval()(x), original(x), atol=1e-5)


def test_without_trained_weights_the_space_has_no_dense_source():
    assert user_space(trained=False).dense_source is None
    assert nas.ModelSpace(UserNet()).dense_source is None


def test_a_trial_starts_from_its_slice_of_the_trained_model(tiny_splits):
    from nas.prune.methods import MagnitudePruning
    from nas.trial.pipeline import TrialPipeline
    from nas.trial.train import TrainSettings

    model = UserNet(num_classes=tiny_splits.n_classes)
    space = nas.ModelSpace.from_model(model, tiny_splits.train_x[:2])
    pipeline = TrialPipeline(
        space, tiny_splits, MagnitudePruning(),
        TrainSettings(**conf_defaults("train", epochs=3, finetune_epochs=1)),
        torch.device("cpu"), dense_source=space.dense_source,
    )  # fmt: skip
    candidate = Candidate(
        {"stem": 8, "left": 8, "right": 16}, {layer: 0.5 for layer in space.layers}
    )
    result, _ = pipeline.run(candidate, seed=0)
    assert result.dense_sliced
    assert result.train_epochs == pytest.approx(1 + pipeline._recalibration_epochs())


@pytest.mark.slow
def test_a_trained_state_dict_is_the_starting_point_of_every_trial(tmp_path):
    shutil.copy(USER_MODEL, tmp_path / "my_net.py")
    torch.save(trained_user_net().state_dict(), tmp_path / "trained.pt")
    model = ("+space=model", "space.model._target_=my_net.UserNet", "+debug=smoke")
    weights = "space.weights=trained.pt"
    done = forked_nas("search", *model, weights, "study.n_trials=2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    study = optuna.load_study(
        study_name="model-smoke", storage=f"sqlite:///{tmp_path}/outputs/smoke.db"
    )
    finished = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert finished and all(t.user_attrs["dense_sliced"] for t in finished)
    missing = forked_nas("search", *model, "space.weights=nowhere.pt", "study.name=x", cwd=tmp_path)
    assert missing.returncode == 2 and "space.weights=nowhere.pt" in missing.stderr
    assert missing.stderr.strip().count("\n") == 0, missing.stderr
    shared = forked_nas(
        "search", *model, "space.weights=trained.pt", "train=supernet", "study.name=y", cwd=tmp_path
    )
    assert shared.returncode == 2 and "use train=default" in shared.stderr

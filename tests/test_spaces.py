"""The mlp, resnet and mobilenet spaces, and a space from outside the repo (`+space=custom`)."""

from __future__ import annotations

import os
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import FixedTrial, TrialState
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nas.__main__ import command_overrides
from nas.prune import counting
from nas.prune.methods import MagnitudePruning
from search_spaces.mlp import MLPSpace
from search_spaces.mobilenet import InvertedResidual, MobileNetSpace
from search_spaces.resnet import BasicBlock, ResNetSpace
from tests.conftest import assert_one_line_error, composed, forked_nas, run_nas

REPO_ROOT = Path(__file__).resolve().parent.parent
IN_SHAPES = [(1, 12, 12), (3, 28, 28)]


def mobile_block(i: int, expansion: int, kernel: int, width: int, se: bool) -> dict:
    """The `arch.block<i>.*` params of one mobilenet block."""
    return {
        f"arch.block{i}.expansion": expansion,
        f"arch.block{i}.kernel_size": kernel,
        f"arch.block{i}.width": width,
        f"arch.block{i}.se": se,
    }


# (space, architecture params, the `arch` they name, its `describe`); the `*-deepest`
# cases have every layer their space allows.
CASES = [
    pytest.param(
        MLPSpace(),
        {"arch.depth": 1, "arch.layer1.width": 64, "arch.activation": "relu"},
        {"widths": [64], "activation": "relu"},
        "mlp 64 relu > head",
        id="mlp-1",
    ),
    pytest.param(
        MLPSpace(),
        {"arch.depth": 3, "arch.activation": "gelu"}
        | {"arch.layer1.width": 256, "arch.layer2.width": 128, "arch.layer3.width": 256},
        {"widths": [256, 128, 256], "activation": "gelu"},
        "mlp 256-128-256 gelu > head",
        id="mlp-deepest",
    ),
    pytest.param(
        ResNetSpace(),
        {"arch.stages": 2, "arch.stage1.width": 16, "arch.stage1.blocks": 1}
        | {"arch.stage2.width": 16, "arch.stage2.blocks": 1},
        {"stem_width": 16, "widths": [16, 16], "blocks": [1, 1]},
        "resnet 16x1-16x1 > head",
        id="resnet-2",
    ),
    pytest.param(
        ResNetSpace(),
        {"arch.stages": 3, "arch.stage1.width": 32, "arch.stage1.blocks": 2}
        | {"arch.stage2.width": 64, "arch.stage2.blocks": 2}
        | {"arch.stage3.width": 64, "arch.stage3.blocks": 2},
        {"stem_width": 16, "widths": [32, 64, 64], "blocks": [2, 2, 2]},
        "resnet 32x2-64x2-64x2 > head",
        id="resnet-deepest",
    ),
    pytest.param(
        MobileNetSpace(),
        {"arch.blocks": 1} | mobile_block(1, 1, 3, 16, False),
        {"stem_width": 16, "blocks": [dict(expansion=1, kernel_size=3, width=16, se=False)]},
        "mobilenet e1k3c16 > head",
        id="mobilenet-1",
    ),
    pytest.param(
        MobileNetSpace(),
        {"arch.blocks": 4}
        | mobile_block(1, 6, 3, 16, True)
        | mobile_block(2, 3, 5, 24, False)
        | mobile_block(3, 6, 5, 32, True)
        | mobile_block(4, 1, 3, 32, True),
        {
            "stem_width": 16,
            "blocks": [
                dict(expansion=6, kernel_size=3, width=16, se=True),
                dict(expansion=3, kernel_size=5, width=24, se=False),
                dict(expansion=6, kernel_size=5, width=32, se=True),
                dict(expansion=1, kernel_size=3, width=32, se=True),
            ],
        },
        "mobilenet e6k3c16se-e3k5c24-e6k5c32se-e1k3c32se > head",
        id="mobilenet-deepest",
    ),
]
DEEPEST = [case for case in CASES if case.id.endswith("deepest")]


def sample(space, params: dict, arch: dict):
    """The candidate a FixedTrial of `params` gives, with sparsity 0.5 on every layer of `arch`."""
    sparsity = {f"sparsity.{name}": 0.5 for name in space.layer_names(arch)}
    return space.sample(FixedTrial(params | sparsity))


def conv_and_linear_paths(model: nn.Module) -> set[str]:
    return {name for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))}


@pytest.mark.parametrize(("space", "params", "arch", "summary"), CASES)
def test_fixed_trial_gives_the_architecture_it_names(space, params, arch, summary):
    candidate = sample(space, params, arch)
    assert candidate.arch == arch
    assert space.describe(candidate) == summary


@pytest.mark.parametrize("in_shape", IN_SHAPES, ids=["12x12", "3x28x28"])
@pytest.mark.parametrize(("space", "params", "arch", "summary"), CASES)
def test_every_conv_and_linear_layer_has_a_sparsity_and_prunes(
    space, params, arch, summary, in_shape
):
    candidate = sample(space, params, arch)
    model = space.build(candidate, in_shape, 10).eval()
    assert set(candidate.sparsity) == conv_and_linear_paths(model)
    MagnitudePruning().apply(model, candidate.sparsity)
    assert model(torch.randn(2, *in_shape)).shape == (2, 10)


@pytest.mark.parametrize(
    "space", [MLPSpace(), ResNetSpace(), MobileNetSpace()], ids=["mlp", "resnet", "mobilenet"]
)
def test_only_the_layers_a_random_candidate_has_get_sparsity_params(space):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(15):
        trial = study.ask()
        candidate = space.sample(trial)
        model = space.build(candidate, (1, 12, 12), 4)
        assert set(candidate.sparsity) == conv_and_linear_paths(model)
        assert {f"sparsity.{name}" for name in candidate.sparsity} == {
            name for name in trial.params if name.startswith("sparsity.")
        }
        study.tell(trial, 0.0)


@pytest.mark.parametrize(("space", "params", "arch", "summary"), DEEPEST)
def test_dense_flops_agree_with_torch_flop_counter(space, params, arch, summary):
    model = space.build(sample(space, params, arch), (3, 28, 28), 10).eval()
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 28, 28))
    assert counting.dense_flops(model, (3, 28, 28)) == counter.get_total_flops()


@pytest.mark.parametrize(("in_channels", "out_channels", "stride"), [(8, 8, 1), (8, 16, 2)])
def test_resnet_block_adds_its_shortcut(in_channels, out_channels, stride):
    block = BasicBlock(in_channels, out_channels, stride).eval()
    assert isinstance(block.shortcut, nn.Identity) == (in_channels == out_channels)
    with torch.no_grad():
        block.conv1.weight.zero_()
        block.conv2.weight.zero_()
        x = torch.randn(2, in_channels, 8, 8)
        assert torch.allclose(block(x), torch.relu(block.shortcut(x)))


def test_mobilenet_block_adds_its_input_when_the_shape_is_kept():
    block = InvertedResidual(8, 8, expansion=3, kernel=3, stride=1, se=True).eval()
    with torch.no_grad():
        block.project[0].weight.zero_()
        x = torch.randn(2, 8, 6, 6)
        assert torch.allclose(block(x), x)
    assert not InvertedResidual(8, 16, expansion=3, kernel=3, stride=1, se=False).residual


@pytest.mark.parametrize(
    ("space_class", "kwargs", "key"),
    [
        (MLPSpace, {"depth": (0, 2)}, "depth"),
        (MLPSpace, {"widths": ()}, "widths"),
        (MLPSpace, {"activations": ("relu", "swish")}, "activations"),
        (ResNetSpace, {"stages": (2, 1)}, "stages"),
        (ResNetSpace, {"blocks": (0, 1)}, "blocks"),
        (ResNetSpace, {"widths": (16, -1)}, "widths"),
        (ResNetSpace, {"stem_width": 0}, "stem_width"),
        (MobileNetSpace, {"blocks": (1,)}, "blocks"),
        (MobileNetSpace, {"expansions": (0,)}, "expansions"),
        (MobileNetSpace, {"kernel_sizes": (3, 4)}, "kernel_sizes"),
        (MobileNetSpace, {"widths": ()}, "widths"),
        (MobileNetSpace, {"se": ("yes",)}, "se"),
        (MobileNetSpace, {"stem_width": 0}, "stem_width"),
    ],
)
def test_bad_config_names_the_key(space_class, kwargs, key):
    with pytest.raises(ValueError, match=rf"^space\.{key} .*got") as error:
        space_class(**kwargs)
    assert "\n" not in str(error.value)


TINY_SPACE = '''
import math

from torch import nn

from nas.space import Candidate, SparsityGrid


class TinySpace:
    """One hidden linear layer of `width` or twice `width` units."""

    def __init__(self, width=16):
        self.width = width
        self.sparsity = SparsityGrid(low=0.0, high=0.5, step=0.25)

    def sample(self, trial):
        hidden = trial.suggest_categorical("arch.hidden", [self.width, 2 * self.width])
        return self.sparsity.candidate(trial, {"hidden": hidden}, ["hidden", "head"])

    def build(self, candidate, in_shape, n_classes):
        hidden = candidate.arch["hidden"]
        model = nn.Sequential()
        model.add_module("flatten", nn.Flatten())
        model.add_module("hidden", nn.Linear(math.prod(in_shape), hidden))
        model.add_module("act", nn.ReLU())
        model.add_module("head", nn.Linear(hidden, n_classes))
        return model

    def describe(self, candidate):
        return f"tiny {candidate.arch['hidden']} > head"
'''


def importable_from(tmp_path: Path, monkeypatch) -> None:
    """Let `python -m nas` run in `tmp_path` import modules from there, and this checkout's
    own packages ahead of any other installed copy."""
    path = [str(tmp_path), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in path if p))


def completed_trials(tmp_path: Path, study_name: str) -> list[optuna.trial.FrozenTrial]:
    """The finished trials of `+debug=smoke` study `study_name` in `tmp_path`."""
    storage = f"sqlite:///{tmp_path}/outputs/smoke.db"
    study = optuna.load_study(study_name=study_name, storage=storage)
    return study.get_trials(states=(TrialState.COMPLETE,))


@pytest.mark.slow
def test_a_space_from_outside_the_repo_runs_a_search(tmp_path, monkeypatch):
    (tmp_path / "my_tiny_space.py").write_text(TINY_SPACE)
    importable_from(tmp_path, monkeypatch)
    result = run_nas(
        "search",
        "+space=custom",
        "space._target_=my_tiny_space.TinySpace",
        "+space.width=8",
        "+debug=smoke",
        "study.n_trials=2",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    trials = completed_trials(tmp_path, "custom-smoke")
    assert len(trials) == 2
    for trial in trials:
        assert {"sparsity.hidden", "sparsity.head"} <= set(trial.params)
        assert trial.params["arch.hidden"] in (8, 16)


@pytest.mark.slow
def test_custom_space_without_a_target_says_what_to_set(tmp_path, monkeypatch):
    importable_from(tmp_path, monkeypatch)
    result = run_nas("search", "+space=custom", "+debug=smoke", cwd=tmp_path)
    assert_one_line_error(result, "space._target_ is not set: pass space._target_=module.Class")
    assert not (tmp_path / "outputs" / "smoke.db").exists()


@pytest.mark.slow
@pytest.mark.parametrize("space", ["mlp", "resnet", "mobilenet"])
def test_smoke_search(space, tmp_path):
    result = forked_nas(
        "search", f"+space={space}", "+debug=smoke", "study.n_trials=2", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert len(completed_trials(tmp_path, f"{space}-smoke")) == 2


@pytest.mark.parametrize(
    "overrides, supernet",
    [
        (("+space=mlp",), True),  # measured ahead with weight sharing: its default
        (("+space=mlp", "train=default"), False),
        (("+space=cnn",), False),
        (("+space=cnn", "train=supernet"), True),
    ],
)
def test_a_space_may_search_with_weight_sharing_by_default(overrides, supernet):
    assert ("supernet" in composed(*overrides)["train"]) is supernet


@pytest.mark.parametrize("command", ["baseline", "sensitivity"])
def test_baselines_and_sensitivity_train_from_scratch_unless_told_otherwise(command):
    assert command_overrides(command, ["+space=mlp"]) == ["+space=mlp", "train=default"]
    given = ["+space=mlp", "train=supernet"]
    assert command_overrides(command, given) == given
    assert command_overrides("search", ["+space=mlp"]) == ["+space=mlp"]

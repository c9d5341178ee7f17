"""Per-layer shifts of an allocation rule: sampled as `sparsity.<layer>.shift`, applied to
the rule's share of the overall sparsity, recorded beside the unshifted ratios."""

from __future__ import annotations

import re

import optuna
import pytest
import torch
from hydra.utils import instantiate
from optuna.trial import FixedTrial

from nas.errors import UsageError
from nas.prune.allocation import allocate
from nas.search.reference import reference_candidate, smallest_architecture
from nas.search.settings import StudySettings
from nas.space import Allocation, Candidate, ShiftGrid, SparsityGrid
from nas.studies.joint_search import run_search
from nas.studies.sensitivity import check_layer_names, suggested_shifts
from nas.trial.pipeline import TrialPipeline
from search_spaces.cnn import CNNSpace
from tests.conftest import conf_defaults

SHIFTS_ON = {"allocation": "lamp", "low": 0.5, "high": 0.95, "shift": {"low": -2, "high": 2}}
ARCH = {"arch.blocks": 2, "arch.block1.channels": 8, "arch.block2.channels": 16}
ARCH |= {"arch.kernel_size": 3, "arch.hidden": 32}
LAYERS = ("block1.conv", "block2.conv", "hidden", "head")


def dense_model(space: CNNSpace, candidate: Candidate) -> torch.nn.Module:
    torch.manual_seed(0)
    return space.build(candidate, (1, 12, 12), 4)


def test_a_rule_with_shifts_samples_one_shift_per_layer_beside_the_overall_sparsity():
    space = CNNSpace(sparsity=SHIFTS_ON)
    shifts = {f"sparsity.{layer}.shift": 0.5 for layer in LAYERS} | {"sparsity.head.shift": -1.5}
    candidate = space.sample(FixedTrial({**ARCH, "sparsity.overall": 0.9, **shifts}))
    assert candidate.allocation.sparsity == 0.9
    assert candidate.allocation.shifts == {
        "block1.conv": 0.5, "block2.conv": 0.5, "hidden": 0.5, "head": -1.5
    }  # fmt: skip

    study = optuna.create_study()
    trial = study.ask()
    space.sample(trial)
    shift_names = {name for name in trial.params if name.endswith(".shift")}
    layers = space.layer_names(space.sample(FixedTrial(trial.params)).arch)
    assert shift_names == {f"sparsity.{layer}.shift" for layer in layers}
    assert all(trial.params[name] in {-2 + 0.5 * k for k in range(9)} for name in shift_names)


def test_without_shifts_a_rule_samples_only_the_overall_sparsity():
    study = optuna.create_study()
    trial = study.ask()
    candidate = CNNSpace(sparsity={"allocation": "lamp"}).sample(trial)
    assert candidate.allocation.shifts == {}
    assert [name for name in trial.params if name.startswith("sparsity.")] == ["sparsity.overall"]


@pytest.mark.parametrize(
    ("sparsity", "message"),
    [
        ({"allocation": "lamp", "shift": {"low": 0.5}}, "low <= 0 <= high"),
        ({"allocation": "lamp", "shift": {"high": -1}}, "low <= 0 <= high"),
        ({"allocation": "lamp", "shift": {"low": -1.2, "step": 0.5}}, "put 0 on the grid"),
        ({"allocation": "lamp", "shift": {"step": 0}}, "step must be positive"),
        ({"allocation": "lamp", "shift": {"low": "a"}}, "low must be a number, got 'a'"),
        ({"allocation": "lamp", "shift": {"width": 2}}, "has no key width"),
        ({"allocation": "lamp", "shift": 2}, "must be null or"),
    ],
)
def test_a_bad_shift_grid_is_refused_naming_its_key(sparsity, message):
    with pytest.raises(ValueError, match=f"space.sparsity.shift.*({message})"):
        SparsityGrid(**sparsity)


def test_the_nearest_grid_shift_is_clipped_to_the_range():
    grid = ShiftGrid(low=-2, high=2, step=0.5)
    assert [grid.nearest(v) for v in (-7.0, -0.3, 0.1, 0.76, 9.0)] == [-2.0, -0.5, 0.0, 1.0, 2.0]
    assert ShiftGrid(step=None).nearest(0.123456789) == 0.123457


def test_targets_apply_the_shifts_then_the_caps_and_record_the_unshifted_rule():
    space = CNNSpace(sparsity=SHIFTS_ON)
    layers = LAYERS
    candidate = space.sample(FixedTrial({**ARCH, "sparsity.overall": 0.9, **{
        f"sparsity.{layer}.shift": 0.0 for layer in layers
    }}))  # fmt: skip
    model = dense_model(space, candidate)
    shifts = {"block2.conv": -2.0, "hidden": 2.0}
    shifted = Allocation("lamp", 0.9, layers, caps={"block2.conv": 0.3}, shifts=shifts)
    targets, rule = TrialPipeline._targets(Candidate(candidate.arch, allocation=shifted), model, 0)

    plain = allocate("lamp", model, list(layers), 0.9)
    moved = allocate("lamp", model, list(layers), 0.9, shifts=shifts)
    assert moved["block2.conv"] > 0.3 and plain["block2.conv"] > 0.3  # so the cap bites
    assert targets == {**moved, "block2.conv": 0.3}
    assert rule == {**plain, "block2.conv": 0.3}
    assert targets["hidden"] < rule["hidden"]  # a positive shift keeps more

    no_shifts = Allocation("lamp", 0.9, layers, caps={"block2.conv": 0.3})
    targets, rule = TrialPipeline._targets(
        Candidate(candidate.arch, allocation=no_shifts), model, 0
    )
    assert targets == {**plain, "block2.conv": 0.3} and rule is None


def test_reference_candidates_take_the_plain_rule():
    space = CNNSpace(sparsity=SHIFTS_ON)
    candidate, trial = reference_candidate(space)
    assert set(candidate.allocation.shifts.values()) == {0.0}
    assert "sparsity.head.shift" in trial.params
    assert "sparsity.head.shift" not in smallest_architecture(space)


@pytest.mark.slow
def test_a_search_stores_the_shifts_and_what_they_did_per_layer(compose_config, tmp_path):
    cfg = compose_config(
        "+space=cnn", "+debug=smoke", "study.name=shifts", "study.n_trials=3", f"study.storage=sqlite:///{tmp_path}/n.db",
        "space.sparsity.shift={low:-2,high:2,step:0.5}",
    )  # fmt: skip
    study = run_search(cfg, tmp_path, tmp_path / "run")
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(trials) == 3  # the warm start, its sibling and one more architecture
    space = instantiate(cfg.space)
    in_shape, n_classes = tuple(study.user_attrs["in_shape"]), study.user_attrs["n_classes"]
    moved = 0
    for trial in trials:
        target, rule = trial.user_attrs["sparsity_target"], trial.user_attrs["sparsity_rule"]
        assert set(rule) == set(target) == set(trial.user_attrs["sparsity_achieved"])
        shifts = {layer: trial.params[f"sparsity.{layer}.shift"] for layer in target}
        model = space.build(space.sample(FixedTrial(trial.params)), in_shape, n_classes)
        counts = {layer: model.get_submodule(layer).weight.numel() for layer in target}
        removed = [sum(ratios[n] * counts[n] for n in counts) for ratios in (target, rule)]
        assert removed[0] == pytest.approx(removed[1], abs=1)  # shifts keep the overall sparsity
        moved += target != rule and len(set(shifts.values())) > 1
    assert moved  # some trial's shifts moved weights between its layers
    first, sibling = trials[0], trials[1]
    assert sibling.user_attrs["sibling_of"] == first.number
    assert {k: v for k, v in sibling.params.items() if k.endswith(".shift")} == {
        k: v for k, v in first.params.items() if k.endswith(".shift")
    }  # siblings keep the shifts, only the overall sparsity moves


# --- shifts from a sensitivity result, as the warm start's --------------------------------


def three_layers() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(16, 32), torch.nn.Linear(32, 32), torch.nn.Linear(32, 4)
    )


def test_caps_that_match_the_rule_suggest_no_shift():
    model = three_layers()
    bounds = allocate("lamp", model, ["0", "1", "2"], 0.6)
    overall, shifts = suggested_shifts(model, bounds, "lamp", ShiftGrid(), torch.Generator())
    assert overall == pytest.approx(0.6, abs=1e-3)  # 998 of 1664 weights
    assert shifts == {"0": 0.0, "1": 0.0, "2": 0.0}


def test_a_fragile_layer_gets_a_positive_shift_and_a_tolerant_one_a_negative_shift():
    model = three_layers()
    bounds = {"0": 0.0, "1": 0.95, "2": 0.5}  # layer 0 lost accuracy at every sparsity
    overall, shifts = suggested_shifts(model, bounds, "erk", ShiftGrid(), torch.Generator())
    rule = allocate("erk", model, list(bounds), overall)
    assert rule["0"] > 0 and rule["1"] < 0.95  # the rule prunes 0 more, 1 less than tolerated
    assert shifts["0"] > 0 > shifts["1"]
    assert set(shifts.values()) <= {-2 + 0.5 * k for k in range(9)}


def test_the_warm_start_takes_the_given_shifts_of_the_smallest_architectures_layers():
    space = CNNSpace(sparsity=SHIFTS_ON)
    params = smallest_architecture(space, {"block1.conv": 1.5, "hidden": -1.0, "head": -0.5})
    assert params == {
        **smallest_architecture(space),
        "sparsity.block1.conv.shift": 1.5,
        "sparsity.head.shift": -0.5,
    }  # no hidden layer in the smallest architecture


@pytest.mark.parametrize(
    ("sparsity", "shifts", "message"),
    [
        (SHIFTS_ON, {"head": 0.3}, "head=0.3 is not on the space's shift grid"),
        (SHIFTS_ON, {"head": 3.0}, "head=3.0 is not on the space's shift grid"),
        ({"allocation": "lamp"}, {"head": 1.0}, "set space.sparsity.shift"),
    ],
)
def test_warm_start_shifts_the_space_cannot_take_are_refused(sparsity, shifts, message):
    with pytest.raises(UsageError, match=message):
        smallest_architecture(CNNSpace(sparsity=sparsity), shifts)


@pytest.mark.parametrize(
    ("shifts", "warm_start", "message"),
    [
        ({"head": "up"}, True, "study.warm_start_shifts.head must be a number, got 'up'"),
        ([1.0], True, "study.warm_start_shifts must be a mapping of names to numbers or null"),
        ({"head": 1.0}, False, "study.warm_start_shifts is set but study.warm_start is false"),
    ],
)
def test_bad_warm_start_shifts_are_refused(shifts, warm_start, message):
    settings = conf_defaults("study", warm_start=warm_start, warm_start_shifts=shifts)
    with pytest.raises(ValueError, match=re.escape(message)):
        StudySettings(**settings)


def test_warm_start_shifts_for_a_layer_the_space_lacks_are_refused(compose_config):
    cfg = compose_config(
        "+space=cnn", "space.sparsity.shift={low:-2,high:2}", "study.warm_start_shifts={fc9:1.0}"
    )
    with pytest.raises(UsageError, match="study.warm_start_shifts: the space has no layer fc9"):
        check_layer_names(cfg)


@pytest.mark.slow
def test_a_search_starts_from_the_warm_start_shifts(compose_config, tmp_path):
    cfg = compose_config(
        "+space=cnn", "+debug=smoke", "study.name=warm", "study.n_trials=1", "study.siblings=0",
        f"study.storage=sqlite:///{tmp_path}/n.db", "space.sparsity.shift={low:-2,high:2}",
        "study.warm_start_shifts={block1.conv:-1.5,block2.conv:2.0,head:1.0}",
    )  # fmt: skip
    [first] = run_search(cfg, tmp_path, tmp_path / "run").trials
    assert first.params["sparsity.block1.conv.shift"] == -1.5
    assert first.params["sparsity.head.shift"] == 1.0
    target, rule = first.user_attrs["sparsity_target"], first.user_attrs["sparsity_rule"]
    assert target["block1.conv"] > rule["block1.conv"] and target["head"] < rule["head"]

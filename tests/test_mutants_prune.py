"""Exact numbers and messages of the pruning code (nas/prune/) that the broader tests leave
open: caps, floors and ties of the sparsity allocation, N:M masks of conv1d weights, the
members and removals of channel pruning, and the settings' messages and defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from hydra.utils import get_class
from omegaconf import OmegaConf
from torch import nn

from nas.prune.allocation import METHODS, allocate
from nas.prune.methods import (
    ChannelPruning,
    MagnitudePruning,
    NMPruning,
    coupled_layers,
    current_masks,
    effective_weight,
    nm_mask,
    restore_masks,
    set_mask,
    weights_to_remove,
)
from nas.prune.schedule import Gradual, Iterative

CONF = Path(__file__).resolve().parents[1] / "conf"


def linear_chain(*sizes: int) -> nn.Sequential:
    """Linear layers "0", "1", ... from sizes[0] inputs through sizes[1:], no biases."""
    torch.manual_seed(0)
    return nn.Sequential(
        *(nn.Linear(a, b, bias=False) for a, b in zip(sizes, sizes[1:], strict=False))
    )


def with_weights(*rows: list[float]) -> nn.Sequential:
    """One single-output linear layer per row, its weights that row."""
    model = nn.Sequential(*(nn.Linear(len(row), 1, bias=False) for row in rows))
    with torch.no_grad():
        for layer, row in zip(model, rows, strict=True):
            layer.weight.copy_(torch.tensor([row]))
    return model


def raises_exactly(message: str):
    """pytest.raises(ValueError) whose message is `message`, all of it."""
    return pytest.raises(ValueError, match=f"^{re.escape(message)}$")


# --- allocation -----------------------------------------------------------------------------


def test_a_ratio_that_rounds_to_one_is_capped_to_keep_a_weight_of_a_large_layer():
    # 4,000,000 weights at 99.99999 %: the one-weight floor leaves a ratio of 0.99999975,
    # 1.0 at 6 decimals; the largest 6-decimal ratio that keeps a weight is 0.999999.
    model = nn.Sequential(nn.Linear(2000, 2000, bias=False))
    ratios = allocate("uniform", model, ["0"], 0.9999999)
    assert ratios == {"0": 0.999999}
    assert weights_to_remove(4_000_000, ratios["0"]) == 3_999_996


@pytest.mark.parametrize("method", ["global", "lamp"])
def test_a_global_threshold_at_zero_sparsity_removes_nothing(method):
    model = linear_chain(3, 4, 2)
    assert allocate(method, model, ["0", "1"], 0.0) == {"0": 0.0, "1": 0.0}
    # 1 % of 20 weights rounds to none as well
    assert allocate(method, model, ["0", "1"], 0.01) == {"0": 0.0, "1": 0.0}


def test_global_ties_take_only_what_the_target_still_needs():
    # Top weights 5 and 9 are protected; the 3 lowest of the other 6 scores (1 2 2 | 2 2 8)
    # are 1 and two of the four 2s, which go from the first layer: 3 of 4 there, none after.
    model = with_weights([1.0, 2.0, 2.0, 5.0], [2.0, 2.0, 9.0, 8.0])
    assert allocate("global", model, ["0", "1"], 0.375) == {"0": 0.75, "1": 0.0}


def test_random_densities_are_one_minus_the_seeded_float64_draws_scaled_to_the_target():
    model = linear_chain(4, 4, 4)  # 16 weights each
    draws = torch.rand(2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    relative = (1.0 - draws).tolist()
    # 50 % of 32 weights kept: 16 * c * (d0 + d1) = 16, so density_i = d_i / (d0 + d1)
    densities = [d / sum(relative) for d in relative]
    assert all(1 / 16 <= d <= 1.0 for d in densities)  # no floor or cap reached
    ratios = allocate("random", model, ["0", "1"], 0.5, torch.Generator().manual_seed(3))
    assert ratios == {
        "0": pytest.approx(1 - densities[0], abs=1e-6),
        "1": pytest.approx(1 - densities[1], abs=1e-6),
    }
    assert ratios["0"] != ratios["1"]


def test_uniform_plus_with_two_layers_keeps_the_first_dense():
    model = linear_chain(2, 4, 10)  # 8 and 40 weights
    # half of 48 kept: all 8 of the first layer, 16 of the head's 40
    assert allocate("uniform_plus", model, ["0", "1"], 0.5) == {"0": 0.0, "1": 0.6}


def test_uniform_plus_floors_a_small_head_at_one_weight_above_a_fifth():
    model = linear_chain(2, 4, 4, 1)  # 8, 16 and 4 weights
    # 40 % of 28 kept = 11.2: 8 in the dense first layer, 1 (a quarter) in the head, whose
    # floor one weight is above a fifth of it, and the 2.2 left in the middle layer.
    ratios = allocate("uniform_plus", model, ["0", "1", "2"], 0.6)
    assert ratios == {"0": 0.0, "1": pytest.approx(1 - 2.2 / 16, abs=1e-6), "2": 0.75}


def test_an_unknown_method_is_refused_naming_every_valid_one():
    with raises_exactly(
        "unknown sparsity allocation method 'magnitude'; "
        "choose one of uniform, uniform_plus, global, lamp, erk, random"
    ):
        allocate("magnitude", linear_chain(2, 2), ["0"], 0.5)
    assert METHODS == ("uniform", "uniform_plus", "global", "lamp", "erk", "random")


def test_no_layers_is_refused_in_so_many_words():
    with raises_exactly("sparsity allocation needs at least one layer, got none"):
        allocate("uniform", linear_chain(2, 2), [], 0.5)


def test_shifts_on_layers_not_allocated_are_refused_naming_them_all():
    with raises_exactly("sparsity shifts name layers not allocated: 5, 7"):
        allocate("uniform", linear_chain(2, 2, 2), ["0", "1"], 0.5, shifts={"7": 1.0, "5": 1.0})


# --- masks ----------------------------------------------------------------------------------


def test_nm_mask_of_a_conv1d_weight_groups_input_channels_at_each_kernel_position():
    # one output, 4 input channels, kernel 2: at each position keep the 2 largest |w| of 4
    weight = torch.tensor([[[1.0, -8.0], [-4.0, 7.0], [3.0, 6.0], [-2.0, 5.0]]])
    mask = nm_mask(weight, 2, 4)
    expected = torch.tensor([[[0.0, 1.0], [1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]])
    assert mask.shape == weight.shape
    assert torch.equal(mask, expected)


def test_nm_mask_entries_are_exactly_zero_or_one():
    weight = torch.tensor([[0.5, -3.0, 2.0, 1.0, -1.0, 4.0, 0.0, 0.25]])
    expected = torch.tensor([[0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0]])
    assert torch.equal(nm_mask(weight, 2, 4), expected)
    model = nn.Sequential(nn.Linear(8, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(weight)
    NMPruning(m=4).apply(model, {"0": 0.5})
    assert torch.equal(model[0].weight, weight * expected)


def test_restored_masks_follow_the_model_onto_its_device():
    pruned = linear_chain(4, 4)
    MagnitudePruning().apply(pruned, {"0": 0.5})
    saved = current_masks(pruned)  # on the CPU
    elsewhere = linear_chain(4, 4).to("meta")  # a model on another device
    restore_masks(elsewhere, saved)
    assert elsewhere[0].weight_mask.device.type == "meta"


def test_a_new_mask_replaces_the_layers_mask_rather_than_adding_to_it():
    model = with_weights([1.0, 2.0, 3.0, 4.0])
    set_mask(model[0], torch.tensor([[0.0, 1.0, 0.0, 1.0]]))
    set_mask(model[0], torch.tensor([[1.0, 1.0, 0.0, 0.0]]))
    assert torch.equal(model[0].weight_mask, torch.tensor([[1.0, 1.0, 0.0, 0.0]]))
    assert torch.equal(effective_weight(model[0]), torch.tensor([[1.0, 2.0, 0.0, 0.0]]))


def test_the_effective_weight_follows_an_optimizer_step_taken_since_the_last_forward():
    model = with_weights([1.0, -2.0, 3.0, -4.0])
    MagnitudePruning().apply(model, {"0": 0.5})  # keeps 3 and -4
    model(torch.ones(1, 4)).sum().backward()  # gradient: the mask times the input, 0 0 1 1
    torch.optim.SGD(model.parameters(), lr=1.0).step()  # originals 1 -2 2 -5
    assert torch.equal(effective_weight(model[0]), torch.tensor([[0.0, 0.0, 2.0, -5.0]]))
    MagnitudePruning().apply(model, {"0": 0.75})  # ranks 2 and -5, not 3 and -4
    assert torch.equal(model[0].weight_mask, torch.tensor([[0.0, 0.0, 0.0, 1.0]]))


# --- channel pruning ------------------------------------------------------------------------


class LinearResidual(nn.Module):
    """head(a(x) + b(relu(a(x)))): a's and b's outputs are added, so coupled."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.head = nn.Linear(3, 6), nn.Linear(6, 6), nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.a(x)
        return self.head(hidden + self.b(torch.relu(hidden)))


class ConcatResidual(nn.Module):
    """head(cat(a(x), b(x)) + c(x)): c's 4 outputs are a's 2 then b's 2; c has 1 input."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(1, 2, 1), nn.Conv2d(1, 2, 1)
        self.c, self.head = nn.Conv2d(1, 4, 1), nn.Conv2d(4, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat([self.a(x), self.b(x)], 1) + self.c(x))


def graph_of(model: nn.Module, example: torch.Tensor):
    import torch_pruning as tp

    return tp.DependencyGraph().build_dependency(model.eval(), example_inputs=example)


def test_linear_layers_added_together_are_coupled():
    model, example = LinearResidual(), torch.randn(2, 3)
    graph = graph_of(model, example)
    assert coupled_layers(graph, model, "a") == ["a", "b"]
    assert coupled_layers(graph, model, "b") == ["b", "a"]


def test_every_output_channel_counts_in_coupling_even_past_the_input_channels():
    model, example = ConcatResidual(), torch.randn(2, 1, 4, 4)
    graph = graph_of(model, example)
    assert coupled_layers(graph, model, "c") == ["c", "a", "b"]


class Net(nn.Module):
    """conv (16 channels) -> hidden (8) -> classifier (3), none coupled."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 16, 3)
        self.hidden = nn.Linear(16, 8)
        self.classifier = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = torch.relu(self.conv(x)).mean(dim=(2, 3))
        return self.classifier(torch.relu(self.hidden(features)))


EXAMPLE = torch.randn(2, 1, 6, 6)


def smallest(weight: torch.Tensor, count: int) -> list[int]:
    """The `count` output channels of least L2 norm, in increasing index order."""
    return sorted(weight.detach().flatten(1).norm(dim=1).argsort()[:count].tolist())


def test_the_output_layer_named_first_does_not_stop_the_others_from_losing_channels():
    model = Net()
    expected = [
        ["conv", smallest(model.conv.weight, 8)],
        ["hidden", smallest(model.hidden.weight, 4)],
    ]
    ratios = {"classifier": 0.5, "conv": 0.5, "hidden": 0.5}
    assert ChannelPruning(min_channels=1).plan(model, ratios, EXAMPLE) == expected


def test_a_layer_whose_ratio_removes_no_channel_is_left_out_of_the_removals():
    model = Net()
    ratios = {"conv": 0.0, "hidden": 0.5}
    removals = ChannelPruning(min_channels=1).plan(model, ratios, EXAMPLE)
    assert removals == [["hidden", smallest(model.hidden.weight, 4)]]


def test_a_ratio_that_removes_one_channel_removes_the_weakest():
    model = Net()
    removals = ChannelPruning(min_channels=1).apply(model, {"conv": 1 / 16}, EXAMPLE)
    weakest = int(Net().conv.weight.detach().flatten(1).norm(dim=1).argmin())
    assert removals == [["conv", [weakest]]]
    assert model.conv.out_channels == 15


def test_one_channel_may_be_all_a_layer_keeps():
    model = Net()
    ChannelPruning(min_channels=1).apply(model, {"conv": 0.99}, EXAMPLE)
    assert model.conv.out_channels == 1
    assert model(EXAMPLE).shape == (2, 3)


def test_min_channels_below_one_is_refused_naming_the_setting():
    with raises_exactly("prune.min_channels must be a whole number >= 1, got 0"):
        ChannelPruning(min_channels=0)


def test_channel_pruning_without_an_example_is_refused_saying_why():
    with raises_exactly("channel pruning traces the model: give it an example input"):
        ChannelPruning().apply(Net(), {"conv": 0.5})


def test_channel_pruning_with_a_schedule_that_prunes_later_is_refused_naming_one_shot():
    message = "prune=channel removes channels once: use it with schedule=one_shot"
    for schedule in (Iterative(rounds=2), Gradual()):
        with raises_exactly(message):
            ChannelPruning().check_schedule(schedule)


# --- settings -------------------------------------------------------------------------------


def test_iterative_rounds_below_one_are_refused_naming_the_setting():
    with raises_exactly("schedule.rounds must be a whole number >= 1, got 0"):
        Iterative(rounds=0)


@pytest.mark.parametrize(
    "path",
    ["prune/channel.yaml", "prune/nm.yaml", "schedule/gradual.yaml", "schedule/iterative.yaml"],
)
def test_a_method_or_schedule_built_without_settings_gets_confs_values(path):
    # A config that names the class without its group's values (prune._target_=...) gets
    # the constructor's defaults: they are conf/'s.
    values = OmegaConf.to_container(OmegaConf.load(CONF / path))
    built = get_class(values.pop("_target_"))()
    assert {name: getattr(built, name) for name in values} == values


def test_gradual_settings_out_of_bounds_are_refused_naming_them():
    with raises_exactly("schedule.ramp must be a number in (0, 1], got 0"):
        Gradual(ramp=0)
    with raises_exactly("schedule.every must be a whole number >= 1, got 0"):
        Gradual(every=0)


def test_a_late_first_gradual_pruning_is_refused_naming_the_share_it_would_cut():
    # The ramp ends at step 109 of 110 and first prunes at 60: 1 - (1 - 60/109)^3 = 90.9 %
    # of the ratios at once, with 50 steps left.
    assert Gradual(ramp=1.0, every=60).misfit(110) == (
        "schedule.every=60 puts the ramp's first pruning at step 60, past its middle (the "
        "ramp, schedule.ramp=1.0, reaches the final ratios at step 109): it would cut 91% "
        "of them there at once, with 50 steps left to fine-tune; use a schedule.every of at "
        "most 54, more fine-tuning steps or schedule=one_shot"
    )
    # One fine-tuning step: the ramp ends where it starts, at step 0, and cuts everything.
    assert Gradual(ramp=0.5, every=1).misfit(1) == (
        "schedule.every=1 puts the ramp's first pruning at step 0, past its middle (the "
        "ramp, schedule.ramp=0.5, reaches the final ratios at step 0): it would cut 100% "
        "of them there at once, with 1 step left to fine-tune; use more fine-tuning steps "
        "or schedule=one_shot"
    )

from __future__ import annotations

import optuna
import pytest
import torch
from torch import nn

from nas.prune.allocation import METHODS, allocate
from nas.prune.methods import MagnitudePruning, effective_weight, make_permanent
from nas.space import SparsityGrid

LAYERS = ["0", "1", "2", "4"]  # 72, 2304, 9216 and 1280 weights


def small_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3),
        nn.Conv2d(8, 32, 3),
        nn.Conv2d(32, 32, 3),
        nn.Flatten(),
        nn.Linear(128, 10),
    )


def counts(model: nn.Module, layers: list[str]) -> dict[str, int]:
    return {name: model.get_submodule(name).weight.numel() for name in layers}


def overall(ratios: dict[str, float], numels: dict[str, int]) -> float:
    return sum(ratios[name] * numels[name] for name in ratios) / sum(numels.values())


def two_linear_layers(first: list[float], second: list[float]) -> nn.Sequential:
    model = nn.Sequential(
        nn.Linear(len(first), 1, bias=False), nn.Linear(len(second), 1, bias=False)
    )
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([first]))
        model[1].weight.copy_(torch.tensor([second]))
    return model


# uniform+ can remove at most ~97.4 % here (see the unreachable test below).
REACHABLE = [
    (method, sparsity)
    for method in METHODS
    for sparsity in (0.0, 0.3, 0.5, 0.9, 0.98)
    if not (method == "uniform_plus" and sparsity > 0.9)
]


@pytest.mark.parametrize(("method", "sparsity"), REACHABLE)
def test_every_method_hits_the_overall_target(method, sparsity):
    model = small_model()
    ratios = allocate(method, model, LAYERS, sparsity)
    assert list(ratios) == LAYERS
    assert all(0.0 <= ratio < 1.0 for ratio in ratios.values())
    assert all(ratio == round(ratio, 6) for ratio in ratios.values())
    numels = counts(model, LAYERS)
    assert overall(ratios, numels) == pytest.approx(sparsity, abs=1e-3)
    assert all(round(ratios[name] * numels[name]) < numels[name] for name in LAYERS)


def test_uniform_gives_every_layer_the_target():
    ratios = allocate("uniform", small_model(), LAYERS, 0.7)
    assert ratios == dict.fromkeys(LAYERS, 0.7)


def test_uniform_lifts_a_tiny_layer_to_one_weight_and_makes_up_elsewhere():
    model = small_model()
    ratios = allocate("uniform", model, LAYERS, 0.995)
    assert ratios["0"] == pytest.approx(71 / 72, abs=1e-6)  # 0.995 would leave no weight
    assert ratios["2"] > 0.995
    assert overall(ratios, counts(model, LAYERS)) == pytest.approx(0.995, abs=1e-5)


def test_global_keeps_exactly_the_globally_largest_magnitudes():
    model = small_model()
    ratios = allocate("global", model, LAYERS, 0.8)
    everything = torch.cat([model.get_submodule(name).weight.detach().flatten() for name in LAYERS])
    keep = everything.numel() - round(0.8 * everything.numel())
    expected = torch.zeros(everything.numel(), dtype=torch.bool)
    expected[everything.abs().topk(keep).indices] = True
    assert len(set(ratios.values())) == len(LAYERS)  # not uniform in disguise
    MagnitudePruning().apply(model, ratios)
    kept = torch.cat([model.get_submodule(name).weight_mask.flatten() for name in LAYERS])
    assert torch.equal(kept.bool(), expected)


def test_global_never_empties_a_layer():
    model = small_model()
    with torch.no_grad():
        model[0].weight.mul_(1e-6)  # every weight of the first layer is globally the smallest
    ratios = allocate("global", model, LAYERS, 0.5)
    assert ratios["0"] == pytest.approx(71 / 72, abs=1e-6)
    assert overall(ratios, counts(model, LAYERS)) == pytest.approx(0.5, abs=1e-4)


def test_global_ties_remove_exactly_the_target_earlier_layer_first():
    model = two_linear_layers([0.5, 0.5, 0.5, 0.5], [0.5, 0.5])
    assert allocate("global", model, ["0", "1"], 0.5) == {"0": 0.75, "1": 0.0}
    assert allocate("global", model, ["0", "1"], 0.7) == {"0": 0.75, "1": 0.5}
    assert allocate("global", model, ["0", "1"], 0.9) == {"0": 0.75, "1": 0.5}  # best reachable


@pytest.mark.parametrize(
    ("sparsity", "expected"),
    [(0.2, {"0": 0.0, "1": 0.5}), (0.4, {"0": 0.333333, "1": 0.5})],
)
def test_lamp_against_a_hand_computed_example(sparsity, expected):
    # LAMP scores: layer 0 [1, 2, 3] -> 1/14, 4/13, 1; layer 1 [5, 100] -> 25/10025, 1.
    model = two_linear_layers([1.0, -2.0, 3.0], [5.0, -100.0])
    assert allocate("lamp", model, ["0", "1"], sparsity) == expected
    # Global magnitude removes the 1 (then the 2) instead of the 5.
    magnitude = {0.2: {"0": 0.333333, "1": 0.0}, 0.4: {"0": 0.666667, "1": 0.0}}
    assert allocate("global", model, ["0", "1"], sparsity) == magnitude[sparsity]


def test_lamp_scores_square_the_weights():
    # LAMP scores (w^2): layer 0 [1, 2] -> 1/5, 1; layer 1 [1, 1, 1, 1] -> 1/4, 1/3, 1/2, 1.
    # With |w| instead, layer 0's 1 would score 1/3 and a weight of layer 1 would go first.
    model = two_linear_layers([1.0, -2.0], [1.0, -1.0, 1.0, -1.0])
    ratios = allocate("lamp", model, ["0", "1"], 1 / 6)
    assert ratios == {"0": 0.5, "1": 0.0}
    MagnitudePruning().apply(model, ratios)
    assert model[0].weight_mask.tolist() == [[0.0, 1.0]]
    assert model[1].weight_mask.tolist() == [[1.0, 1.0, 1.0, 1.0]]


def test_lamp_is_blind_to_a_layers_scale_and_never_empties_it():
    model = small_model()
    before = allocate("lamp", model, LAYERS, 0.98)
    with torch.no_grad():
        model[0].weight.mul_(1e-4)
    after = allocate("lamp", model, LAYERS, 0.98)
    assert after == before
    assert round(after["0"] * 72) < 71  # global magnitude would leave it one weight
    assert allocate("global", model, LAYERS, 0.98)["0"] == pytest.approx(71 / 72, abs=1e-6)


def test_uniform_plus_keeps_the_first_layer_dense_and_a_fifth_of_the_head():
    model = small_model()
    ratios = allocate("uniform_plus", model, LAYERS, 0.85)
    assert ratios["0"] == 0.0
    assert ratios["4"] == 0.8
    assert ratios["1"] == ratios["2"] > 0.85
    assert overall(ratios, counts(model, LAYERS)) == pytest.approx(0.85, abs=1e-3)
    mild = allocate("uniform_plus", model, LAYERS, 0.5)
    assert mild["0"] == 0.0
    assert mild["1"] == mild["2"] == mild["4"] < 0.8


def test_uniform_plus_returns_the_closest_reachable_when_the_target_is_out_of_reach():
    model = small_model()
    ratios = allocate("uniform_plus", model, LAYERS, 0.98)
    one_weight_left = {name: round(1 - 1 / n, 6) for name, n in counts(model, LAYERS).items()}
    assert ratios == {"0": 0.0, "1": one_weight_left["1"], "2": one_weight_left["2"], "4": 0.8}


def test_uniform_plus_with_one_layer_is_uniform():
    model = small_model()
    assert allocate("uniform_plus", model, ["2"], 0.9) == {"2": 0.9}


def test_erk_gives_small_layers_less_sparsity_in_proportion_to_their_erk_score():
    model = small_model()
    ratios = allocate("erk", model, LAYERS, 0.9)
    assert ratios["0"] < ratios["4"] < ratios["1"] < ratios["2"]
    assert all(ratio >= 0.0 for ratio in ratios.values())  # no density above 1
    # Layers that are neither dense nor at a floor have density c * sum(dims) / prod(dims).
    score = {"1": (32 + 8 + 3 + 3) / 2304, "2": (32 + 32 + 3 + 3) / 9216}
    density = {name: 1.0 - ratios[name] for name in score}
    assert density["1"] / density["2"] == pytest.approx(score["1"] / score["2"], rel=1e-3)


def test_erk_makes_a_layer_dense_rather_than_denser_than_dense():
    model = small_model()
    ratios = allocate("erk", model, LAYERS, 0.3)
    assert ratios["0"] == 0.0  # its ERK density would be above 1
    assert overall(ratios, counts(model, LAYERS)) == pytest.approx(0.3, abs=1e-3)


def test_random_depends_on_the_generator_seed_only():
    model = small_model()

    def seeded(seed: int) -> dict[str, float]:
        return allocate("random", model, LAYERS, 0.6, torch.Generator().manual_seed(seed))

    assert seeded(1) == seeded(1)
    assert seeded(1) != seeded(2)
    assert allocate("random", model, LAYERS, 0.6) == seeded(0)
    assert len(set(seeded(1).values())) > 1


@pytest.mark.parametrize("method", ["global", "lamp"])
def test_masked_layers_are_scored_by_their_effective_weights(method):
    model = small_model()
    first = allocate(method, model, LAYERS, 0.6)
    MagnitudePruning().apply(model, first)
    assert hasattr(model[2], "weight_mask")
    assert allocate(method, model, LAYERS, 0.6) == first
    folded = small_model()
    MagnitudePruning().apply(folded, first)
    make_permanent(folded)
    again = allocate(method, model, LAYERS, 0.9)
    assert again == allocate(method, folded, LAYERS, 0.9)
    assert all(again[name] >= first[name] for name in LAYERS)
    assert torch.equal(effective_weight(model[2]), folded[2].weight.detach())


def test_an_unknown_method_is_rejected_with_the_valid_names():
    with pytest.raises(ValueError, match="unknown sparsity allocation method 'magnitude'") as err:
        allocate("magnitude", small_model(), LAYERS, 0.5)
    assert all(method in str(err.value) for method in METHODS)


@pytest.mark.parametrize("sparsity", [-0.1, 1.0, 1.5, float("nan"), True, "0.5"])
def test_a_sparsity_outside_zero_to_one_is_rejected(sparsity):
    with pytest.raises(ValueError, match=r"overall sparsity must be a number in \[0, 1\)"):
        allocate("uniform", small_model(), LAYERS, sparsity)


def test_no_layers_is_rejected():
    with pytest.raises(ValueError, match="at least one layer"):
        allocate("global", small_model(), [], 0.5)


# --- per-layer shifts --------------------------------------------------------------------


def removed_weights(ratios: dict[str, float], numels: dict[str, int]) -> float:
    return sum(ratios[name] * numels[name] for name in ratios)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("sparsity", [0.5, 0.9])
def test_shifts_of_zero_give_exactly_the_plain_rule(method, sparsity):
    model = small_model()
    zero = {name: 0.0 for name in LAYERS}
    assert allocate(method, model, LAYERS, sparsity, shifts=zero) == allocate(
        method, model, LAYERS, sparsity
    )


@pytest.mark.parametrize("method", METHODS)
def test_a_positive_shift_keeps_more_of_its_layer_at_the_same_overall_sparsity(method):
    model = small_model()
    numels = counts(model, LAYERS)
    plain = allocate(method, model, LAYERS, 0.8)
    kept_more = allocate(method, model, LAYERS, 0.8, shifts={"2": 1.0})
    kept_less = allocate(method, model, LAYERS, 0.8, shifts={"2": -1.0})
    assert kept_more["2"] < plain["2"] < kept_less["2"]
    for ratios in (kept_more, kept_less):
        assert removed_weights(ratios, numels) == pytest.approx(0.8 * sum(numels.values()), abs=1)


@pytest.mark.parametrize("method", ["uniform", "erk"])
def test_a_shift_multiplies_a_layers_density_against_the_others(method):
    model = small_model()
    plain = allocate(method, model, LAYERS, 0.8)
    shifted = allocate(method, model, LAYERS, 0.8, shifts={"2": 1.0})

    def density_ratio(ratios):  # layer 2's density over layer 1's (neither clamped here)
        return (1 - ratios["2"]) / (1 - ratios["1"])

    assert density_ratio(shifted) == pytest.approx(2 * density_ratio(plain), rel=1e-4)


def test_a_shift_that_asks_for_more_than_a_layer_has_goes_to_the_others():
    model = small_model()
    numels = counts(model, LAYERS)
    ratios = allocate("uniform", model, LAYERS, 0.5, shifts={"1": 2.0})
    assert ratios["1"] == 0.0  # 4x the others' density, clamped to dense
    assert ratios["0"] == ratios["2"] == ratios["4"] > 0.5
    assert removed_weights(ratios, numels) == pytest.approx(0.5 * sum(numels.values()), abs=1)


@pytest.mark.parametrize(
    ("shifts", "message"),
    [
        ({"3": 1.0}, "not allocated: 3"),
        ({"2": float("nan")}, "sparsity shifts.2 must be a number, got nan"),
        ({"2": "up"}, "sparsity shifts.2 must be a number, got 'up'"),
    ],
)
def test_a_bad_shift_is_refused(shifts, message):
    with pytest.raises(ValueError, match=message):
        allocate("lamp", small_model(), LAYERS, 0.5, shifts=shifts)


def test_shifts_leave_per_layer_ratios_alone_as_cnns_default_with_per_layer_shows():
    """cnn shifts its rule by default; asking it for independent ratios turns them off."""
    grid = SparsityGrid(allocation="per_layer", shift={"low": -2, "high": 2, "step": 0.5})
    assert grid.shift is None
    candidate = grid.candidate(optuna.trial.FixedTrial({"sparsity.a": 0.5}), {}, ["a"])
    assert candidate.sparsity == {"a": 0.5}

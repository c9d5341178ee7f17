"""Exact behaviour of the weight-sharing code (nas/supernet/) that the broader tests leave
open: which covering network's tensor the supernet keeps, what it refuses and says, and
what a sandwich epoch reports, augments and warns, on tiny networks whose numbers are known."""

from __future__ import annotations

import logging
import re

import optuna
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nas.data.splits import Splits
from nas.space import Candidate
from nas.supernet.elastic import Supernet
from nas.supernet.sandwich import RandomArchitectures, SupernetSettings, sandwich_epoch


def filled(width: int, value: float) -> nn.Sequential:
    """(1, 4, 4) images -> `width` features -> batch norm -> 3 classes, every float tensor
    (weights, biases, running statistics) filled with `value`."""
    network = nn.Sequential(
        nn.Flatten(), nn.Linear(16, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, 3)
    )
    with torch.no_grad():
        for tensor in [*network.parameters(), *network.buffers()]:
            if tensor.is_floating_point():
                tensor.fill_(value)
    return network


def build_filled(candidate: Candidate) -> nn.Module:
    return filled(candidate.arch["width"], candidate.arch["value"])


def held(supernet: Supernet) -> dict[str, tuple[tuple[int, ...], set[float]]]:
    """Each shared float tensor's shape and the values it holds."""
    return {
        name: (tuple(tensor.shape), set(tensor.flatten().tolist()))
        for name, tensor in [*supernet.named_parameters(), *supernet.named_buffers()]
        if tensor.is_floating_point()
    }


def shapes_and_values(width: int, value: float) -> dict[str, tuple[tuple[int, ...], set[float]]]:
    """What `held` gives for a supernet holding `filled(width, value)` (names with ':')."""
    return {
        "1:weight": ((width, 16), {value}),
        "1:bias": ((width,), {value}),
        "2:weight": ((width,), {value}),
        "2:bias": ((width,), {value}),
        "2:running_mean": ((width,), {value}),
        "2:running_var": ((width,), {value}),
        "4:weight": ((3, width), {value}),
        "4:bias": ((3,), {value}),
    }


def candidate(width: int, value: float = 0.0) -> Candidate:
    return Candidate({"width": width, "value": value})


# --- the shared tensors ---------------------------------------------------------------------


def test_a_tensor_held_as_large_or_larger_keeps_the_first_covering_networks_values():
    covering = [candidate(6, 1.0), candidate(6, 2.0), candidate(4, 3.0)]
    supernet = Supernet(build_filled, covering)
    assert held(supernet) == shapes_and_values(6, 1.0)
    assert {name for name, _ in supernet.named_parameters()} == {
        "1:weight", "1:bias", "2:weight", "2:bias", "4:weight", "4:bias"
    }  # fmt: skip


def test_a_larger_tensor_of_a_later_covering_network_replaces_the_one_held():
    # the second's tensors are larger, the head's weight in its inputs only (3 x 6)
    supernet = Supernet(build_filled, [candidate(4, 1.0), candidate(6, 2.0)])
    # the head's bias (3) is as large in both: the first's stays
    assert held(supernet) == shapes_and_values(6, 2.0) | {"4:bias": ((3,), {1.0})}
    assert {name for name, _ in supernet.named_buffers()} == {
        "2:running_mean", "2:running_var", "2:num_batches_tracked"
    }  # fmt: skip
    assert isinstance(supernet.shared("1.weight"), nn.Parameter)
    assert not isinstance(supernet.shared("2.running_mean"), nn.Parameter)


def single_linear(candidate: Candidate) -> nn.Module:
    """One layer "0": linear (rows x cols), or a 1x1 conv of that many outputs and inputs."""
    rows, cols = candidate.arch["rows"], candidate.arch["cols"]
    conv = candidate.arch.get("conv", False)
    return nn.Sequential(nn.Conv2d(cols, rows, 1) if conv else nn.Linear(cols, rows))


def test_covering_tensors_that_do_not_nest_are_refused_naming_both_shapes():
    covering = [Candidate({"rows": 4, "cols": 3}), Candidate({"rows": 6, "cols": 2})]
    message = "shared tensor '0.weight': shapes (4, 3) and (6, 2) do not nest"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Supernet(single_linear, covering)


@pytest.mark.parametrize("rows", [4, 6])  # the conv's weight (rows, 3, 1, 1) as large, larger
def test_covering_tensors_of_different_rank_under_one_name_are_refused(rows):
    covering = [
        Candidate({"rows": 4, "cols": 3}),
        Candidate({"rows": rows, "cols": 3, "conv": True}),
    ]
    with pytest.raises(ValueError):
        Supernet(single_linear, covering)


def test_a_supernet_without_a_covering_network_is_refused_saying_so():
    with pytest.raises(ValueError, match="^a supernet needs at least one covering candidate$"):
        Supernet(build_filled, [])


def test_a_network_with_a_tensor_the_supernet_lacks_is_refused_naming_it():
    def chain(candidate: Candidate) -> nn.Module:
        return nn.Sequential(*(nn.Linear(3, 3) for _ in range(candidate.arch["depth"])))

    supernet = Supernet(chain, [Candidate({"depth": 1})])
    message = "the supernet holds no '1.weight': its covering candidates miss part of the space"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        supernet.weights_for(Candidate({"depth": 2}))


# --- the sandwich rule ----------------------------------------------------------------------


def mlp(candidate: Candidate) -> nn.Module:
    """(1, 4, 4) images -> `width` hidden features -> 3 classes."""
    width = candidate.arch["width"]
    return nn.Sequential(nn.Flatten(), nn.Linear(16, width), nn.ReLU(), nn.Linear(width, 3))


def sample_width(trial: optuna.Trial) -> Candidate:
    return Candidate({"width": trial.suggest_int("width", 2, 6)})


def splits(x: torch.Tensor, augment: str | None = None) -> Splits:
    """`x` (8 images) to train on, labels 0, 1, 2, 0, ...; 2 images each to validate and test."""
    y = torch.arange(len(x)) % 3
    return Splits(x, y, x[:2], y[:2], x[:2], y[:2], n_classes=3, augment=augment)


def images(seed: int = 0) -> torch.Tensor:
    return torch.randn(8, 1, 4, 4, generator=torch.Generator().manual_seed(seed))


def settings(**values) -> SupernetSettings:
    defaults = {
        "epochs": 1, "subnets": 2, "lr": 0.002, "distill": False, "distill_warmup": 0,
        "largest_every": 1, "covering": False, "bn_images": 8,
    }  # fmt: skip
    return SupernetSettings(**defaults | values)


def epoch(
    supernet: Supernet, data: Splits, optimizer: torch.optim.Optimizer | None = None, **values
):
    """One sandwich epoch of `supernet` on `data` in batches of 4 (2 steps), seed 0."""
    return sandwich_epoch(
        supernet, optimizer or torch.optim.SGD(supernet.parameters(), lr=0.0), data,
        settings(**values), Candidate({"width": 2}), RandomArchitectures(sample_width, 0),
        batch_size=4, generator=torch.Generator().manual_seed(0), epoch=1,
    )  # fmt: skip


def fresh_supernet() -> Supernet:
    torch.manual_seed(0)
    return Supernet(mlp, [Candidate({"width": 6})])


def test_the_epoch_loss_is_the_largest_networks_mean_loss_over_its_batches():
    # Weights that do not move (learning rate 0) and batches of equal size: the mean of
    # the two batches' losses is the loss over all 8 images.
    supernet, data = fresh_supernet(), splits(images())
    with torch.no_grad():
        expected = F.cross_entropy(supernet(data.train_x, supernet.largest), data.train_y)
    tally = epoch(supernet, data)
    assert tally.loss == pytest.approx(expected.item(), rel=1e-6)
    assert tally.passes == 2.0  # the largest and the smallest over all 8 images


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_epoch_loss_of_a_supernet_on_the_gpu_is_its_largest_networks_mean_loss():
    supernet, data = fresh_supernet().cuda(), splits(images().cuda())
    with torch.no_grad():
        expected = F.cross_entropy(supernet(data.train_x, supernet.largest), data.train_y)
    assert epoch(supernet, data).loss == pytest.approx(expected.item(), rel=1e-5)


def test_a_loss_that_is_not_finite_stops_the_epoch_naming_the_supernet_loss():
    x = images()
    x[3, 0, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="^supernet training loss became nan$"):
        epoch(fresh_supernet(), splits(x))


def inputs_seen(data: Splits, global_seed: int) -> list[torch.Tensor]:
    """The inputs of every network run in one epoch on `data`, after `torch.manual_seed`."""
    supernet = fresh_supernet()
    seen, forward = [], supernet.forward

    def recording(x: torch.Tensor, candidate: Candidate, ranks) -> torch.Tensor:
        seen.append(x.clone())
        return forward(x, candidate, ranks)

    supernet.forward = recording
    torch.manual_seed(global_seed)  # whatever the process drew before
    epoch(supernet, data)
    return seen


def test_training_batches_are_augmented_from_the_epochs_generator_alone():
    data = splits(images(), augment="crop_flip")
    first, second = inputs_seen(data, 1), inputs_seen(data, 2)
    assert len(first) == 4  # 2 steps of 2 networks
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    originals = {tuple(image.flatten().tolist()) for image in data.train_x}
    batch_images = [tuple(image.flatten().tolist()) for batch in first for image in batch]
    assert any(image not in originals for image in batch_images)


@pytest.mark.filterwarnings("error")
def test_a_distilling_epoch_with_random_networks_warns_and_logs_nothing(caplog):
    # Each step: the largest, the smallest, and one drawn at random that learns the
    # largest's softened outputs.
    supernet = fresh_supernet()
    optimizer = torch.optim.Adam(supernet.parameters(), lr=0.01)
    with caplog.at_level(logging.WARNING):
        tally = epoch(supernet, splits(images()), optimizer, subnets=3, distill=True)
    assert [record.getMessage() for record in caplog.records] == []
    assert tally.passes == 3.0


def test_a_drawn_architecture_leaves_a_failed_trial_and_no_warning(recwarn, caplog):
    draws = RandomArchitectures(sample_width, 0)
    with caplog.at_level(logging.WARNING):
        widths = [draws.draw().arch["width"] for _ in range(3)]
    assert all(2 <= width <= 6 for width in widths)
    assert [t.state for t in draws.study.trials] == [optuna.trial.TrialState.FAIL] * 3
    assert [str(w.message) for w in recwarn] == []
    assert [record.getMessage() for record in caplog.records] == []


def test_covering_with_three_networks_per_step_is_accepted():
    assert settings(subnets=3, covering=True).covering
    with pytest.raises(ValueError, match="covering needs train.supernet.subnets >= 3"):
        settings(subnets=2, covering=True)

"""The weight-sharing supernet: every architecture of every built-in space is a slice of
it, and the slice computes exactly what the supernet computes for that architecture."""

from __future__ import annotations

import logging

import optuna
import pytest
import torch

from nas.space import Candidate
from nas.supernet.elastic import Supernet, cut
from search_spaces.cnn import CNNSpace
from search_spaces.mlp import MLPSpace
from search_spaces.mobilenet import MobileNetSpace
from search_spaces.resnet import ResNetSpace
from tests.conftest import DAMAGES, conf_defaults, damage

SPACES = {
    "cnn": CNNSpace(),
    "mlp": MLPSpace(),
    "resnet": ResNetSpace(),
    "mobilenet": MobileNetSpace(),
}
# The spaces to check, the slower ones with the end-to-end runs.
SPACE_NAMES = [
    "cnn",
    "mlp",
    pytest.param("resnet", marks=pytest.mark.slow),
    pytest.param("mobilenet", marks=pytest.mark.slow),
]
IN_SHAPE, N_CLASSES = (1, 12, 12), 4


def random_candidates(space, count: int, seed: int = 0):
    """`count` architectures of `space` drawn at random (the sampler's way)."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [space.sample(study.ask()) for _ in range(count)]


def perturbed(supernet: Supernet) -> Supernet:
    """`supernet` with random weights and BatchNorm statistics, so that a slice taken from
    the wrong place cannot match by accident."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for tensor in [*supernet.parameters(), *supernet.buffers()]:
            if tensor.is_floating_point():
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
    return supernet


@pytest.mark.parametrize("name", SPACE_NAMES)
def test_a_sliced_network_computes_what_the_supernet_computes_for_it(name):
    space = SPACES[name]
    supernet = perturbed(space.supernet(IN_SHAPE, N_CLASSES)).eval()
    x = torch.randn(5, *IN_SHAPE, generator=torch.Generator().manual_seed(2))
    for candidate in random_candidates(space, 6):
        network = space.build(candidate, IN_SHAPE, N_CLASSES)
        network.load_state_dict(supernet.weights_for(candidate))
        expected = network.eval()(x)
        assert expected.shape == (5, N_CLASSES)
        torch.testing.assert_close(supernet(x, candidate), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("name", SPACE_NAMES)
def test_architectures_share_the_first_channels_of_the_largest(name):
    space = SPACES[name]
    supernet = perturbed(space.supernet(IN_SHAPE, N_CLASSES))
    largest = supernet.weights_for(supernet.largest)
    for candidate in random_candidates(space, 6, seed=3):
        for key, tensor in supernet.weights_for(candidate).items():
            shared = supernet.shared(supernet.shared_name(candidate, key))
            torch.testing.assert_close(tensor, cut(shared, tensor.shape))
            if key in largest and supernet.shared_name(candidate, key) == key:
                torch.testing.assert_close(tensor, cut(largest[key], tensor.shape))


def test_gradients_of_a_sub_network_reach_only_its_slice():
    space = CNNSpace(blocks=(1, 1), channels=(8, 16), kernel_sizes=(3, 5), hidden=(0,))
    supernet = space.supernet(IN_SHAPE, N_CLASSES).train()
    (small,) = [c for c in random_candidates(space, 20) if c.arch["channels"] == [8]][:1]
    supernet(torch.randn(4, *IN_SHAPE), small).sum().backward()
    grad = supernet.shared("block1.conv.weight").grad
    kernel = small.arch["kernel_size"]
    inner = cut(grad, torch.Size((8, 1, kernel, kernel)))
    assert inner.abs().sum() > 0
    assert grad[8:].abs().sum() == 0


def test_cnn_layers_after_the_flatten_have_their_own_weights_per_depth():
    """The flattened features differ per depth, so the hidden layer and the head after it
    are per depth too: a head shared by every depth's hidden layer was ruled by the largest
    network and left depth-1 networks with a hidden layer at chance accuracy."""
    supernet = SPACES["cnn"].supernet(IN_SHAPE, N_CLASSES)
    names = {
        (depth, hidden, key): supernet.shared_name(
            Candidate({"channels": [8] * depth, "kernel_size": 3, "hidden": hidden}), key
        )
        for depth in (1, 2, 3)
        for hidden in (0, 32)
        for key in ("head.weight", "head.bias")
    }
    assert len(set(names.values())) == len(names)


def test_a_kernel_smaller_than_the_shared_one_is_its_centre():
    shared = torch.arange(25.0).reshape(1, 1, 5, 5)
    assert cut(shared, torch.Size((1, 1, 3, 3))).flatten().tolist() == [
        6, 7, 8, 11, 12, 13, 16, 17, 18
    ]  # fmt: skip
    with pytest.raises(ValueError, match="cannot cut shape"):
        cut(shared, torch.Size((2, 1, 3, 3)))


# --- a trial on sliced weights ---------------------------------------------------------

SMALL_CNN = CNNSpace(blocks=(1, 2), channels=(8, 16), kernel_sizes=(3,), hidden=(0, 16))


def sliced_trial(tiny_splits, finetune_epochs: int):
    """A pipeline slicing SMALL_CNN's dense weights out of an untrained supernet
    (recalibrating on 64 images), and a one-block candidate to run through it."""
    from optuna.trial import FixedTrial

    from nas.prune.methods import MagnitudePruning
    from nas.trial.pipeline import TrialPipeline
    from nas.trial.train import TrainSettings

    supernet = SMALL_CNN.supernet(tiny_splits.in_shape, tiny_splits.n_classes)
    settings = TrainSettings(
        **conf_defaults("train", epochs=3, finetune_epochs=finetune_epochs, batch_size=64)
    )
    pipeline = TrialPipeline(
        SMALL_CNN, tiny_splits, MagnitudePruning(), settings, torch.device("cpu"),
        dense_source=supernet.weights_for, recalibration_images=64,
    )  # fmt: skip
    params = {"arch.blocks": 1, "arch.block1.channels": 8, "arch.kernel_size": 3}
    params |= {"arch.hidden": 0, "sparsity.block1.conv": 0.5, "sparsity.head": 0.5}
    return pipeline, SMALL_CNN.sample(FixedTrial(params))


@pytest.mark.slow
def test_a_trial_on_sliced_weights_fine_tunes_and_counts_its_recalibration_in_its_budget(
    tiny_splits,
):
    from dataclasses import replace

    pipeline, candidate = sliced_trial(tiny_splits, finetune_epochs=1)
    # the 64 recalibration images' forward passes: a third of a training pass each
    recalibration = 64 / (3 * len(tiny_splits.train_x))
    assert pipeline.planned_epochs(candidate, seed=0) == pytest.approx(1 + recalibration)
    result, _ = pipeline.run(candidate, seed=0)
    assert result.dense_sliced and not result.dense_cached
    assert result.recalibration_epochs == pytest.approx(recalibration)
    assert result.train_epochs == pytest.approx(1 + recalibration)
    train = 3 * len(tiny_splits.train_x) * result.dense_flops
    assert result.train_flops == train + 64 * result.dense_flops
    from_scratch = replace(pipeline, dense_source=None).run(candidate, seed=0)[0]
    assert not from_scratch.dense_sliced and from_scratch.recalibration_epochs == 0
    assert isinstance(from_scratch.train_epochs, int)  # whole epochs, as ever
    assert from_scratch.train_flops == 3 * len(tiny_splits.train_x) * 4 * result.dense_flops


def test_a_sliced_trial_resumed_mid_fine_tuning_counts_what_an_uninterrupted_one_does(
    tiny_splits,
):
    from tests.test_objective import Killed, MemoryCheckpoints

    pipeline, candidate = sliced_trial(tiny_splits, finetune_epochs=2)
    uninterrupted, _ = pipeline.run(candidate, seed=0, checkpoints=MemoryCheckpoints())
    dense_epochs = pipeline.settings.epochs
    first_try = MemoryCheckpoints(die_after=dense_epochs + 1)  # after 1 fine-tuning epoch
    with pytest.raises(Killed):
        pipeline.run(candidate, seed=0, checkpoints=first_try)
    resumed, _ = pipeline.run(candidate, seed=0, checkpoints=MemoryCheckpoints(first_try.saved))
    assert resumed.resumed_from_epoch == dense_epochs + 1
    assert resumed.dense_sliced and resumed.values() == uninterrupted.values()
    counted = ("train_epochs", "train_flops", "recalibration_epochs")
    assert [getattr(resumed, name) for name in counted] == [
        getattr(uninterrupted, name) for name in counted
    ]


def test_batchnorm_recalibration_gives_the_statistics_of_the_images():
    from nas.trial.train import recalibrate_batchnorm

    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1, bias=False), torch.nn.BatchNorm2d(2))
    x = torch.randn(40, 1, 3, 3) * 3 + 1
    x[32:] += 5  # the last, smaller batch (16, 16, 8) differs: each image counts alike
    recalibrate_batchnorm(model, x, batch_size=16)
    features = model[0](x).detach()
    torch.testing.assert_close(model[1].running_mean, features.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(model[1].running_var, features.var(dim=(0, 2, 3)))
    assert model[1].momentum == 0.1 and not model.training


# --- the study's supernet: settings, budget, claims ----------------------------------------


def test_a_space_without_a_supernet_and_a_budget_too_small_are_one_line_errors():
    from nas.errors import UsageError
    from nas.search.study import check_weight_sharing
    from nas.supernet.sandwich import SupernetSettings

    class NoSupernet:
        pass

    with pytest.raises(UsageError, match=r"NoSupernet has no supernet\(in_shape, n_classes\)"):
        check_weight_sharing(
            NoSupernet(), SupernetSettings(**conf_defaults("train.supernet")), None
        )
    every_step = SupernetSettings(
        **conf_defaults("train.supernet", epochs=6, subnets=4, largest_every=1)
    )
    with pytest.raises(UsageError, match="study.max_epochs=24 leaves nothing .* 24 epochs"):
        check_weight_sharing(CNNSpace(), every_step, 24)
    check_weight_sharing(CNNSpace(), every_step, 25)
    every_other_step = SupernetSettings(
        **conf_defaults("train.supernet", epochs=6, subnets=4, largest_every=2)
    )
    with pytest.raises(UsageError, match="study.max_epochs=21 leaves nothing .* 21 epochs"):
        check_weight_sharing(CNNSpace(), every_other_step, 21)
    check_weight_sharing(CNNSpace(), every_other_step, 22)


def test_the_supernets_epochs_count_in_the_studys_budget():
    from nas.search.callbacks import TrialBudget

    study = optuna.create_study()
    study.set_user_attr("supernet", {"train_epochs": 24})
    study.add_trial(optuna.create_trial(value=1.0, user_attrs={"train_epochs": 1}))
    assert TrialBudget.epochs_spent(study) == 25
    assert TrialBudget(10, max_epochs=25).exhausted(study)
    # a rerun of the study then says it is done, rather than sampling a trial to refuse
    assert not TrialBudget(10, max_epochs=25).short(study)
    assert TrialBudget(10, max_epochs=26).short(study)


def trainer(study, tiny_splits, store=None, **settings):
    """A trainer of SMALL_CNN's supernet for `study`; with a `store` folder (made if
    missing) it can train and save: its smallest network is then one 8-channel block."""
    from nas.search.supernet import SupernetTrainer
    from nas.supernet.sandwich import SupernetSettings

    artifacts, smallest = None, None
    if store is not None:
        store.mkdir(parents=True, exist_ok=True)
        artifacts = optuna.artifacts.FileSystemArtifactStore(str(store))
        smallest = Candidate({"channels": [8], "kernel_size": 3, "hidden": 0})
    return SupernetTrainer(
        study, artifacts, lambda: SMALL_CNN.supernet(tiny_splits.in_shape, tiny_splits.n_classes),
        tiny_splits, SupernetSettings(**conf_defaults("train.supernet", **settings)), smallest,
        SMALL_CNN.sample, 64, 0, heartbeat_interval=1, grace_period=2,
    )  # fmt: skip


def test_changing_the_supernet_settings_of_a_study_is_refused(compose_config):
    from nas.errors import UsageError
    from nas.search.recorded import trial_settings
    from nas.search.storage import _check_same_settings

    def settings(epochs: int) -> dict:
        cfg = compose_config("+space=cnn", "train=supernet", f"train.supernet.epochs={epochs}")
        return trial_settings(cfg)

    study = optuna.create_study()
    for key, value in settings(2).items():
        study.set_user_attr(key, value)
    _check_same_settings(study, settings(2))
    with pytest.raises(UsageError, match=r"train.supernet.epochs 2 -> 3"):
        _check_same_settings(study, settings(3))


def test_a_supernet_saved_by_another_version_of_the_space_is_refused(tiny_splits):
    from nas.errors import UsageError

    study = optuna.create_study(study_name="old")
    loader = trainer(study, tiny_splits)
    state = loader.make().state_dict()
    assert loader._built(dict(state)).state_dict().keys() == state.keys()
    state["head:weight"] = state.pop("depth1:after_hidden:head:weight")  # the former name
    with pytest.raises(UsageError, match=r"'old' holds a supernet .*head:weight.* another"):
        loader._built(state)


def test_one_worker_claims_the_training_until_its_heartbeat_goes_stale(tiny_splits, monkeypatch):
    import nas.search.supernet as shared

    now = [1000.0]
    monkeypatch.setattr(shared.time, "time", lambda: now[0])
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    first, second = trainer(study, tiny_splits), trainer(study, tiny_splits)
    assert first._claim()
    assert not second._claim() and not first._claim()
    now[0] += 1.5  # within the grace period of 2 s
    assert not second._claim()
    now[0] += 1.0  # the trainer has been silent for 2.5 s: the next claim is open, once
    assert second._claim()
    assert not first._claim()
    assert study.user_attrs[shared.CLAIMS] == 2
    first._release()
    names = {s.study_name for s in optuna.get_all_study_summaries(study._storage)}
    assert names == {study.study_name}


def sandwich_run(tiny_splits, epoch: int = 1, **settings):
    """Sandwich epoch `epoch` of a fresh supernet: the (architecture, batch size) of every
    network each step ran, the epoch's tally and the supernet."""
    from nas.supernet.sandwich import RandomArchitectures, SupernetSettings, sandwich_epoch

    supernet = SMALL_CNN.supernet(tiny_splits.in_shape, tiny_splits.n_classes)
    optimizer = torch.optim.Adam(supernet.parameters())
    steps: list[list[tuple[Candidate, int]]] = [[]]
    forward, step = supernet.forward, optimizer.step

    def recording(x, candidate, ranks):
        steps[-1].append((candidate, len(x)))
        return forward(x, candidate, ranks)

    def stepping(*args, **kwargs):
        steps.append([])
        return step(*args, **kwargs)

    supernet.forward, optimizer.step = recording, stepping
    smallest = Candidate({"channels": [8], "kernel_size": 3, "hidden": 0})
    tally = sandwich_epoch(
        supernet, optimizer, tiny_splits,
        SupernetSettings(**conf_defaults("train.supernet", **settings)), smallest,
        RandomArchitectures(SMALL_CNN.sample, 0), batch_size=48,
        generator=torch.Generator().manual_seed(0), epoch=epoch,
    )  # fmt: skip
    return steps[:-1], tally, supernet


def sandwich_networks(tiny_splits, epoch: int = 1, **settings) -> list[list[str]]:
    """The architectures each step of sandwich epoch `epoch` ran, by description."""
    steps, _, _ = sandwich_run(tiny_splits, epoch, **settings)
    return [[SMALL_CNN.describe(candidate) for candidate, _ in ran] for ran in steps]


def test_a_covering_sandwich_runs_the_other_covering_networks_in_turn(tiny_splits):
    steps = sandwich_networks(tiny_splits, subnets=4, covering=True, largest_every=1)
    supernet = SMALL_CNN.supernet(tiny_splits.in_shape, tiny_splits.n_classes)
    others = [SMALL_CNN.describe(c) for c in supernet.covering[1:]]
    assert others == ["conv 16-16 k3 > head", "conv 16 k3 > fc 16 > head", "conv 16 k3 > head"]
    assert len(steps) == 5  # 240 training images in batches of 48
    for number, networks in enumerate(steps):
        assert networks[:3] == [
            "conv 16-16 k3 > fc 16 > head", "conv 8 k3 > head", others[number % 3]
        ]  # fmt: skip
        assert len(networks) == 4  # one random network left
    plain = sandwich_networks(tiny_splits, subnets=4, largest_every=1)
    assert all(len(networks) == 4 for networks in plain)
    assert [networks[2] for networks in plain] != [others[n % 3] for n in range(5)]


@pytest.fixture
def loss_calls(monkeypatch) -> dict[str, int]:
    """How often the losses are called from now on: distillation (`kl_div`) and labels
    (`cross_entropy`)."""
    calls = {"kl_div": 0, "cross_entropy": 0}
    for name in calls:
        original = getattr(torch.nn.functional, name)

        def counted(*args, _original=original, _name=name, **kwargs):
            calls[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(torch.nn.functional, name, counted)
    return calls


@pytest.mark.parametrize("epoch, distilled", [(1, 0), (2, 0), (3, 3)])
def test_the_others_learn_the_labels_until_the_distillation_warmup_is_over(
    tiny_splits, loss_calls, epoch, distilled
):
    steps = sandwich_networks(tiny_splits, epoch, subnets=4, distill_warmup=2, largest_every=1)
    assert loss_calls["kl_div"] == distilled * len(steps)
    assert loss_calls["cross_entropy"] == (4 - distilled) * len(steps)  # the largest's, always


def test_the_largest_network_runs_every_nth_step_and_without_it_the_others_learn_labels(
    tiny_splits, loss_calls
):
    steps = sandwich_networks(tiny_splits, 2, subnets=3, largest_every=2)
    largest = "conv 16-16 k3 > fc 16 > head"
    assert [networks[0] == largest for networks in steps] == [True, False, True, False, True]
    assert [len(networks) for networks in steps] == [3, 2, 3, 2, 3]
    assert all(networks[-2] == "conv 8 k3 > head" for networks in steps)  # the smallest
    assert loss_calls["kl_div"] == 3 * 2  # the two others of each step with the largest
    assert loss_calls["cross_entropy"] == 3 + 2 * 2  # the largest's, and the others' without it


def test_a_covering_sandwich_needs_room_for_the_covering_network():
    from nas.supernet.sandwich import SupernetSettings

    with pytest.raises(ValueError, match="covering needs train.supernet.subnets >= 3"):
        SupernetSettings(**conf_defaults("train.supernet", subnets=2, covering=True))
    with pytest.raises(ValueError, match="covering must be true or false"):
        SupernetSettings(**conf_defaults("train.supernet", covering="yes"))
    with pytest.raises(ValueError, match="distill_warmup must be a whole number >= 0"):
        SupernetSettings(**conf_defaults("train.supernet", distill_warmup=-1))
    with pytest.raises(ValueError, match="largest_every must be a whole number >= 1"):
        SupernetSettings(**conf_defaults("train.supernet", largest_every=0))


def test_a_study_recorded_before_settings_were_added_resumes_only_with_their_defaults():
    from nas.search.recorded import setting_changes

    study = optuna.create_study()
    study.set_user_attr("train_config", {"epochs": 3, "supernet": {"epochs": 6}})
    study.set_user_attr("finetune_config", {"epochs": 2})
    added = {"covering": False, "distill_warmup": 0, "largest_every": 1}
    polish = {"share": 0.0, "epochs": 5, "order": "accurate"}  # added since too (test_polish.py)
    same = {"epochs": 3, "supernet": {"epochs": 6, **added}, "polish": polish}
    assert setting_changes(study, {"train_config": same, "finetune_config": {"epochs": 2}}) == []
    changed = {"covering": True, "distill_warmup": 1, "largest_every": 2}
    changed = {"epochs": 3, "supernet": {"epochs": 6, **changed}, "polish": polish}
    assert setting_changes(study, {"train_config": changed}) == [
        "train.supernet.covering false -> true",
        "train.supernet.distill_warmup 0 -> 1",
        "train.supernet.largest_every 1 -> 2",
    ]
    from_scratch = optuna.create_study()
    from_scratch.set_user_attr("train_config", {"epochs": 3})
    assert setting_changes(from_scratch, {"train_config": {"epochs": 3, "polish": polish}}) == []


def test_a_sandwich_epoch_counts_the_passes_and_flops_of_the_networks_it_ran(tiny_splits):
    from nas.prune.counting import dense_flops
    from nas.supernet.sandwich import SupernetSettings

    steps, tally, supernet = sandwich_run(tiny_splits, subnets=3, largest_every=2)
    ran = [network for networks in steps for network in networks]
    flops = sum(size * dense_flops(supernet.build(c), tiny_splits.in_shape) for c, size in ran)
    assert tally.flops == flops
    # 5 steps of 48 images: the largest in steps 1, 3 and 5, two others in each
    assert tally.passes == pytest.approx(2 + 3 / 5)
    assert (
        SupernetSettings(**conf_defaults("train.supernet", subnets=3, largest_every=2)).epoch_cost
        == 2.5
    )


def test_a_study_of_the_same_seed_trains_the_same_supernet(tiny_splits, tmp_path):
    states = []
    for before in (1, 2):  # whatever the process drew from torch's global generator before
        torch.manual_seed(before)
        same_seed = trainer(optuna.create_study(), tiny_splits, tmp_path, epochs=1, subnets=3)
        states.append(same_seed.ready().state_dict())
    assert states[0].keys() == states[1].keys()
    for name, tensor in states[0].items():
        torch.testing.assert_close(tensor, states[1][name], rtol=0, atol=0)


def test_the_supernet_record_sums_the_training_of_every_epoch(tiny_splits, tmp_path, monkeypatch):
    import nas.search.supernet as shared
    from nas.supernet.sandwich import EpochTally

    monkeypatch.setattr(
        shared, "sandwich_epoch", lambda *args: EpochTally(loss=1.0, passes=2.6, flops=1000)
    )
    study = optuna.create_study()
    shared_trainer = trainer(study, tiny_splits, tmp_path, epochs=2, subnets=3, largest_every=2)
    shared_trainer.ready()
    record = shared.record_of(study)
    assert (record["epochs_done"], record["train_epochs"], record["train_flops"]) == (2, 5.2, 6000)
    resumed = trainer(study, tiny_splits, tmp_path, epochs=3, subnets=3, largest_every=2)
    resumed._train(2)
    record = shared.record_of(study)
    assert (record["epochs_done"], record["train_epochs"], record["train_flops"]) == (3, 7.8, 9000)


def test_a_supernet_whose_checkpoint_file_is_gone_is_a_one_line_error(tiny_splits, tmp_path):
    from nas.errors import UsageError

    study = optuna.create_study(study_name="moved")
    trainer(study, tiny_splits, tmp_path / "store", epochs=1, subnets=3).ready()
    # the same study, pointed at another store
    elsewhere = trainer(study, tiny_splits, tmp_path / "elsewhere", epochs=1, subnets=3)
    with pytest.raises(UsageError, match=r"'moved' .* its artifact store has no supernet-"):
        elsewhere.ready()


def supernet_file(study, store, epoch: int):
    """Where `store` keeps the newest supernet state `study` saved after `epoch`."""
    metas = optuna.artifacts.get_all_artifact_meta(study)
    return (
        store / [m for m in metas if m.filename == f"supernet-epoch{epoch:03d}.pt"][-1].artifact_id
    )


def assert_same_weights(supernet: Supernet, state: dict) -> None:
    assert supernet.state_dict().keys() == state.keys()
    for name, tensor in supernet.state_dict().items():
        torch.testing.assert_close(tensor, state[name], rtol=0, atol=0)


@pytest.mark.parametrize("how", DAMAGES)
def test_an_unreadable_supernet_state_is_deleted_and_training_resumes_after_the_last_readable(
    tiny_splits, tmp_path, caplog, how
):
    import nas.search.supernet as shared

    study, store = optuna.create_study(study_name="s"), tmp_path / "store"
    trained = trainer(study, tiny_splits, store, epochs=2, subnets=3).ready().state_dict()
    broken = supernet_file(study, store, 2)
    damage(broken, how)
    study.set_user_attr(shared.HEARTBEAT, 0.0)  # its trainer is long gone
    with caplog.at_level(logging.INFO, logger="nas"):
        again = trainer(study, tiny_splits, store, epochs=2, subnets=3).ready()
    (unreadable,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert unreadable.startswith("supernet-epoch002.pt of study 's' cannot be read (")
    assert unreadable.endswith("): deleted it; trying the state after epoch 1")
    trained_again = [m for m in caplog.messages if m.startswith("supernet epoch ")]
    assert len(trained_again) == 1 and trained_again[0].startswith("supernet epoch 2 of 2:")
    assert not broken.exists() and supernet_file(study, store, 2).exists()
    assert shared.record_of(study)["epochs_done"] == 2
    assert_same_weights(again, trained)  # on the CPU, as if nothing had been lost


def test_a_supernet_with_no_readable_state_is_trained_again_from_scratch(
    tiny_splits, tmp_path, caplog
):
    import nas.search.supernet as shared

    study, store = optuna.create_study(study_name="s"), tmp_path / "store"
    trained = trainer(study, tiny_splits, store, epochs=1, subnets=3).ready().state_dict()
    damage(supernet_file(study, store, 1), "random bytes")
    study.set_user_attr(shared.HEARTBEAT, 0.0)  # its trainer is long gone
    with caplog.at_level(logging.WARNING, logger="nas"):
        again = trainer(study, tiny_splits, store, epochs=1, subnets=3).ready()
    (unreadable,) = [record.getMessage() for record in caplog.records]
    assert unreadable.startswith("supernet-epoch001.pt of study 's' cannot be read (")
    assert unreadable.endswith("): deleted it; training it again from scratch")
    assert_same_weights(again, trained)

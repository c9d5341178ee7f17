"""Data-parallel supernet training (`nas.supernet.ranks`): two CPU processes on gloo, each
on its share of every batch, end with the weights one process reaches on whole batches."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import optuna
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from nas.data.synthetic import synthetic_images
from nas.space import Candidate
from nas.supernet.ranks import ALONE, Ranks
from nas.supernet.sandwich import RandomArchitectures, SupernetSettings, sandwich_epoch
from search_spaces.cnn import CNNSpace
from tests.conftest import assert_one_line_error, forked_nas, nas_command

SPACE = CNNSpace(blocks=(1, 2), channels=(8, 16), kernel_sizes=(3,), hidden=(0, 16))
SMALLEST = Candidate({"channels": [8], "kernel_size": 3, "hidden": 0})
SETTINGS = SupernetSettings(
    epochs=2, subnets=3, lr=0.003, distill=True, distill_warmup=1, largest_every=1,
    covering=False, bn_images=64,
)  # fmt: skip
BATCH = 25  # 120 training images in batches of 25 and 20: shares of 13 and 12, 9, 8 and 8


def splits():
    """120 / 40 / 40 generated 12x12 images of 4 classes (the same in every process)."""
    return synthetic_images(
        n_samples=200, n_classes=4, image_size=12, noise=1.0, val_fraction=0.2,
        test_fraction=0.2, split_seed=0,
    )  # fmt: skip


def trained(ranks: Ranks) -> tuple[dict[str, torch.Tensor], list[float]]:
    """The supernet's tensors after two sandwich epochs (labels, then distillation) from
    seed 0, trained by this process among `ranks`, and each epoch's loss."""
    data = splits()
    torch.manual_seed(0)
    supernet = SPACE.supernet(data.in_shape, data.n_classes)
    optimizer = torch.optim.Adam(supernet.parameters(), lr=SETTINGS.lr)
    losses = []
    for epoch in (1, 2):
        tally = sandwich_epoch(
            supernet, optimizer, data, SETTINGS, SMALLEST,
            RandomArchitectures(SPACE.sample, seed=epoch), BATCH,
            torch.Generator().manual_seed(epoch), epoch, ranks,
        )  # fmt: skip
        losses.append(tally.loss)
    return supernet.state_dict(), losses


def rank_main(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.save(trained(Ranks(rank, world)), f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two processes importing torch
def test_two_ranks_on_shares_of_each_batch_reach_one_process_weights(tmp_path):
    world = 2
    alone, alone_losses = trained(ALONE)
    mp.spawn(rank_main, args=(world, free_port(), str(tmp_path)), nprocs=world)

    results = [torch.load(tmp_path / f"rank{r}.pt") for r in range(world)]
    for state, losses in results:
        assert state.keys() == alone.keys()
        for name, tensor in alone.items():
            torch.testing.assert_close(state[name], tensor, rtol=1e-4, atol=1e-5, msg=name)
        assert losses == pytest.approx(alone_losses, rel=1e-5)
    # the ranks agree bit for bit: the same summed gradients, the same steps
    first = results[0][0]
    for state, _ in results[1:]:
        assert all(torch.equal(state[name], first[name]) for name in first)
    assert any("running_mean" in name for name in alone)  # BatchNorm statistics compared


@pytest.mark.slow
def test_torchrun_trains_the_supernet_once_and_the_search_slices_from_it(tmp_path):
    overrides = ["+space=cnn", "train=supernet", "+debug=smoke", "train.supernet.epochs=2"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    trained = subprocess.run(
        [*torchrun, "-m", "nas", "train-supernet", *overrides],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert trained.stdout.count("holds its trained supernet: 2 epochs") == 1  # rank 0 alone
    assert (trained.stdout + trained.stderr).count("supernet epoch 2 of 2") == 1
    assert "Warning" not in trained.stderr

    searched = subprocess.run(
        nas_command("search", *overrides), cwd=tmp_path, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert searched.returncode == 0, searched.stderr
    assert "supernet epoch" not in searched.stdout + searched.stderr  # not trained again
    study = optuna.load_study(
        study_name="cnn-smoke", storage=f"sqlite:///{tmp_path}/outputs/smoke.db"
    )
    record = study.user_attrs["supernet"]
    assert record["epochs_done"] == 2
    assert study.user_attrs["supernet_claims"] == 1
    finished = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(finished) == 2
    assert all(t.user_attrs["dense_sliced"] for t in finished)


@pytest.mark.slow
def test_train_supernet_without_weight_sharing_is_one_line_and_exit_2(tmp_path):
    result = forked_nas("train-supernet", "+space=cnn", "+debug=smoke", cwd=tmp_path)
    assert_one_line_error(result, "train-supernet trains", "add train=supernet")
    assert not (tmp_path / "outputs" / "smoke.db").exists()

"""Where and when a sliced candidate's BatchNorm statistics are re-estimated, stated as
numbers computed apart: once its sliced weights are in place, from the first
`train.supernet.bn_images` training images passed through them."""

from __future__ import annotations

import optuna
import torch
from optuna.trial import FixedTrial
from torch.nn import functional as F

from nas.prune.methods import MagnitudePruning
from nas.search.settings import StudySettings
from nas.search.study import Search
from nas.search.supernet import SupernetTrainer
from nas.supernet.sandwich import SupernetSettings
from nas.trial.pipeline import TrialPipeline
from nas.trial.train import TrainSettings
from tests.conftest import conf_defaults
from tests.test_supernet import SMALL_CNN, perturbed

BN_IMAGES = 24  # fewer than a batch: the statistics are those of one pass over them


def batch_statistics(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per channel of the (N, C, H, W) `x`: the mean, the unbiased variance (what BatchNorm
    keeps as its running variance) and the biased one (what it normalises a batch with)."""
    dims = (0, 2, 3)
    return x.mean(dims), x.var(dims, correction=1), x.var(dims, correction=0)


def normalised(x: torch.Tensor, shared, norm: str, channels: int) -> torch.Tensor:
    """`x` through BatchNorm `norm` in training mode (the batch's own statistics) with the
    first `channels` of its shared scale and shift, by hand."""
    mean, _, biased = batch_statistics(x)
    scale = shared(f"{norm}.weight")[:channels, None, None]
    shift = shared(f"{norm}.bias")[:channels, None, None]
    return (x - mean[:, None, None]) / torch.sqrt(biased[:, None, None] + 1e-5) * scale + shift


def test_a_sliced_candidate_recalibrates_on_the_first_bn_images_through_its_sliced_weights(
    tiny_splits, tmp_path, monkeypatch
):
    """Through the study's wiring: `Search.with_supernet` hands the trial pipeline the
    supernet's slices and `train.supernet.bn_images`; the trial's BatchNorm statistics are
    then those of the first 24 training images through two 8-channel blocks cut from
    16-channel ones (the supernet's own statistics, random here, are gone)."""
    supernet = perturbed(SMALL_CNN.supernet(tiny_splits.in_shape, tiny_splits.n_classes))
    monkeypatch.setattr(SupernetTrainer, "ready", lambda trainer: supernet)
    settings = TrainSettings(**conf_defaults("train", epochs=1, finetune_epochs=0, batch_size=64))
    pipeline = TrialPipeline(
        SMALL_CNN, tiny_splits, MagnitudePruning(), settings, torch.device("cpu")
    )
    search = Search(
        cfg=None, opts=StudySettings(**conf_defaults("study")), seed=0, url="",
        store_dir=tmp_path, pipeline=pipeline, early_exit=None, siblings=None, revisits=None,
        polish=None,
        supernet=SupernetSettings(**conf_defaults("train.supernet", bn_images=BN_IMAGES)),
    )  # fmt: skip
    sliced = search.with_supernet(pipeline, optuna.create_study(), store=None)
    params = {"arch.blocks": 2, "arch.block1.channels": 8, "arch.block2.channels": 8}
    params |= {"arch.kernel_size": 3, "arch.hidden": 0}
    params |= {"sparsity.block1.conv": 0.0, "sparsity.block2.conv": 0.0, "sparsity.head": 0.0}
    result, model = sliced.run(SMALL_CNN.sample(FixedTrial(params)), seed=0)
    assert result.dense_sliced
    assert result.recalibration_epochs == BN_IMAGES / (3 * len(tiny_splits.train_x))

    shared = supernet.shared
    images = tiny_splits.train_x[:BN_IMAGES]
    with torch.no_grad():
        block1 = F.conv2d(images, shared("block1.conv.weight")[:8], padding=1)
        mean1, var1, _ = batch_statistics(block1)
        block1 = F.max_pool2d(F.relu(normalised(block1, shared, "block1.norm", 8)), 2)
        block2 = F.conv2d(block1, shared("block2.conv.weight")[:8, :8], padding=1)
        mean2, var2, _ = batch_statistics(block2)
    for norm, mean, var in ((model.block1.norm, mean1, var1), (model.block2.norm, mean2, var2)):
        torch.testing.assert_close(norm.running_mean, mean, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(norm.running_var, var, rtol=1e-5, atol=1e-5)
    # the learned scale and shift are the supernet's, untouched by the recalibration
    assert torch.equal(model.block2.norm.weight, shared("block2.norm.weight")[:8])
    assert torch.equal(model.block2.norm.bias, shared("block2.norm.bias")[:8])

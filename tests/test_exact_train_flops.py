"""The training FLOPs of a trial whose channels were removed, computed by hand from the
layer shapes: forward FLOPs per sample (a multiply-add is 2 FLOPs, convs and linear
layers only) x samples x 3 (forward and backward) for each phase, the dense network's for
dense training and recalibration, the pruned network's for fine-tuning."""

from __future__ import annotations

import torch
from optuna.trial import FixedTrial

from nas.prune.methods import ChannelPruning
from nas.prune.schedule import OneShot
from nas.trial.pipeline import TrialPipeline
from nas.trial.train import TrainSettings
from search_spaces.cnn import CNNSpace
from tests.conftest import conf_defaults
from tests.test_exact_distillation import first_images
from tests.test_objective import PARAMS

IMAGES = 96  # training images


def conv_flops(out: int, inputs: int, kernel: int, size: int) -> int:
    """2 x the multiply-adds of a conv with `size` x `size` outputs."""
    return 2 * out * inputs * kernel * kernel * size * size


# PARAMS on 12x12 images: convs of 8 and 8 channels (3x3, each followed by a 2x2 pool),
# a hidden layer of 32 and 4 classes
DENSE = conv_flops(8, 1, 3, 12) + conv_flops(8, 8, 3, 6) + 2 * (8 * 3 * 3) * 32 + 2 * 32 * 4
# channels removed at PARAMS' ratios (25 %, 50 %, 90 % down to 4 kept): 6 and 4 channels,
# a hidden layer of 4; the head keeps its 4 class outputs
PRUNED = conv_flops(6, 1, 3, 12) + conv_flops(4, 6, 3, 6) + 2 * (4 * 3 * 3) * 4 + 2 * 4 * 4


def channel_pipeline(splits, finetune_epochs: int, **options) -> TrialPipeline:
    settings = TrainSettings(
        **conf_defaults("train", epochs=1, finetune_epochs=finetune_epochs, batch_size=48)
    )
    return TrialPipeline(
        CNNSpace(), splits, ChannelPruning(), settings, torch.device("cpu"), OneShot(), **options
    )


def test_a_channel_pruned_trial_counts_its_fine_tuning_at_the_pruned_networks_flops(
    tiny_splits,
):
    splits = first_images(tiny_splits, IMAGES)
    candidate = CNNSpace().sample(FixedTrial(PARAMS))
    result, model = channel_pipeline(splits, finetune_epochs=2).run(candidate, seed=0)
    assert (model.block1.conv.out_channels, model.block2.conv.out_channels) == (6, 4)
    assert model.hidden.out_features == 4
    assert (result.dense_flops, result.flops) == (DENSE, PRUNED) == (67072, 31424)
    assert result.train_flops == 3 * IMAGES * (1 * DENSE + 2 * PRUNED)
    assert result.train_epochs == 1 + 2


def test_a_sliced_channel_pruned_trial_counts_its_recalibration_at_the_dense_networks_flops(
    tiny_splits,
):
    splits = first_images(tiny_splits, IMAGES)
    space = CNNSpace()
    candidate = space.sample(FixedTrial(PARAMS))
    dense = space.build(candidate, splits.in_shape, splits.n_classes).state_dict()
    pipeline = channel_pipeline(
        splits, 1, dense_source=lambda candidate: dense, recalibration_images=40
    )
    result, _ = pipeline.run(candidate, seed=0)
    assert result.dense_sliced
    # 40 forward passes of the dense network, then one epoch of the pruned one
    assert result.train_flops == 40 * DENSE + 3 * IMAGES * PRUNED
    assert result.train_epochs == 1 + 40 / (3 * IMAGES)

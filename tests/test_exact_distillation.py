"""What distillation teaches, stated as numbers computed apart: in the sandwich rule each
smaller network learns the class probabilities the largest network gives each sample of
the same batch; a pruned network fine-tuned with distillation learns its dense parent's
outputs."""

from __future__ import annotations

import dataclasses

import torch
from optuna.trial import FixedTrial
from torch.nn import functional as F

from nas.data import Splits
from nas.prune.methods import MagnitudePruning
from nas.supernet.elastic import Supernet
from nas.trial.dense_cache import DenseCache
from nas.trial.distill import Distillation
from nas.trial.pipeline import TrialPipeline
from nas.trial.train import TrainSettings
from tests.conftest import conf_defaults
from tests.test_supernet import SMALL_CNN, sandwich_run


def first_images(splits: Splits, count: int) -> Splits:
    """`splits` with only its first `count` training images."""
    return dataclasses.replace(
        splits, train_x=splits.train_x[:count], train_y=splits.train_y[:count]
    )


def standalone(supernet: Supernet, candidate) -> torch.nn.Module:
    """`candidate`'s own network holding copies of its slices of the shared weights."""
    network = supernet.skeleton(candidate)
    network.load_state_dict(supernet.weights_for(candidate), assign=True)
    return network


def test_in_place_distillation_targets_are_the_largest_networks_probabilities_per_sample(
    tiny_splits, monkeypatch
):
    events = []  # in order: the largest's probabilities, a student's logits, a KL term
    forward, kl_div = Supernet.forward, F.kl_div

    def recording_forward(self, x, candidate, ranks):
        if candidate == self.largest:  # its outputs, computed apart on the same batch
            with torch.no_grad():
                logits = standalone(self, candidate).train()(x)
            events.append(("largest", torch.softmax(logits, dim=1)))
        out = forward(self, x, candidate, ranks)
        if candidate != self.largest:
            events.append(("student", out.detach()))
        return out

    def recording_kl_div(student, target, **kwargs):
        loss = kl_div(student, target, **kwargs)
        events.append(("kl", student.detach(), target, loss.detach()))
        return loss

    monkeypatch.setattr(Supernet, "forward", recording_forward)
    monkeypatch.setattr(torch.nn.functional, "kl_div", recording_kl_div)
    steps, _, _ = sandwich_run(
        first_images(tiny_splits, 96), subnets=3, largest_every=1, distill_warmup=0
    )
    assert len(steps) == 2  # 96 images in batches of 48
    kl_terms = [event for event in events if event[0] == "kl"]
    assert len(kl_terms) == 2 * 2  # the smallest and one random network a step
    probabilities = student = None
    for event in events:
        if event[0] == "largest":
            probabilities = event[1]
        elif event[0] == "student":
            student = event[1]
        else:
            _, log_q, target, loss = event
            assert target.shape == (48, tiny_splits.n_classes)
            assert not target.requires_grad, "no gradient reaches the largest through its targets"
            torch.testing.assert_close(target, probabilities, rtol=0, atol=1e-6)
            torch.testing.assert_close(log_q, F.log_softmax(student, dim=1), rtol=0, atol=1e-6)
            # KL(largest || student) summed over the classes, averaged over the samples
            by_hand = (target * (target.log() - log_q)).sum() / len(target)
            torch.testing.assert_close(loss, by_hand, rtol=1e-5, atol=1e-7)
    largest = [event[1] for event in events if event[0] == "largest"]
    assert not torch.allclose(largest[0], largest[0].mean(dim=0)), "each sample its own"


def test_a_pruned_network_is_distilled_from_its_dense_parents_eval_outputs(
    tiny_splits, monkeypatch
):
    """The teacher's logits that each fine-tuning step's loss sees are those of the dense
    network (kept in the dense cache), in eval mode, on that step's images."""
    splits = first_images(tiny_splits, 96)
    seen = []  # (the step's images, the teacher logits its loss saw)
    against, loss = Distillation.against, Distillation.loss

    def recording_against(self, teacher):
        inner = against(self, teacher)

        def loss_fn(inputs, logits, labels):
            seen.append([inputs])
            return inner(inputs, logits, labels)

        return loss_fn

    def recording_loss(self, student, teacher, labels):
        seen[-1].append(teacher)
        return loss(self, student, teacher, labels)

    monkeypatch.setattr(Distillation, "against", recording_against)
    monkeypatch.setattr(Distillation, "loss", recording_loss)
    settings = TrainSettings(**conf_defaults("train", epochs=1, finetune_epochs=1, batch_size=32))
    cache = DenseCache(1)
    pipeline = TrialPipeline(
        SMALL_CNN, splits, MagnitudePruning(), settings, torch.device("cpu"),
        dense_cache=cache, distill=Distillation(temperature=2.0, weight=0.5),
    )  # fmt: skip
    params = {"arch.blocks": 1, "arch.block1.channels": 8, "arch.kernel_size": 3}
    params |= {"arch.hidden": 16, "sparsity.block1.conv": 0.5, "sparsity.hidden": 0.5}
    candidate = SMALL_CNN.sample(FixedTrial(params | {"sparsity.head": 0.5}))
    _, pruned = pipeline.run(candidate, seed=0)
    dense = SMALL_CNN.build(candidate, splits.in_shape, splits.n_classes)
    dense.load_state_dict(cache.get(candidate.arch, seed=0).weights)
    dense.eval()
    assert len(seen) == 3  # 96 images in batches of 32, fine-tuned once
    for inputs, teacher_logits in seen:
        with torch.no_grad():
            torch.testing.assert_close(teacher_logits, dense(inputs), rtol=0, atol=1e-6)
    assert not torch.equal(pruned.hidden.weight, dense.hidden.weight)

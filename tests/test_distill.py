"""Knowledge distillation while fine-tuning a pruned candidate."""

from __future__ import annotations

import pytest
import torch
from optuna.trial import FixedTrial
from torch.nn import functional as F

from nas.prune.methods import MagnitudePruning
from nas.trial.distill import Distillation, distillation_of
from nas.trial.pipeline import TrialPipeline
from nas.trial.train import TrainSettings
from search_spaces.cnn import CNNSpace
from tests.conftest import conf_defaults
from tests.test_objective import PARAMS, Killed, MemoryCheckpoints

STUDENT = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
TEACHER = torch.tensor([[0.0, 3.0, 0.0], [1.0, -1.0, 2.0]])
LABELS = torch.tensor([0, 2])


def test_the_loss_mixes_cross_entropy_and_the_softened_kl_by_weight():
    hard = F.cross_entropy(STUDENT, LABELS)
    t = 2.0
    p_teacher = F.softmax(TEACHER / t, dim=1)
    kl = (p_teacher * (p_teacher.log() - F.log_softmax(STUDENT / t, dim=1))).sum(1).mean()
    loss = Distillation(temperature=t, weight=0.25).loss(STUDENT, TEACHER, LABELS)
    assert loss.item() == pytest.approx((0.75 * hard + 0.25 * t * t * kl).item(), rel=1e-6)
    assert Distillation(t, weight=0.0).loss(STUDENT, TEACHER, LABELS).item() == pytest.approx(
        hard.item()
    )
    assert Distillation(t, weight=1.0).loss(TEACHER, TEACHER, LABELS).item() == pytest.approx(0.0)


def test_the_loss_against_a_teacher_uses_its_outputs_and_leaves_it_untouched():
    teacher = torch.nn.Linear(3, 3)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    inputs = torch.randn(2, 3)
    student_logits = torch.zeros(2, 3, requires_grad=True)
    distillation = Distillation(temperature=4.0, weight=1.0)
    loss = distillation.against(teacher)(inputs, student_logits, LABELS)
    loss.backward()
    expected = distillation.loss(student_logits, teacher(inputs), LABELS)
    assert loss.item() == pytest.approx(expected.item())
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())


def test_the_config_turns_distillation_on_and_refuses_bad_values():
    assert distillation_of({"distill": False, "temperature": 4.0, "weight": 0.5}) is None
    assert distillation_of({"distill": True, "temperature": 2, "weight": 0.3}) == Distillation(
        2, 0.3
    )
    with pytest.raises(ValueError, match="finetune.distill must be true or false, got 'yes'"):
        distillation_of({"distill": "yes", "temperature": 4.0, "weight": 0.5})
    with pytest.raises(ValueError, match=r"finetune.weight must be a number in \[0, 1\], got 1.5"):
        distillation_of({"distill": True, "temperature": 4.0, "weight": 1.5})
    with pytest.raises(ValueError, match="finetune.temperature must be a number > 0, got 0"):
        distillation_of({"distill": True, "temperature": 0, "weight": 0.5})
    with pytest.raises(ValueError, match="finetune.weight is not set"):
        distillation_of({"distill": True, "temperature": 4.0})


def pipe(tiny_splits, distill=None, finetune_epochs=1):
    settings = TrainSettings(
        **conf_defaults("train", epochs=1, finetune_epochs=finetune_epochs, batch_size=32)
    )
    space = CNNSpace()
    return TrialPipeline(
        space, tiny_splits, MagnitudePruning(), settings, torch.device("cpu"), distill=distill
    )


@pytest.mark.slow
def test_fine_tuning_with_distillation_trains_differently_from_the_same_seed_without(
    tiny_splits,
):
    candidate = CNNSpace().sample(FixedTrial(PARAMS))
    plain, plain_model = pipe(tiny_splits).run(candidate, seed=0)
    taught, taught_model = pipe(
        tiny_splits, Distillation(**conf_defaults("finetune", weight=1.0))
    ).run(candidate, seed=0)
    assert taught.dense_accuracy == plain.dense_accuracy  # the same parent
    assert taught.nonzero_params == plain.nonzero_params
    pairs = zip(plain_model.parameters(), taught_model.parameters(), strict=True)
    assert any(not torch.equal(p, q) for p, q in pairs)


@pytest.mark.slow
def test_a_distilled_run_resumed_mid_fine_tuning_ends_as_an_uninterrupted_run(tiny_splits):
    pipeline = pipe(tiny_splits, Distillation(temperature=3.0, weight=0.7), finetune_epochs=2)
    candidate = CNNSpace().sample(FixedTrial(PARAMS))
    uninterrupted, _ = pipeline.run(candidate, seed=1, checkpoints=MemoryCheckpoints())
    first_try = MemoryCheckpoints(die_after=2)  # after the first fine-tuning epoch
    with pytest.raises(Killed):
        pipeline.run(candidate, seed=1, checkpoints=first_try)
    resumed, _ = pipeline.run(candidate, seed=1, checkpoints=MemoryCheckpoints(first_try.saved))
    assert resumed.resumed_from_epoch == 2
    assert resumed.values() == uninterrupted.values()
    assert resumed.agreement == uninterrupted.agreement

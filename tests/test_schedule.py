"""Pruning schedules: when fine-tuning prunes, how far, and that every one ends at the ratios."""

from __future__ import annotations

import pytest
import torch
from optuna.trial import FixedTrial

from nas.errors import UsageError
from nas.prune.methods import MagnitudePruning, weights_to_remove
from nas.prune.schedule import Gradual, Iterative, OneShot
from nas.studies.joint_search import searched
from nas.trial.pipeline import TrialPipeline
from nas.trial.train import TrainSettings
from search_spaces.cnn import CNNSpace
from tests.conftest import assert_one_line_error, conf_defaults, forked_nas
from tests.test_objective import PARAMS, Killed, MemoryCheckpoints

FINAL = {"a": 0.9, "b": 0.5}


def prunes(schedule, total_steps):
    """{step: ratios} for every step at which `schedule` prunes."""
    plan = {s: schedule.ratios_at(s, total_steps, FINAL) for s in range(total_steps)}
    return {step: ratios for step, ratios in plan.items() if ratios is not None}


def test_one_shot_prunes_once_to_the_final_ratios():
    assert prunes(OneShot(), 12) == {0: FINAL}


def test_iterative_removes_the_same_share_of_the_remaining_weights_each_round():
    plan = prunes(Iterative(rounds=3), 12)
    assert list(plan) == [0, 4, 8]
    for round_number, ratios in enumerate(plan.values(), start=1):
        for name, final in FINAL.items():
            assert ratios[name] == pytest.approx(1 - (1 - final) ** (round_number / 3))
    assert plan[8] == pytest.approx(FINAL)


def test_gradual_follows_the_cubic_ramp_and_ends_at_the_final_ratios():
    plan = prunes(Gradual(ramp=0.5, every=5), 40)
    assert list(plan) == [0, 5, 10, 15, 20]
    assert plan[0] == {"a": 0.0, "b": 0.0}
    assert plan[10]["a"] == pytest.approx(0.9 * (1 - 0.5**3))
    assert plan[20] == pytest.approx(FINAL)
    ratios_a = [ratios["a"] for ratios in plan.values()]
    assert ratios_a == sorted(ratios_a)


EXACTLY_FINAL = {"a": 0.9, "b": 0.5, "c": 0.1, "d": 0.3}  # 1 - (1 - 0.1) != 0.1 in floats
STEP_COUNTS = [1, 2, 3, 4, 5, 7, 10, 31, 100]  # fine-tuning steps in all
SCHEDULES = [
    OneShot(),
    *(Iterative(rounds=rounds) for rounds in (1, 2, 3, 5, 10)),
    *(
        Gradual(ramp=ramp, every=every)
        for ramp in (0.01, 0.1, 0.5, 0.7, 0.75, 0.99, 1.0)
        for every in (1, 2, 3, 10, 1000)
    ),
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda schedule: repr(vars(schedule)))
def test_every_schedule_reaches_the_final_ratios_within_the_fine_tuning_steps(schedule):
    for total_steps in STEP_COUNTS:
        plan = [schedule.ratios_at(s, total_steps, EXACTLY_FINAL) for s in range(total_steps)]
        applied = [ratios for ratios in plan if ratios is not None]
        assert applied and applied[-1] == EXACTLY_FINAL, f"{total_steps} steps"
        after_training = range(total_steps, 2 * total_steps + 1000)
        late = [s for s in after_training if schedule.ratios_at(s, total_steps, EXACTLY_FINAL)]
        assert not late, f"{total_steps} steps: prunes after training at {late[:3]}"


def test_a_gradual_ramp_fits_when_it_first_prunes_by_its_middle():
    assert Gradual(ramp=0.75, every=10).misfit(110) is None  # the ramp ends at step 83
    assert Gradual(ramp=1.0, every=54).misfit(110) is None  # ends at 109: 54 is its middle
    assert (
        Gradual(ramp=1.0, every=55)
        .misfit(110)
        .startswith("schedule.every=55 puts the ramp's first pruning at step 55, past its middle")
    )
    assert Gradual(ramp=1.0, every=200).misfit(110) == (
        "schedule.every=200 puts the ramp's first pruning at step 109, past its middle (the "
        "ramp, schedule.ramp=1.0, reaches the final ratios at step 109): it would cut 100% "
        "of them there at once, with 1 step left to fine-tune; use a schedule.every of at "
        "most 54, more fine-tuning steps or schedule=one_shot"
    )
    assert Gradual(ramp=0.5, every=1).misfit(4) is None  # the ramp ends at step 2
    one_step_ramp = Gradual(ramp=0.5, every=1).misfit(2)  # the ramp ends at step 1
    assert one_step_ramp.endswith("; use more fine-tuning steps or schedule=one_shot")
    assert Gradual(ramp=0.5, every=1).misfit(0) == (
        "the ramp (schedule.ramp=0.5, schedule.every=1) prunes between fine-tuning steps, "
        "and there are none; use more fine-tuning steps (train.finetune_epochs) or "
        "schedule=one_shot"
    )


def test_iterative_rounds_fit_when_each_has_a_fine_tuning_step():
    assert Iterative(rounds=4).misfit(4) is None
    assert Iterative(rounds=5).misfit(4) == (
        "schedule.rounds=5 rounds need a fine-tuning step each, so some would prune at once; "
        "use schedule.rounds=4 or fewer, or more fine-tuning steps"
    )
    assert Iterative(rounds=1).misfit(0) == (
        "schedule.rounds=1 rounds prune between fine-tuning steps, and there are none; "
        "use more fine-tuning steps (train.finetune_epochs) or schedule=one_shot"
    )


def test_one_shot_fits_any_fine_tuning():
    assert OneShot().misfit(0) is None and OneShot().misfit(1) is None


# mnist5k: 3,500 training images, 55 batches of 64 a fine-tuning epoch, 110 in 2 epochs
ISSUE_34 = ("schedule=gradual", "schedule.ramp=1.0", "schedule.every=200")


@pytest.mark.parametrize(
    "overrides, fragments",
    [
        (("schedule=iterative", "schedule.rounds=5"), ("schedule.rounds=5 rounds need",)),
        (("schedule=gradual",), ("schedule.every=10 puts the ramp's first pruning at step 3",)),
    ],
)
def test_a_schedule_that_cannot_act_is_refused_before_any_storage_naming_its_steps(
    compose_config, tmp_path, overrides, fragments
):
    cfg = compose_config(
        "+space=cnn", "+debug=smoke", *overrides, "study.name=x",
        f"study.storage=sqlite:///{tmp_path}/x.db",
    )  # fmt: skip
    with pytest.raises(UsageError) as refused:
        searched(cfg, tmp_path)
    message = str(refused.value)
    # the smoke data: 240 training images, 4 batches of 64 in its one fine-tuning epoch
    steps = "4 fine-tuning steps (train.finetune_epochs=1 x 4 batches of train.batch_size=64)"
    assert message.startswith(f"the pruning schedule cannot act within the {steps}: ")
    for fragment in fragments:
        assert fragment in message
    assert not (tmp_path / "x.db").exists()


def test_the_issue_34_schedule_is_refused_by_the_command_in_one_line(tmp_path):
    result = forked_nas("search", "+space=cnn", *ISSUE_34, cwd=tmp_path)
    assert_one_line_error(
        result,
        "the pruning schedule cannot act within the 110 fine-tuning steps "
        "(train.finetune_epochs=2 x 55 batches of train.batch_size=64): schedule.every=200",
    )
    assert not (tmp_path / "outputs" / "nas.db").exists()


@pytest.mark.parametrize(
    "overrides",
    [
        ("schedule=gradual",),  # the defaults on mnist5k's 110 fine-tuning steps
        ("+debug=smoke", "schedule=iterative"),  # 3 rounds, 4 steps
        ("+debug=smoke", "schedule=gradual", "schedule.every=1"),  # the ramp ends at step 3
    ],
)
def test_a_schedule_that_fits_its_fine_tuning_is_accepted(compose_config, tmp_path, overrides):
    cfg = compose_config("+space=cnn", *overrides, "study.name=x")
    searched(cfg, tmp_path)


@pytest.mark.parametrize("bad", [{"rounds": 0}, {"rounds": 1.5}])
def test_iterative_rejects_bad_rounds(bad):
    with pytest.raises(ValueError, match="schedule.rounds"):
        Iterative(**bad)


@pytest.mark.parametrize("bad", [{"ramp": 0}, {"ramp": 1.5}, {"every": 0}])
def test_gradual_rejects_bad_settings(bad):
    with pytest.raises(ValueError, match="schedule."):
        Gradual(**bad)


def pipeline(tiny_splits, schedule) -> TrialPipeline:
    settings = TrainSettings(**conf_defaults("train", epochs=1, finetune_epochs=3, batch_size=32))
    return TrialPipeline(
        CNNSpace(), tiny_splits, MagnitudePruning(), settings, torch.device("cpu"), schedule
    )


@pytest.mark.slow
@pytest.mark.parametrize("schedule", [OneShot(), Iterative(rounds=3), Gradual(every=2)])
def test_every_schedule_ends_at_the_sampled_ratios(tiny_splits, schedule):
    candidate = CNNSpace().sample(FixedTrial(PARAMS))
    result, _ = pipeline(tiny_splits, schedule).run(candidate, seed=0)
    for layer, target in result.sparsity_target.items():
        assert result.sparsity_achieved[layer] == pytest.approx(target, abs=0.01), layer


@pytest.mark.slow
def test_a_gradual_run_resumed_mid_ramp_ends_as_an_uninterrupted_one(tiny_splits):
    pipe = pipeline(tiny_splits, Gradual(ramp=1.0, every=1))
    candidate = CNNSpace().sample(FixedTrial(PARAMS))
    uninterrupted, _ = pipe.run(candidate, seed=2)
    first_try = MemoryCheckpoints(die_after=2)  # after the first fine-tuning epoch
    with pytest.raises(Killed):
        pipe.run(candidate, seed=2, checkpoints=first_try)
    resumed, _ = pipe.run(candidate, seed=2, checkpoints=MemoryCheckpoints(first_try.saved))
    assert resumed.values() == uninterrupted.values()
    assert resumed.test_accuracy == uninterrupted.test_accuracy


class MaskSnapshots(MemoryCheckpoints):
    """Checkpoints that copy the masks, which later pruning changes in place."""

    def save(self, state):
        super().save({**state, "masks": {k: mask.clone() for k, mask in state["masks"].items()}})


def test_a_full_gradual_ramp_fine_tunes_at_the_sampled_ratios_even_in_one_step(tiny_splits):
    one_step = TrainSettings(
        **conf_defaults("train", epochs=1, finetune_epochs=1, batch_size=len(tiny_splits.train_x))
    )
    schedule = Gradual(ramp=1.0)
    pipe = TrialPipeline(
        CNNSpace(), tiny_splits, MagnitudePruning(), one_step, torch.device("cpu"), schedule
    )
    checkpoints = MaskSnapshots()
    result, _ = pipe.run(CNNSpace().sample(FixedTrial(PARAMS)), seed=0, checkpoints=checkpoints)
    fine_tuned_masks = checkpoints.latest()["masks"]  # as the last fine-tuning step left them
    for layer, target in result.sparsity_target.items():
        mask = fine_tuned_masks[layer]
        assert int((mask == 0).sum()) == weights_to_remove(mask.numel(), target), layer

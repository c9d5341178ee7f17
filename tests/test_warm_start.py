"""Warm start: a new study's first trial is the space's smallest architecture."""

from __future__ import annotations

import optuna
import pytest

from nas.search.reference import smallest_architecture
from nas.studies.joint_search import run_search
from search_spaces.cnn import CNNSpace


def test_the_smallest_architecture_takes_every_choice_at_its_smallest():
    assert smallest_architecture(CNNSpace(kernel_sizes=[5, 3])) == {
        "arch.blocks": 1,
        "arch.block1.channels": 8,
        "arch.kernel_size": 3,
        "arch.hidden": 0,
    }


@pytest.mark.slow
def test_a_new_study_with_warm_start_runs_the_smallest_architecture_first(compose_config, tmp_path):
    def search(name, *overrides):
        cfg = compose_config(
            "+space=cnn", "+debug=smoke", f"study.name={name}", "study.n_trials=1",
            f"study.storage=sqlite:///{tmp_path}/nas.db", "study.siblings=0", *overrides,
        )  # fmt: skip
        return run_search(cfg, tmp_path, tmp_path / name)

    warm = search("warm", "study.warm_start=true")
    smallest = smallest_architecture(CNNSpace(channels=[4, 8, 16, 32]))  # conf/space/cnn.yaml's
    (first,) = warm.trials
    assert {k: v for k, v in first.params.items() if k in smallest} == smallest
    assert first.state == optuna.trial.TrialState.COMPLETE
    cold = search("cold", "study.warm_start=false")
    arch = {k: v for k, v in cold.trials[0].params.items() if k.startswith("arch.")}
    assert arch != smallest  # seed 0 alone does not draw it

"""A study of a network's own derived space goes where a built-in space's goes: several
workers share it and the dashboard serves it."""

from __future__ import annotations

import shutil
import subprocess

import optuna
import pytest
from optuna.trial import TrialState

from tests.conftest import nas_command
from tests.test_dashboard import served_study
from tests.test_model_space import USER_MODEL, trained_user_net


@pytest.mark.slow
def test_two_workers_share_a_trained_model_study_and_the_dashboard_serves_it(tmp_path):
    import torch

    shutil.copy(USER_MODEL, tmp_path / "my_net.py")
    torch.save(trained_user_net().state_dict(), tmp_path / "trained.pt")
    command = nas_command(
        "search", "+space=model", "space.model._target_=my_net.UserNet", "+debug=smoke",
        "space.weights=trained.pt", "study.n_trials=4",
        "study.min_accuracy_kept=null",  # smoke training may leave every trial below the floor
    )  # fmt: skip
    workers = [
        subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for worker in workers:
        _, stderr = worker.communicate(timeout=300)
        assert worker.returncode == 0, stderr.decode()

    study = optuna.load_study(
        study_name="model-smoke", storage=f"sqlite:///{tmp_path}/outputs/smoke.db"
    )
    finished = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(finished) == 4
    assert [t.number for t in study.trials] == list(range(len(study.trials)))
    # each dense network is the trained model's slice, or a slice an earlier trial cached
    assert all(t.user_attrs["dense_sliced"] or t.user_attrs["dense_cached"] for t in finished)
    assert any(t.user_attrs["dense_sliced"] for t in finished)

    detail = served_study(tmp_path, "model-smoke", "+debug=smoke")
    assert detail["objective_names"] == ["accuracy", "nonzero_params", "flops"]
    served = [t for t in detail["trials"] if t["state"] == "Complete"]
    assert len(served) == 4
    for trial in served:
        assert "| layer | weights | target sparsity | achieved |" in trial["note"]["body"]
        assert "depthwise" in trial["note"]["body"]  # the network's own layer names
    plots = {plot["id"] for plot in detail["plotly_graph_objects"]}
    assert plots == {"front_3d", "compression", "hypervolume", "layer_sparsity"}

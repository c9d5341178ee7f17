"""The dashboard command serves a finished search: metric names, notes, weights, plots;
its custom plots are redrawn only when a study's trials change."""

from __future__ import annotations

import io
import json
import logging
import signal
import socket
import subprocess
import time
import urllib.request
from collections import Counter
from wsgiref.util import setup_testing_defaults

import optuna
import optuna_dashboard
import pytest

from nas.cli import commands
from nas.report.dashboard import save_study_plots
from nas.report.study_charts import DEFINITIONS
from tests.conftest import assert_one_line_error, forked_nas, nas_command
from tests.test_plots import TRIALS, complete_trial, empty_study, one_architecture_study


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url: str, deadline: float) -> dict:
    """GET `url` as JSON, retrying until the server answers or `deadline` passes."""
    while True:
        try:
            with urllib.request.urlopen(url, timeout=60) as response:
                return json.load(response)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def served_study(cwd, study_name: str, *overrides: str) -> dict:
    """Start `nas dashboard OVERRIDES` in `cwd`, read the detail of study `study_name`
    from its API, stop it with Ctrl-C (which must end it cleanly) and return the detail."""
    port = free_port()
    server = subprocess.Popen(
        nas_command("dashboard", *overrides, f"dashboard.port={port}"),
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        studies = get_json(f"http://127.0.0.1:{port}/api/studies", deadline)["study_summaries"]
        (study,) = [s for s in studies if s["study_name"] == study_name]
        detail = get_json(f"http://127.0.0.1:{port}/api/studies/{study['study_id']}", deadline)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            stdout, stderr = server.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()
            stdout, stderr = server.communicate()
            pytest.fail(f"the dashboard did not stop on Ctrl-C:\n{stdout}\n{stderr}")
    assert f"http://127.0.0.1:{port}/dashboard/" in stdout
    assert server.returncode == 0, stderr
    return detail


@pytest.mark.slow
def test_the_dashboard_shows_metric_names_notes_weights_and_custom_plots(tmp_path):
    searched = forked_nas("search", "+space=cnn", "+debug=smoke", "study.n_trials=3", cwd=tmp_path)
    assert searched.returncode == 0, searched.stderr
    detail = served_study(tmp_path, "cnn-smoke", "+debug=smoke")

    assert detail["objective_names"] == ["accuracy", "nonzero_params", "flops"]
    trials = [t for t in detail["trials"] if t["state"] == "Complete"]
    assert len(trials) == 3
    for trial in trials:
        assert trial["note"]["body"].startswith(f"**{_user_attr(trial, 'arch')}**")
        assert "| layer | weights | target sparsity | achieved |" in trial["note"]["body"]
        assert [a["filename"] for a in trial["artifacts"]] == ["pruned-weights.pt"]
    plots = {plot["id"] for plot in detail["plotly_graph_objects"]}
    assert plots == {"front_3d", "compression", "hypervolume", "layer_sparsity"}


def _user_attr(trial: dict, key: str):
    (value,) = [attr["value"] for attr in trial["user_attrs"] if attr["key"] == key]
    return value


@pytest.mark.slow
def test_a_taken_port_is_one_line_and_exit_2(tmp_path):
    searched = forked_nas("search", "+space=cnn", "+debug=smoke", "study.n_trials=1", cwd=tmp_path)
    assert searched.returncode == 0, searched.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = forked_nas(
            "dashboard", "+debug=smoke", f"dashboard.port={port}", cwd=tmp_path, timeout=60
        )
    assert_one_line_error(result, f"cannot serve the dashboard on 127.0.0.1:{port}", "in use")


DASHBOARD_PLOTS = ["front_3d", "hypervolume", "layer_sparsity", "compression"]


@pytest.fixture
def drawn(monkeypatch) -> Counter:
    """Counts the charts defined, by kind."""
    counts: Counter = Counter()
    for kind, define in list(DEFINITIONS.items()):

        def counted(*args, kind=kind, define=define):
            counts[kind] += 1
            return define(*args)

        monkeypatch.setitem(DEFINITIONS, kind, counted)
    return counts


def study_of(numbers) -> optuna.Study:
    study = empty_study()
    for number in numbers:
        study.add_trial(complete_trial(*TRIALS[number]))
    return study


def test_plots_are_redrawn_only_when_a_trial_completes(drawn):
    study = study_of([0, 2, 3])

    assert save_study_plots(study) == DASHBOARD_PLOTS
    assert drawn == Counter(DASHBOARD_PLOTS)  # the importances are never built
    assert save_study_plots(study) == []
    assert drawn == Counter(DASHBOARD_PLOTS)

    study.add_trial(complete_trial(*TRIALS[4]))
    assert save_study_plots(study) == DASHBOARD_PLOTS
    assert drawn == Counter(DASHBOARD_PLOTS * 2)


def test_a_plot_that_fails_is_logged_and_the_others_saved(monkeypatch, caplog):
    def broken(*args):
        raise RuntimeError("Encountered zero total variance in all trees.")

    monkeypatch.setitem(DEFINITIONS, "hypervolume", broken)
    study = study_of([0, 2])

    with caplog.at_level(logging.INFO, logger="nas.report.dashboard"):
        assert save_study_plots(study) == ["front_3d", "layer_sparsity", "compression"]

    (line,) = caplog.messages
    assert "hypervolume not drawn" in line and "zero total variance" in line


def test_a_study_of_one_architecture_saves_its_plots():
    assert save_study_plots(one_architecture_study()) == DASHBOARD_PLOTS


def served_names(storage: optuna.storages.BaseStorage) -> list[str]:
    """The study names optuna-dashboard lists (GET /api/studies) for `storage`."""
    environ = {"PATH_INFO": "/api/studies", "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    environ["wsgi.input"] = io.BytesIO()
    body = b"".join(optuna_dashboard.wsgi(storage)(environ, lambda *response: None))
    return [study["study_name"] for study in json.loads(body)["study_summaries"]]


def test_the_dashboard_lists_no_supernet_claim(tmp_path, monkeypatch, compose_config):
    url = f"sqlite:///{tmp_path}/nas.db"
    for name in ("cnn", "cnn:supernet-claim-0"):  # a claim lives while the supernet trains
        optuna.create_study(study_name=name, storage=url)
    served = []
    monkeypatch.setattr(commands, "serve", lambda storage, *args: served.append(storage))
    commands.dashboard(compose_config(f"study.storage={url}"), tmp_path, tmp_path)
    assert served_names(served[0]) == ["cnn"]

"""The dashboard command serves a finished search: metric names, notes, weights, plots."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from tests.conftest import assert_one_line_error, nas_command, run_nas

pytestmark = pytest.mark.slow


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


def test_the_dashboard_shows_metric_names_notes_weights_and_custom_plots(tmp_path):
    searched = run_nas("search", "+space=cnn", "+debug=smoke", "study.n_trials=3", cwd=tmp_path)
    assert searched.returncode == 0, searched.stderr
    port = free_port()
    server = subprocess.Popen(
        nas_command("dashboard", "+debug=smoke", f"dashboard.port={port}"),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        studies = get_json(f"http://127.0.0.1:{port}/api/studies", deadline)["study_summaries"]
        (study,) = [s for s in studies if s["study_name"] == "cnn-smoke"]
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

    assert detail["objective_names"] == ["accuracy", "nonzero_params", "flops"]
    trials = [t for t in detail["trials"] if t["state"] == "Complete"]
    assert len(trials) == 3
    for trial in trials:
        assert trial["note"]["body"].startswith(f"**{_user_attr(trial, 'arch')}**")
        assert "| layer | weights | target sparsity | achieved |" in trial["note"]["body"]
        assert [a["filename"] for a in trial["artifacts"]] == ["pruned-weights.pt"]
    plots = {plot["id"] for plot in detail["plotly_graph_objects"]}
    assert plots == {"front_3d", "hypervolume", "layer_sparsity"}


def _user_attr(trial: dict, key: str):
    (value,) = [attr["value"] for attr in trial["user_attrs"] if attr["key"] == key]
    return value


def test_a_taken_port_is_one_line_and_exit_2(tmp_path):
    assert (
        run_nas("search", "+space=cnn", "+debug=smoke", "study.n_trials=1", cwd=tmp_path).returncode
        == 0
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_nas(
            "dashboard", "+debug=smoke", f"dashboard.port={port}", cwd=tmp_path, timeout=60
        )
    assert_one_line_error(result, f"cannot serve the dashboard on 127.0.0.1:{port}", "in use")

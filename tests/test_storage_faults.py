"""The README's commands where writes fail (a read-only outputs folder, a read-only study
database, a full artifact store): one line, a non-zero exit, no traceback, and the
study's finished trials kept."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from nas.errors import unwritable
from tests.conftest import forked_nas
from tests.test_interrupts import PROGRESS_BAR

README_COMMANDS = {
    "search": ("search", "+space=cnn", "+debug=smoke"),
    "report": ("report", "+debug=smoke", "study.name=cnn-smoke"),
    "export": ("export", "+debug=smoke", "study.name=cnn-smoke", "trial=best"),
    "dashboard": ("dashboard", "+debug=smoke"),
}


def assert_one_line(result, exit_code: int, *fragments: str) -> str:
    """`result` exited with `exit_code` after one stderr line (besides progress lines)
    holding every fragment, and no traceback; returns the line."""
    assert result.returncode == exit_code, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if not PROGRESS_BAR.match(line)]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


def trial_rows(launch: Path) -> list[tuple]:
    """Every trial of the smoke database under `launch`: number, state, values."""
    with sqlite3.connect(launch / "outputs" / "smoke.db") as connection:
        return connection.execute(
            "SELECT t.number, t.state, v.objective, v.value FROM trials t "
            "LEFT JOIN trial_values v USING (trial_id) ORDER BY t.trial_id, v.objective"
        ).fetchall()


def test_a_folder_is_unwritable_under_a_file_and_writable_once_made(tmp_path):
    (tmp_path / "file").write_text("")
    assert isinstance(unwritable(tmp_path / "file" / "folder"), OSError)
    assert unwritable(tmp_path / "new" / "folder") is None
    assert list((tmp_path / "new" / "folder").iterdir()) == []  # the probe leaves nothing


@pytest.mark.parametrize("command", README_COMMANDS)
def test_a_run_folder_that_cannot_be_made_is_one_line_before_anything_runs(tmp_path, command):
    (tmp_path / "outputs").write_text("a file where the outputs folder should be")
    result = forked_nas(*README_COMMANDS[command], cwd=tmp_path)
    assert_one_line(result, 1, "cannot write the run folder", "hydra.run.dir")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only folder")
def test_a_read_only_outputs_folder_is_one_line(tmp_path):
    (tmp_path / "outputs").mkdir(mode=0o555)
    result = forked_nas(*README_COMMANDS["report"], cwd=tmp_path)
    assert_one_line(result, 1, "cannot write the run folder", "Permission denied")


@pytest.fixture
def launch(cli_study, tmp_path) -> Path:
    """A copy of the finished 3-trial smoke study's launch folder."""
    shutil.copytree(cli_study, tmp_path / "launch")
    return tmp_path / "launch"


@pytest.mark.slow
def test_a_search_on_a_read_only_database_is_one_line_and_changes_nothing(launch):
    before = trial_rows(launch)
    result = forked_nas(
        *README_COMMANDS["search"], "study.n_trials=4", cwd=launch,
        env={"NAS_TEST_WRITE_FAULT": "read-only-db"},
    )  # fmt: skip
    assert_one_line(result, 1, "the study storage failed", "readonly database")
    assert trial_rows(launch) == before


@pytest.mark.slow
def test_an_export_that_cannot_write_its_files_is_one_line(launch):
    (launch / "blocked").write_text("a file where the export folder should be")
    result = forked_nas(*README_COMMANDS["export"], "out=blocked/net", cwd=launch)
    assert_one_line(result, 1, "cannot write the exported files in", "blocked (out)")
    assert not list(launch.glob("exports"))


@pytest.mark.slow
def test_a_search_with_a_full_artifact_store_stops_at_its_first_failed_trial(launch):
    before = trial_rows(launch)
    result = forked_nas(
        *README_COMMANDS["search"], "study.n_trials=6", cwd=launch,
        env={"NAS_TEST_WRITE_FAULT": "full-store"},
    )  # fmt: skip
    trials = len({row[0] for row in before})
    assert_one_line(result, 1, f"stopped: trial {trials} could not write", "No space left on")
    after = trial_rows(launch)
    assert after[: len(before)] == before  # the finished trials, as they were
    assert len({row[0] for row in after}) == trials + 1  # none after the one the disk failed

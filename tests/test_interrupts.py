"""Ctrl-C and SIGTERM end a command in one line with exit 128 + the signal number wherever
they land, inside a storage write too, and leave a study the same command finishes."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from sqlalchemy import event
from sqlalchemy.engine import Engine

import nas.__main__ as cli_main
from nas.errors import SearchInterrupted, UsageError
from nas.search.interrupts import INTERRUPTS, Interrupted
from nas.search.storage import open_storage
from tests.conftest import forked_nas

SMOKE = ("search", "+space=cnn", "+debug=smoke")  # 2 trials; about 760 SQL statements
# What the search's progress bar leaves on stderr: its redraws and blank lines.
PROGRESS_BAR = re.compile(r"\s*$|search: ")


@contextmanager
def signal_before(statement: str, signum: int) -> Iterator[None]:
    """Send `signum` to this process just before the first SQL statement that starts with
    `statement` (as tests/signal_hook.py does in a forked command)."""
    sent = []

    def send(_connection, _cursor, sql: str, *_args) -> None:
        if not sent and sql.lstrip().upper().startswith(statement):
            sent.append(sql)
            signal.raise_signal(signum)

    event.listen(Engine, "before_cursor_execute", send)
    try:
        yield
    finally:
        event.remove(Engine, "before_cursor_execute", send)
    assert sent, f"no {statement} statement ran"


def test_a_signal_inside_a_storage_write_takes_effect_once_the_write_is_committed(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="s", storage=open_storage(url, 10, 30, print))
    with pytest.raises(Interrupted) as raised, INTERRUPTS.catching():
        with signal_before("INSERT", signal.SIGTERM):
            study.set_user_attr("written", 1)
        pytest.fail("the write ended without the signal taking effect")
    assert raised.value.signum == signal.SIGTERM
    study.set_user_attr("after", 2)  # no transaction left open: this process writes on
    fresh = optuna.load_study(study_name="s", storage=url)
    assert fresh.user_attrs == {"written": 1, "after": 2}


def test_a_held_signal_waits_for_the_end_of_the_hold_and_the_first_one_counts():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    went_on = []
    with pytest.raises(Interrupted) as raised, INTERRUPTS.catching():
        with INTERRUPTS.holding():
            signal.raise_signal(signal.SIGTERM)
            signal.raise_signal(signal.SIGINT)
            went_on.append(True)
        pytest.fail("the hold ended without the signal taking effect")
    assert went_on and raised.value.signum == signal.SIGTERM
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_a_signal_is_taken_at_once_within_taking_even_inside_a_hold():
    with INTERRUPTS.catching(), INTERRUPTS.holding():
        with pytest.raises(Interrupted) as raised, INTERRUPTS.taking():
            signal.raise_signal(signal.SIGINT)
            pytest.fail("the signal did not stop the block")
        assert raised.value.signum == signal.SIGINT
        signal.raise_signal(signal.SIGINT)  # held until taking begins
        with pytest.raises(Interrupted), INTERRUPTS.taking():
            pytest.fail("the held signal did not stop the block as it began")


def test_a_hold_in_another_thread_leaves_the_main_thread_taking_signals():
    with INTERRUPTS.catching():
        holding, release = threading.Event(), threading.Event()

        def hold() -> None:
            with INTERRUPTS.holding():
                holding.set()
                release.wait(10)

        thread = threading.Thread(target=hold)
        thread.start()
        holding.wait(10)
        try:
            with pytest.raises(Interrupted):
                signal.raise_signal(signal.SIGINT)
        finally:
            release.set()
            thread.join()


def test_an_interrupt_is_one_plain_line_not_an_error(capsys):
    message = "interrupted by SIGINT: a trial cut short is marked failed and queued again"
    assert cli_main.ended(SearchInterrupted(message, signal.SIGINT)) == 130
    assert capsys.readouterr().err == f"nas: {message}\n"
    assert cli_main.ended(UsageError("bad value")) == 2
    assert capsys.readouterr().err == "nas: error: bad value\n"


def test_a_command_interrupted_outside_the_search_ends_with_one_plain_line(monkeypatch, capsys):
    def interrupted(_args: list[str]) -> int:
        raise Interrupted(signal.SIGTERM)

    monkeypatch.setattr(cli_main, "run_command", interrupted)
    assert cli_main.main(["report"]) == 143
    assert capsys.readouterr().err == "nas: interrupted by SIGTERM\n"


def smoke_db(launch: Path) -> Path:
    return launch / "outputs" / "smoke.db"


def assert_one_interrupt_line(result, signum: signal.Signals) -> None:
    """`result` exited with 128 + `signum` after exactly one stderr line naming it."""
    if result.returncode != 128 + signum:  # the whole of stderr: the assertion cuts it short
        pytest.fail(f"exit {result.returncode}, stderr:\n{result.stderr}")
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if not PROGRESS_BAR.match(line)]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"nas: interrupted by {signum.name}")


def assert_study_whole(launch: Path) -> None:
    """The database passes SQLite's integrity check; in the study, if it was made, no trial
    is left running and every failed trial was interrupted and is queued again."""
    database = smoke_db(launch)
    if not database.exists():
        return
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    url = f"sqlite:///{database}"
    if "cnn-smoke" not in [s.study_name for s in optuna.get_all_study_summaries(url)]:
        return
    trials = optuna.load_study(study_name="cnn-smoke", storage=url).trials
    assert TrialState.RUNNING not in [t.state for t in trials]
    retried = {t.user_attrs.get("retry_of") for t in trials}
    for trial in trials:
        if trial.state == TrialState.FAIL:
            assert trial.user_attrs.get("fail_reason") == "interrupted", trial.number
            assert trial.number in retried, f"trial {trial.number} failed, not queued again"


def assert_the_same_command_finishes_it(launch: Path) -> None:
    again = forked_nas(*SMOKE, cwd=launch)
    assert again.returncode == 0, again.stderr
    study = optuna.load_study(study_name="cnn-smoke", storage=f"sqlite:///{smoke_db(launch)}")
    assert len(study.get_trials(states=(TrialState.COMPLETE,))) == 2
    assert not study.get_trials(states=(TrialState.RUNNING,))


def signalled(launch: Path, statement: int, signum: signal.Signals):
    """The smoke search in `launch`, sent `signum` just before its `statement`-th SQL
    statement (tests/signal_hook.py)."""
    env = {"NAS_TEST_SIGNAL_AT": str(statement), "NAS_TEST_SIGNAL": signum.name.removeprefix("SIG")}
    return forked_nas(*SMOKE, cwd=launch, env=env)


# Statements from the study's creation to the second trial's end, every 246th (every Nth
# with NAS_TEST_SIGNAL_EVERY=N: 61 makes the wider sweep outside the suite), and the two
# known to have broken the search before (356: inside the tell that fails an interrupted
# trial).
EVERY = int(os.environ.get("NAS_TEST_SIGNAL_EVERY", "246"))
STATEMENTS = sorted({*range(3, 740, EVERY), 356, 555})


@pytest.mark.slow
@pytest.mark.parametrize("statement", STATEMENTS)
def test_ctrl_c_at_any_storage_statement_ends_in_one_line_and_the_rerun_finishes(
    tmp_path, statement
):
    result = signalled(tmp_path, statement, signal.SIGINT)
    assert_one_interrupt_line(result, signal.SIGINT)
    assert_study_whole(tmp_path)
    assert_the_same_command_finishes_it(tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("statement", [250])
def test_sigterm_inside_a_storage_statement_ends_in_one_line_with_exit_143(tmp_path, statement):
    result = signalled(tmp_path, statement, signal.SIGTERM)
    assert_one_interrupt_line(result, signal.SIGTERM)
    assert_study_whole(tmp_path)
    assert_the_same_command_finishes_it(tmp_path)

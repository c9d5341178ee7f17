"""Progress bars in a redirected log: plain lines now and then, no carriage returns."""

from __future__ import annotations

import pytest

import nas.progress
from nas.progress import ProgressLines, progress
from nas.search.callbacks import SearchProgress


@pytest.fixture
def one_line_per_bar(monkeypatch):
    """Progress lines no more often than never: a bar writes its first and its last."""
    monkeypatch.setattr(nas.progress, "LOG_INTERVAL", float("inf"))


def test_a_bar_on_a_redirected_stderr_writes_its_first_and_last_state_as_lines(
    one_line_per_bar, capsys
):
    for _ in progress(range(50), desc="work", unit="step"):
        pass
    err = capsys.readouterr().err
    assert "\r" not in err and err.endswith("\n")
    first, last = err.splitlines()
    assert first.startswith("work:") and "0/50" in first
    assert last.startswith("work: 100%") and "50/50" in last


def test_the_search_bar_writes_no_carriage_returns_to_a_log(one_line_per_bar, capsys):
    bar = SearchProgress(total=3, finished=1)
    bar.bar.set_postfix(front=2)
    bar.close()
    err = capsys.readouterr().err
    assert "\r" not in err
    assert [line.split(":")[0] for line in err.splitlines()] == ["search", "search"]


class Stream:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass


def test_every_redraw_is_a_line_at_interval_zero_and_a_cleared_bar_adds_none():
    stream = Stream()
    lines = ProgressLines(stream, interval=0)
    for text in ("\rbar 1/3", "\rbar 2/3   ", "\r", "\rbar 3/3", "\n"):
        lines.write(text)
    assert stream.text == "bar 1/3\nbar 2/3\nbar 3/3\n"
    lines.write("\rbar 0/1")
    lines.write("\r    ")  # a bar with leave=False cleared: the log keeps what it wrote
    assert stream.text.endswith("bar 0/1\n")

"""What the documentation shows of the quick start is what a user gets.

The README and the tutorial show the front that `python -m nas search +space=cnn` prints,
copied from docs/figures.txt (written by `bash docs/regenerate.sh`). These tests fail when
the copies drift from figures.txt, and, run slow, when the command's first trials drift
from those figures.txt records: after a change that moves them, run
`bash docs/regenerate.sh` and copy its front and timing into the README and
docs/tutorial/first-search.md.
"""

from __future__ import annotations

import pytest

from tests.conftest import run_nas, skip_unless_recorded_here
from tests.quickstart_front import (
    QUICK_START,
    README,
    TUTORIAL,
    assert_shows,
    figures_header,
    figures_section,
    figures_wall_seconds,
    parse_front,
    trial_lines,
)


def test_figures_hold_the_quick_start_command_and_its_front():
    assert "uncommitted" not in figures_header()["commit_line"], (
        "docs/figures.txt was written from code that differs from its commit"
    )
    section = figures_section("quick start")
    assert section.splitlines()[0] == "$ nas " + " ".join(QUICK_START)
    front = parse_front(section)
    assert not front.elided and len(front.rows) == front.size


@pytest.mark.parametrize("page", [README, TUTORIAL], ids=lambda page: page.name)
def test_the_documented_front_is_the_one_in_figures(page):
    assert_shows(parse_front(page.read_text()), parse_front(figures_section("quick start")))


def test_the_tutorial_shows_the_whole_front():
    assert not parse_front(TUTORIAL.read_text()).elided


def test_trial_lines_quoted_in_the_tutorial_are_in_figures():
    section = figures_section("quick start")
    quoted = [line for line in TUTORIAL.read_text().splitlines() if "] trial " in line]
    assert quoted
    for line in quoted:
        assert line in section, line


@pytest.mark.parametrize("page", [README, TUTORIAL], ids=lambda page: page.name)
def test_the_documented_timing_and_commit_are_those_of_figures(page):
    text = page.read_text()
    header = figures_header()
    assert f"{figures_wall_seconds('quick start'):.1f} s wall" in text
    assert header["commit"] in text and header["date"] in text


# The quick start's first trials: the warm start and three candidates drawn at random,
# each with its siblings, then the first candidate TPE draws (trial 11). A run of 16 trials
# leaves room for the same siblings (a budget keeps one trial for each architecture it has),
# not for that candidate's.
FIRST_TRIALS, RUN_TRIALS = 12, 16


@pytest.mark.slow
def test_the_quick_start_prints_the_documented_first_trials(tmp_path):
    """The real command in an empty folder, stopped after 16 of its 30 trials (about 45 s
    on 2 CPU cores): each of the first 12 prints what docs/figures.txt records for it, from the
    full run whose front the README shows. The same code gives the same trials on the same
    machine; the message names the machine the documented run came from, since another
    CPU can round differently."""
    recorded = figures_header()["machine"]
    skip_unless_recorded_here(recorded)
    result = run_nas(*QUICK_START, f"study.n_trials={RUN_TRIALS}", cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr
    documented = trial_lines(figures_section("quick start"), FIRST_TRIALS)
    assert len(documented) == FIRST_TRIALS
    printed = trial_lines(result.stdout + result.stderr, FIRST_TRIALS)
    assert printed == documented, (
        "the quick start's first trials are not the documented ones; after a change that "
        "moves them, run `bash docs/regenerate.sh` and copy the new front into the README "
        f"and docs/tutorial/first-search.md (documented run from: {recorded})"
    )

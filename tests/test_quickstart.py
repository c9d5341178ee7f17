"""What the documentation shows of the quick start is what a user gets.

The README and the tutorial show the front that `python -m nas search +space=cnn` prints,
copied from docs/figures.txt (written by `bash docs/regenerate.sh`). These tests fail when
the copies drift from figures.txt, and, run slow, when the command's front drifts from
what the documentation shows: after a change that moves the front, run
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


@pytest.mark.slow
def test_the_quick_start_prints_the_documented_front(tmp_path):
    """The real command in an empty folder (about 100 to 130 s on 2 CPU cores). The same
    code gives the same front on the same machine; the message names the machine the
    documented front came from, since another CPU can round differently."""
    recorded = figures_header()["machine"]
    skip_unless_recorded_here(recorded)
    result = run_nas(*QUICK_START, cwd=tmp_path, timeout=1800)
    assert result.returncode == 0, result.stderr
    printed = parse_front(result.stdout)
    assert not printed.elided
    for page in (TUTORIAL, README):
        try:
            assert_shows(parse_front(page.read_text()), printed)
        except AssertionError as error:
            raise AssertionError(
                f"{page.name}: the quick start's front is not the documented one; after a "
                f"change that moves it, run `bash docs/regenerate.sh` and copy the new front "
                f"into the README and docs/tutorial/first-search.md (documented front from: "
                f"{recorded})\n{error}"
            ) from error

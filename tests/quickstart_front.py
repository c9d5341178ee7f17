"""The quick start's front as the documentation shows it and as `docs/figures.txt` holds it.

The front is the table `python -m nas search` prints after "Pareto front of study". The
README shows some of its rows (`...` stands for the others) and the count
"(N of M finished trials)"; the tutorial shows every row; `docs/regenerate.sh` writes the
whole output of the command to `docs/figures.txt`, from which both are copied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
TUTORIAL = ROOT / "docs" / "tutorial" / "first-search.md"
FIGURES = ROOT / "docs" / "figures.txt"
QUICK_START = ("search", "+space=cnn")  # the command the quick start shows

HEAD = re.compile(
    r"Pareto front of study '(?P<study>[^']+)' "
    r"\((?P<front>\d+) of (?P<finished>\d+) finished trials\):"
)
# trial, accuracy, test_accuracy, nonzero_params, flops: the columns compared
ROW = re.compile(r"^\s*(\d+)\s+(\d\.\d{4})\s+(\d\.\d{4})\s+([\d,]+)\s+([\d,]+)\s")


@dataclass(frozen=True)
class Front:
    """A printed front: its count line and the rows shown, each (trial, accuracy,
    nonzero_params, flops) as printed; `elided` when some rows stand as `...`."""

    study: str
    size: int
    finished: int
    rows: tuple[tuple[int, str, str, str], ...]
    elided: bool


def parse_front(text: str) -> Front:
    """The first front table in `text` (a command's output or a markdown page)."""
    lines = text.splitlines()
    starts = [(i, HEAD.search(line)) for i, line in enumerate(lines) if HEAD.search(line)]
    if not starts:
        raise ValueError("no 'Pareto front of study' table in the text")
    start, head = starts[0]
    rows, elided = [], False
    for line in lines[start + 2 :]:  # after the head and the column names
        if line.strip() == "...":
            elided = True
            continue
        match = ROW.match(line)
        if not match:
            break
        trial, accuracy, _test, params, flops = match.groups()
        rows.append((int(trial), accuracy, params, flops))
    return Front(head["study"], int(head["front"]), int(head["finished"]), tuple(rows), elided)


TRIAL_LINE = re.compile(r"^\[[\d:]+\] (trial (\d+)[: ].*)$", re.M)
SECONDS = re.compile(r", [\d.]+s, ")  # a trial's wall time, which no two runs share


def trial_lines(text: str, below: int) -> list[str]:
    """The lines the search printed for its trials numbered below `below`, in order,
    without their clock time and wall time."""
    return [
        SECONDS.sub(", ", match.group(1))
        for match in TRIAL_LINE.finditer(text)
        if int(match.group(2)) < below
    ]


def figures_section(title: str) -> str:
    """The output of one command in docs/figures.txt: the lines under `## <title>`."""
    text = FIGURES.read_text()
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if not match:
        raise ValueError(f"docs/figures.txt has no section '## {title}'")
    return match.group(1)


def figures_header() -> dict[str, str]:
    """docs/figures.txt's header: date, commit and machine of the run that wrote it."""
    lines = FIGURES.read_text().splitlines()
    date, commit = re.match(r"date: (\S+), commit: (\S+)", lines[1]).groups()
    machine = lines[2].removeprefix("machine: ")
    return {"date": date, "commit": commit, "commit_line": lines[1], "machine": machine}


def figures_wall_seconds(title: str) -> float:
    """The wall time docs/figures.txt records for one command."""
    return float(re.search(r"^wall ([\d.]+) s", figures_section(title), re.M).group(1))


def assert_shows(shown: Front, actual: Front) -> None:
    """`shown` (a documented front) is `actual`: the same count line, and the same rows,
    all of them unless `shown` elides some, in the same order."""
    assert (shown.study, shown.size, shown.finished) == (
        actual.study,
        actual.size,
        actual.finished,
    ), f"the front's count line differs: shown {shown}, actual {actual}"
    if not shown.elided:
        assert shown.rows == actual.rows
        return
    positions = [actual.rows.index(row) if row in actual.rows else None for row in shown.rows]
    missing = [row for row, position in zip(shown.rows, positions, strict=True) if position is None]
    assert not missing, f"rows shown but not in the front: {missing}"
    assert positions == sorted(positions), "the rows shown are not in the front's order"

"""The mutation score of the last `benchmarks/mutation.sh` run, file by file: mutants
killed (a test failed, or ran past mutmut's time limit) out of those generated, less the
ones judged equivalent in `benchmarks/mutation_equivalent.txt` (one mutant a line, its
reason after it), which are listed apart. A markdown table for RESULTS.md.

    python benchmarks/mutation_score.py
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENT = Path(__file__).with_name("mutation_equivalent.txt")
DETECTED = {"killed", "timeout"}


def equivalent_mutants(path: Path = EQUIVALENT) -> dict[str, str]:
    """Mutant name -> why it computes what the original computes, from `path`."""
    if not path.exists():
        return {}
    lines = (line.strip() for line in path.read_text().splitlines())
    pairs = (line.split(maxsplit=1) for line in lines if line and not line.startswith("#"))
    return {pair[0]: pair[1] if len(pair) > 1 else "" for pair in pairs}


def statuses(mutants: Path) -> tuple[dict[str, dict[str, str]], int]:
    """Each mutated file's mutants that were run and their status, from mutmut's `.meta`
    files, and how many were not run (a run of some mutants only: `mutmut run NAMES`)."""
    found, not_run = {}, 0
    for meta in sorted(mutants.rglob("*.py.meta")):
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        run = {name: status_by_exit_code[code] for name, code in codes.items() if code is not None}
        not_run += len(codes) - len(run)
        if run:
            found[meta.relative_to(mutants).as_posix().removesuffix(".meta")] = run
    return found, not_run


def table(found: dict[str, dict[str, str]], equivalent: dict[str, str]) -> str:
    """Per file: mutants, equivalent, killed, timed out, survived, not reached, score."""
    lines = [
        "| file | mutants | equivalent | killed | timed out | survived | no test reached | score |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    totals: Counter = Counter()
    for source, mutants in found.items():
        counts = Counter(
            "equivalent" if name in equivalent else status for name, status in mutants.items()
        )
        counts["mutants"] = len(mutants)
        totals.update(counts)
        lines.append(row(source, counts))
    lines.append(row("**all**", totals))
    return "\n".join(lines)


def row(label: str, counts: Counter) -> str:
    """One table row of `counts` (statuses and "mutants", "equivalent")."""
    judged = counts["mutants"] - counts["equivalent"]
    detected = sum(counts[status] for status in DETECTED)
    score = f"{detected / judged:.1%}" if judged else "-"
    return (
        f"| {label} | {counts['mutants']} | {counts['equivalent']} | {counts['killed']} "
        f"| {counts['timeout']} | {counts['survived']} | {counts['no tests']} | {score} |"
    )


def main() -> int:
    found, not_run = statuses(ROOT / "mutants")
    if not found:
        print("no mutation results: run benchmarks/mutation.sh first", file=sys.stderr)
        return 1
    equivalent = equivalent_mutants()
    print(table(found, equivalent))
    if not_run:
        print(f"\n{not_run} mutants generated but not run are left out")
    left = sorted(
        name
        for mutants in found.values()
        for name, status in mutants.items()
        if status not in DETECTED and name not in equivalent
    )
    if left:
        print(f"\nnot detected ({len(left)}):")
        print("\n".join(f"  {name}: {status_of(found, name)}" for name in left))
    return 0


def status_of(found: dict[str, dict[str, str]], name: str) -> str:
    """The status of mutant `name`."""
    return next(mutants[name] for mutants in found.values() if name in mutants)


if __name__ == "__main__":
    sys.exit(main())

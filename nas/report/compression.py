"""The front read as a compression curve: the best validation accuracy a study found
within each share of a reference network's nonzero parameters and of its FLOPs, with the
test accuracy of the same trial (chosen on validation, never on test)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from optuna.trial import FrozenTrial

from nas.record.attrs import TEST_ACCURACY
from nas.record.measures import metric

SHARES = (0.005, 0.01, 0.02, 0.05, 0.10)  # of the reference's size
SIZES = {"nonzero_params": "parameters", "flops": "FLOPs"}


@dataclass(frozen=True)
class AtSize:
    """The most accurate (on validation) of the trials with at most `share` of the
    reference's `size` (a key of `SIZES`); `trial` None when none is that small."""

    size: str
    share: float
    trial: FrozenTrial | None
    names: tuple[str, ...]

    @property
    def accuracy(self) -> float:
        """Its validation accuracy (NaN without a trial)."""
        return metric(self.trial, "accuracy", self.names) if self.trial else math.nan

    @property
    def test_accuracy(self) -> float:
        """Its test accuracy (NaN without a trial, or when it recorded none)."""
        return TEST_ACCURACY.of(self.trial) if self.trial else math.nan


def accuracy_at_sizes(
    trials: Sequence[FrozenTrial],
    reference: Mapping[str, int],
    names: Sequence[str],
    shares: Sequence[float] = SHARES,
) -> list[AtSize]:
    """For each size of `SIZES` and each share in `shares`, the best of the finished
    `trials` (of a study with objectives `names`) within that share of `reference[size]`."""
    rows = []
    for size in SIZES:
        curve = compression_curve(trials, reference, names, size)
        for share in shares:
            held = [trial for at, trial in zip(curve.shares, curve.trials, strict=True)
                    if at <= share]  # fmt: skip
            rows.append(AtSize(size, share, held[-1] if held else None, tuple(names)))
    return rows


@dataclass(frozen=True)
class Curve:
    """Where the best validation accuracy within a share of a size steps up: at each of
    `shares`, the most accurate trial so far (in increasing size) and its accuracies."""

    shares: list[float]
    trials: list[FrozenTrial]
    accuracies: list[float]
    test_accuracies: list[float]


def compression_curve(
    trials: Sequence[FrozenTrial], reference: Mapping[str, int], names: Sequence[str], size: str
) -> Curve:
    """The steps of the best validation accuracy of `trials` (of a study with objectives
    `names`) within a share of `reference[size]`, as that share grows."""
    names = tuple(names)
    curve = Curve([], [], [], [])
    best = -math.inf
    for trial in sorted(trials, key=lambda t: metric(t, size, names)):
        accuracy = metric(trial, "accuracy", names)
        if accuracy > best:
            best = accuracy
            curve.shares.append(metric(trial, size, names) / reference[size])
            curve.trials.append(trial)
            curve.accuracies.append(accuracy)
            curve.test_accuracies.append(TEST_ACCURACY.of(trial))
    return curve


def at_size_table(rows: Sequence[AtSize]) -> str:
    """A text table: one line per share, for each size the validation and test accuracy
    and the trial number of its best trial ("-" where none is that small)."""
    shares = sorted({row.share for row in rows})
    found = {(row.size, row.share): row for row in rows}
    header = f"{'within':>8}" + "".join(
        f" | {label + ': accuracy':>20} {'test':>6} {'trial':>6}" for label in SIZES.values()
    )
    lines = [header]
    for share in shares:
        cells = []
        for size in SIZES:
            row = found[(size, share)]
            if row.trial is None:
                cells.append(f" | {'-':>20} {'-':>6} {'-':>6}")
            else:
                cells.append(
                    f" | {row.accuracy:>20.4f} {row.test_accuracy:>6.4f} {row.trial.number:>6}"
                )
        lines.append(f"{share:>8.1%}" + "".join(cells))
    return "\n".join(lines)

"""Sums and shares of training epochs without float noise. Trials charge fractions of an
epoch (BatchNorm re-estimation on 64 of 720 training images, say) and budgets are cut
into shares, so sums such as 0.1 * 3 come out as 0.30000000000000004: a trial that fills
a budget exactly must not be turned away by the last bits. Epoch amounts are compared at
nine decimals, far below any fraction a trial charges."""

from __future__ import annotations

import math
from collections.abc import Iterable

DIGITS = 9


def epoch_sum(amounts: Iterable[float]) -> float:
    """The sum of `amounts`, exactly rounded, at nine decimals."""
    return round(math.fsum(amounts), DIGITS)


def fits(epochs: float, room: float) -> bool:
    """Whether `epochs` fit in `room` epochs, at nine decimals."""
    return round(epochs - room, DIGITS) <= 0


def times_within(room: float, cost: float) -> int:
    """How many whole amounts of `cost` fit in `room` (at nine decimals); at least 0."""
    return max(math.floor(round(room / cost, DIGITS)), 0)

"""What a search does over the last share of its budget instead of drawing new candidates
(revisits, polishes): when it is due."""

from __future__ import annotations

from dataclasses import dataclass

from nas.search.epoch_sums import fits


@dataclass(frozen=True)
class LastShare:
    """Due over the last `share` (in [0, 1)) of a study's budget (of `max_epochs` when set,
    else of `n_trials`)."""

    share: float

    def due(self, left: float, total: float) -> bool:
        """Whether it is due with `left` of a budget of `total` (epochs or trials)."""
        return self.share > 0 and fits(left, self.share * total)

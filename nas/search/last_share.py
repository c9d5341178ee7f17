"""What a search does over the last share of its budget instead of drawing new candidates
(revisits, polishes): when it is due."""

from __future__ import annotations

from typing import ClassVar


class LastShare:
    """Due over the last `share` of a study's budget (of `max_epochs` when set, else of
    `n_trials`); `setting` names the share in errors."""

    setting: ClassVar[str]

    def __init__(self, share: float) -> None:
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share < 1:
            raise ValueError(f"{self.setting} must be in [0, 1), got {share!r}")
        self.share = share

    def due(self, left: float, total: float) -> bool:
        """Whether it is due with `left` of a budget of `total` (epochs or trials)."""
        return self.share > 0 and left <= self.share * total

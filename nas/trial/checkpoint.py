"""Mid-trial checkpoints: what the trial pipeline asks of the place its training state
is kept. The pipeline calls `save` after every epoch and `latest` once before training;
it does not know where checkpoints live (`nas.search.checkpoints` keeps them in the
study's artifact store)."""

from __future__ import annotations

from typing import Protocol


class Checkpoints(Protocol):
    """Where a trial's training state goes after each epoch, and comes back from."""

    def latest(self) -> dict | None:
        """The newest saved state to resume from, or None to start from scratch."""

    def save(self, state: dict) -> None:
        """Keep `state` (a dict of tensors and numbers, with an `epoch` key)."""


class NoCheckpoints:
    """Checkpoints that are never kept: for trials too short to be worth it."""

    def latest(self) -> dict | None:
        return None

    def save(self, state: dict) -> None:
        pass


NO_CHECKPOINTS = NoCheckpoints()

"""Ctrl-C (SIGINT) and SIGTERM while a command runs: each raises `Interrupted`, but never
inside a storage call.

A signal that cut a storage call short would leave a SQLite transaction open, holding the
database's write lock, and Optuna's bookkeeping half done: the trial could then not be
marked failed, and the command ended in a traceback (`database is locked`, then Optuna's
`Should not reach`; or an UnboundLocalError in Optuna's tell). So within
`holding` (every call of the search's storage, and Optuna's own steps around a trial) a
signal waits; the first one waiting is raised once the hold ends where signals are
taken, on entering `taking` (a trial's run, within Optuna's held steps), or when
`catching` ends.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command line imports this module before optuna
    import optuna
    from optuna.trial import FrozenTrial

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A signal stopped the command; `signum` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Interrupts:
    """Where SIGINT and SIGTERM take effect. Signals are process-wide, and so is this:
    use `INTERRUPTS`."""

    def __init__(self) -> None:
        self.waiting: int | None = None  # the first signal held back, if any
        self._taking = True

    def _handle(self, signum: int, _frame) -> None:
        if self._taking:
            raise Interrupted(signum)
        if self.waiting is None:
            self.waiting = signum

    def _raise_waiting(self) -> None:
        if self.waiting is not None:
            signum, self.waiting = self.waiting, None
            raise Interrupted(signum)

    @contextmanager
    def catching(self) -> Iterator[None]:
        """Within the block, SIGINT and SIGTERM raise `Interrupted` (at once, or when no
        longer held); a signal still waiting at its end raises then. The handlers from
        before come back after it. Main thread only, as `signal.signal`."""
        previous = {signum: signal.signal(signum, self._handle) for signum in SIGNALS}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            waiting, self.waiting = self.waiting, None
        if waiting is not None:
            raise Interrupted(waiting)

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Within the block a signal waits; ending where signals are taken, the block
        raises the one waiting. In a thread but the main one (which alone receives
        signals) it changes nothing."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        taking, self._taking = self._taking, False
        try:
            yield
        finally:
            self._taking = taking
        if taking:
            self._raise_waiting()

    @contextmanager
    def taking(self) -> Iterator[None]:
        """Within the block a signal raises at once, even inside a hold; one waiting
        raises as it begins."""
        taking, self._taking = self._taking, True
        try:
            self._raise_waiting()
            yield
        finally:
            self._taking = taking

    def stop_study(self, study: optuna.Study, _trial: FrozenTrial) -> None:
        """Optuna callback: stop the study before its next trial while a signal waits."""
        if self.waiting is not None:
            study.stop()


INTERRUPTS = Interrupts()

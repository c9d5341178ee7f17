"""A test hook that tests/nas_forks.py imports: in a forked command whose environment sets
NAS_TEST_SIGNAL_AT=N, the process sends itself $NAS_TEST_SIGNAL (INT or TERM; INT if
unset) just before the N-th SQL statement its main thread executes, that is inside the
storage call that runs it. Without NAS_TEST_SIGNAL_AT it does nothing.
tests/test_interrupts.py interrupts searches at many such points."""

import os
import signal
import threading

from sqlalchemy import event
from sqlalchemy.engine import Engine

executed = 0  # SQL statements of the main thread so far (none in the fork server itself)


@event.listens_for(Engine, "before_cursor_execute")
def _signal_at_the_nth_statement(*_args) -> None:
    global executed
    at = os.environ.get("NAS_TEST_SIGNAL_AT")
    if at and threading.current_thread() is threading.main_thread():
        executed += 1
        if executed == int(at):
            os.kill(os.getpid(), signal.Signals[f"SIG{os.environ.get('NAS_TEST_SIGNAL', 'INT')}"])

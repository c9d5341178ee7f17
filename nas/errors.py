"""Errors that end a command with one line on stderr and a given exit code."""

from __future__ import annotations

import errno
import tempfile
from pathlib import Path


class NasError(Exception):
    """A command cannot go on; `str(error)` is the line to print."""

    exit_code = 1
    is_error = True  # its line reads `nas: error: ...`


class UsageError(NasError):
    """Bad input from the user: a config value, an override or a storage."""

    exit_code = 2


class SearchStopped(NasError):
    """The search stopped itself, e.g. after too many failed trials in a row."""


class SearchInterrupted(NasError):
    """A signal (Ctrl-C, SIGTERM) stopped the search or another command; exit code 128 +
    the signal number. A stop asked for, not an error: its line has no `error:`."""

    is_error = False

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum


def root_cause(error: BaseException) -> BaseException:
    """The innermost exception `error` was raised from."""
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def failure_reason(error: BaseException) -> str:
    """`ErrorType: first line of the message`, at most 300 characters."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"[:300]


def disk_refuses(error: BaseException) -> bool:
    """Whether `error` is a disk that takes no more writes (full, over its quota or
    read-only), on which every later write fails the same way."""
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def unwritable(folder: Path) -> OSError | None:
    """Why no file can be written in `folder`, made first if missing (a read-only or full
    disk, a file in the way); None when one can."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder) as probe:
            probe.write(b"\n")
            probe.flush()
    except OSError as error:
        return error
    return None

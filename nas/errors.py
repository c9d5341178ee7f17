"""Errors that end a command with one line on stderr and a given exit code."""


class NasError(Exception):
    """A command cannot go on; `str(error)` is the line to print."""

    exit_code = 1


class UsageError(NasError):
    """Bad input from the user: a config value, an override or a storage."""

    exit_code = 2


class SearchStopped(NasError):
    """The search stopped itself, e.g. after too many failed trials in a row."""


class SearchInterrupted(NasError):
    """A signal (Ctrl-C, SIGTERM) stopped the search; exit code 128 + the signal number."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum

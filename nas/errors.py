"""Errors that mean the user's input is wrong, reported as one line."""


class UsageError(Exception):
    """Bad input (config value, override, path): the CLI prints it as one line, exit code 2."""

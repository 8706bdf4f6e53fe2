"""Errors that mean "the user's input is wrong": printed as one ``error: …`` line, exit status 2.

One home for the user-error types, so the CLI catches them without importing the parts that raise
them (each of which would pull in Optuna, Ray or torch).
"""


class TuneInputError(ValueError):
    """A search cannot start as asked; the message names the file, key or flag and the fix."""


class SearchSpaceError(TuneInputError):
    """A sweep-file problem the user can fix; the message names the file, the key and the fix."""


class UsageError(TuneInputError):
    """A problem with the command line itself."""

"""Errors that mean "the user's input is wrong": printed as one `error: …` line, exit status 2."""


class TuneInputError(ValueError):
    """A search cannot start as asked; the message names the file, key or flag and the fix."""

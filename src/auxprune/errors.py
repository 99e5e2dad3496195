"""Errors a user can act on, kept apart from internal failures.

The CLI prints a `UserError` as one line and exits with code 2; anything else is an internal
error (exit code 1).
"""


class UserError(Exception):
    """A mistake in the user's input (file, flag, config field); the message says what and where."""


class CannotResume(UserError):
    """A run folder whose checkpoints this auxprune cannot continue: resuming is no remedy."""


def where(path: object, line: int | None = None, field: str | None = None) -> str:
    """Format a location prefix such as `train.tsv:12: column 'label'`."""
    text = str(path)
    if line is not None:
        text += f":{line}"
    if field is not None:
        text += f": field '{field}'"
    return text

"""The one base class of the problems a user can act on.

The CLI prints any `BrushworkError` as one line and exits 1; every other exception is a bug and keeps its
traceback. Each module's own error (images, video, weights, ...) subclasses it.
"""

from __future__ import annotations


class BrushworkError(Exception):
    """A user-facing problem: the message names the file or option, what was wrong and what to do."""


class OptionError(BrushworkError, ValueError):
    """A setting out of its range (a CLI flag or a `Config` field): the message gives the range."""


def raise_interrupt(signum: int, frame: object) -> None:
    """A SIGTERM handler: a scheduler's or `kill`'s stop is handled as Ctrl-C, which saves the work so far."""
    raise KeyboardInterrupt

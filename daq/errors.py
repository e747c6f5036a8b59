"""Errors a user can act on, kept apart from programming errors.

A `ConfigError` names the file, the field and the fix so the command line can print it
without a traceback; transport errors say which instrument did not answer.
"""

from __future__ import annotations


class DaqError(Exception):
    """Base of every error this program raises on purpose."""


class ConfigError(DaqError):
    """A user mistake in a bench, procedure or model file, found before anything is energised."""

    def __init__(self, source: str, field: str, problem: str, fix: str = "") -> None:
        self.source = source
        self.field = field
        self.problem = problem
        self.fix = fix
        text = f"{source}: {field}: {problem}"
        if fix:
            text += f" (fix: {fix})"
        super().__init__(text)


class TransportError(DaqError):
    """The wire failed: refused, closed, or an unreadable reply."""


class TransportTimeout(TransportError):
    """No complete reply within the timeout; the late reply has been discarded."""


class InstrumentError(DaqError):
    """The instrument answered but reported an error (its error queue was not empty)."""

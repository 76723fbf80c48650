"""Typed errors: how a step reports that it did not succeed, and why the
host refused an access.

A sync step raises :class:`Deferred` to be retried later without an error
state, and :class:`Failed` (or lets any other exception escape) to fail the
object: its ``backend_status`` gets the message. Policies, pull steps and
event steps report any exception as their error text.
"""

from __future__ import annotations


class StepError(Exception):
    """Why a step did not succeed; the message is what the host records."""

    @property
    def message(self) -> str:
        """The message the host records."""
        return str(self.args[0]) if self.args else ""


class Deferred(StepError):
    """Retry later at the normal interval; not an error.

    The object keeps ``backend_code = 0`` and gets the message as its
    ``backend_status``.
    """


class Failed(StepError):
    """The step failed: the object gets ``backend_code = 2`` and the message
    as ``backend_status``, and is retried with backoff."""


class AccessError(Failed):
    """The host refused or could not complete a model access."""


class Denied(AccessError):
    """The step has no capability for the access; the text says which."""

    def __str__(self) -> str:
        return f"access denied: {self.message}"


class NotFound(AccessError):
    """The object does not exist (any more)."""

    def __str__(self) -> str:
        return f"not found: {self.message}"


class Invalid(AccessError):
    """The request itself is malformed (unknown field, wrong type)."""

    def __str__(self) -> str:
        return f"invalid access: {self.message}"


class FieldError(Failed):
    """An object's field is missing or of another type than the model says."""


class WrongWorld(Failed):
    """The SDK function needs an interface this component's world lacks
    (for example ``Object.set_feedback`` in a model policy)."""


def from_access(err: object) -> AccessError:
    """The exception for a WIT ``access-error`` variant value."""
    name = type(err).__name__
    value = str(getattr(err, "value", err))
    if name.endswith("_Denied"):
        return Denied(value)
    if name.endswith("_NotFound"):
        return NotFound(value)
    return Invalid(value)

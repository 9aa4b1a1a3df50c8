"""The error tree shared by every layer.

Flows and the engine decide what to do with a failure by its class alone: a
:class:`TransientError` is retried, a :class:`PermanentError` is parked at once, and a
:class:`ValidationError` is a permanent error that is the caller's fault (HTTP 400) and always
names the offending field.
"""

from __future__ import annotations


class D365SapError(Exception):
    """Base class of every error raised on purpose by d365sap."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(D365SapError):
    """The configuration is unusable; lists every wrong field."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        text = "; ".join(f"{field}: {why}" for field, why in problems)
        super().__init__(f"invalid configuration: {text}")


class TransientError(D365SapError):
    """A failure that may go away by itself (timeouts, 5xx, 429, locks): retry later."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        backend_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.backend_message = backend_message


class PermanentError(D365SapError):
    """A failure that repeats on every retry (business rejection, bad mapping): park it."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        backend_message: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.backend_message = backend_message
        self.code = code


class ValidationError(PermanentError):
    """Input that can never be processed as sent. ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", status=400)
        self.field = field
        self.reason = message


class ConflictError(PermanentError):
    """The target already holds the record (e.g. a create that met an existing key)."""


class PreconditionFailedError(PermanentError):
    """An ``If-Match`` precondition failed: the record changed behind our back."""


class NotFoundError(PermanentError):
    """The addressed record does not exist in the target."""


class DeltaTokenExpiredError(PermanentError):
    """A change-tracking delta token is too old (or from before a reset): a full sync is needed.

    Raised by the Dataverse connector; the checkpointed loader answers it with a bounded
    re-baseline instead of failing or silently reloading everything.
    """

"""The uniform answer of every flow (SEED-SPEC §8.5, fixing G7 and D5).

Whatever path a message took, the caller gets the same JSON shape: the outcome, the target
system, the business keys, what the back end said, the IDoc number, and ids to find the message
again. The HTTP status follows the outcome: 201 created, 200 updated or IDoc sent, 202 (or 422)
discarded, 400 invalid input, 404/409/412/422 business rejections, 502/504 back-end failures.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from d365sap.errors import (
    ConflictError,
    D365SapError,
    NotFoundError,
    PermanentError,
    PreconditionFailedError,
    TransientError,
    ValidationError,
)


class Outcome(StrEnum):
    """What happened to a message."""

    CREATED = "created"
    UPDATED = "updated"
    IDOC_SENT = "idoc_sent"
    DISCARDED = "discarded"
    ERROR = "error"


class ErrorInfo(BaseModel):
    """Why a message failed: the error class, the field at fault (if any) and whether to retry."""

    type: str
    message: str
    field: str | None = None
    retryable: bool = False
    retry_after_seconds: float | None = None


class FlowResult(BaseModel):
    """The uniform result returned to the caller and kept in the store."""

    outcome: Outcome
    http_status: int = Field(exclude=True)
    flow: str
    route: str | None = None
    target: str | None = None
    keys: dict[str, str] = Field(default_factory=dict)
    backend_status: int | None = None
    backend_message: str | None = None
    idoc_number: str | None = None
    reason: str | None = None
    error: ErrorInfo | None = None
    message_id: str | None = None
    correlation_id: str | None = None
    duplicate: bool = False

    def body(self) -> dict[str, Any]:
        """The JSON body sent to the caller."""
        return self.model_dump(mode="json", exclude_none=True)

    def store_status(self) -> str:
        """The message status this result leaves in the store."""
        if self.outcome == Outcome.ERROR:
            return "failed"
        if self.outcome == Outcome.DISCARDED:
            return "discarded"
        return "done"

    def error_text(self) -> str | None:
        """The error message for the operator, if any."""
        return self.error.message if self.error else None

    def retry_hint(self) -> tuple[bool, float | None]:
        """Whether a retry may succeed, and how long the back end asked us to wait."""
        if self.error is None:
            return False, None
        return self.error.retryable, self.error.retry_after_seconds


def http_status_for(error: D365SapError) -> int:
    """The status the caller gets for ``error`` (D5)."""
    if isinstance(error, ValidationError):
        return 400
    if isinstance(error, TransientError):
        return 504 if "timed out" in error.message else 502
    if isinstance(error, PermanentError):
        if error.status in (401, 403):
            return 502  # our credentials or roles at the back end: not the caller's fault
        if isinstance(error, NotFoundError):
            return 404
        if isinstance(error, ConflictError):
            return 409
        if isinstance(error, PreconditionFailedError):
            return 412
        return 422
    return 500


def error_info(error: D365SapError) -> ErrorInfo:
    """Describe ``error`` for the result body."""
    return ErrorInfo(
        type=type(error).__name__,
        message=error.reason if isinstance(error, ValidationError) else error.message,
        field=error.field if isinstance(error, ValidationError) else None,
        retryable=isinstance(error, TransientError),
        retry_after_seconds=error.retry_after if isinstance(error, TransientError) else None,
    )

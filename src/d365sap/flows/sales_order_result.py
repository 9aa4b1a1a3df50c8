"""The answer of the sales order flows, in the shape of every d365sap result (G7, D5).

The order flow ends an order's message when S/4 has acknowledged it (``sent``: S/4 processes it
later), when an earlier message already sent it (``already_sent``), when it is not for S/4
(``discarded``) or with an ``error``. The confirmation flow ends with ``confirmed`` (S/4 created
the order: its number), ``rejected`` (S/4 did not: its error text; the message is failed),
``superseded`` (about an earlier sending of an order that went out again since) or ``error``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from d365sap.errors import D365SapError
from d365sap.flows.result import ErrorInfo, error_info, http_status_for


class OrderOutcome(StrEnum):
    """What happened to a sales order message."""

    SENT = "sent"
    ALREADY_SENT = "already_sent"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"
    DISCARDED = "discarded"
    ERROR = "error"


class BulkInfo(BaseModel):
    """The bulk message an order went out in."""

    message_header_id: str
    position: int
    orders: int
    request_bytes: int | None = None
    resent: bool = False


class SalesOrderResult(BaseModel):
    """The result kept in the store and returned to a waiting caller."""

    outcome: OrderOutcome
    http_status: int = Field(exclude=True)
    flow: str
    route: str | None = None
    target: str | None = "s4hc"
    keys: dict[str, str] = Field(default_factory=dict)
    sales_order: str | None = None
    bulk: BulkInfo | None = None
    write_back: str | None = Field(
        default=None, description="what became of the write-back to Dynamics"
    )
    backend_status: int | None = None
    backend_message: str | None = None
    reason: str | None = None
    error: ErrorInfo | None = None
    message_id: str | None = None
    correlation_id: str | None = None
    duplicate: bool = False

    def body(self) -> dict[str, Any]:
        """The JSON body."""
        return self.model_dump(mode="json", exclude_none=True)

    def store_status(self) -> str:
        """``failed`` for errors and rejections, ``discarded``, else ``done``."""
        if self.outcome in (OrderOutcome.ERROR, OrderOutcome.REJECTED):
            return "failed"
        if self.outcome == OrderOutcome.DISCARDED:
            return "discarded"
        return "done"

    def error_text(self) -> str | None:
        """Why it failed, for the operator."""
        if self.error is not None:
            return self.error.message
        if self.outcome == OrderOutcome.REJECTED:
            return self.backend_message or self.reason
        return None

    def retry_hint(self) -> tuple[bool, float | None]:
        """Whether a retry may succeed, and how long to wait at least."""
        if self.error is None:
            return False, None
        return self.error.retryable, self.error.retry_after_seconds


def failure(
    error: D365SapError,
    *,
    flow: str,
    route: str | None,
    keys: dict[str, str],
    bulk: BulkInfo | None = None,
) -> SalesOrderResult:
    """The result of a message that ended in ``error``."""
    return SalesOrderResult(
        outcome=OrderOutcome.ERROR,
        http_status=http_status_for(error),
        flow=flow,
        route=route,
        keys=keys,
        bulk=bulk,
        backend_status=getattr(error, "status", None),
        backend_message=getattr(error, "backend_message", None),
        error=error_info(error),
    )

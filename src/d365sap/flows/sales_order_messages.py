"""The messages of the sales order flows: what the triggers and the confirmation channels store.

Flow ``sales_order`` (one message per order sent to S/4) takes either

- a **pushed order** (legacy ``POST /http/SalesOrder_CRM_S4HC``): the order with its lines as
  JSON or XML (:mod:`d365sap.mapping.sales_order_source`), stored as received; or
- a **submitted order** (:class:`OrderSubmitted`, JSON with a ``trigger`` member): the Dataverse
  webhook or the delta poll saw an order go from Active to Submitted; the flow reads the order
  from Dataverse when it runs, so a late or repeated message works on the order as it is.

Flow ``sales_order_confirmation`` (one message per word from S/4 about an order) takes S/4's
pushed ``SalesOrderBulkConfirmation`` (XML, stored as received) or what the poller found in
API_SALES_ORDER_SRV (:class:`OrderFound`, JSON ``kind`` ``found`` or ``overdue``).

Source ids make every trigger idempotent: the same transition, the same confirmation or the same
poll finding is one message however often it is reported.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from d365sap.errors import ValidationError

FLOW_NAME = "sales_order"
CONFIRMATION_FLOW = "sales_order_confirmation"
ROUTE = "s4hc"
DISCARD_ROUTE = "discard"
TRIGGER_CONTENT_TYPE = "application/json"
Trigger = Literal["webhook", "delta", "manual"]


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OrderSubmitted(_Message):
    """A Dataverse order went from Active to Submitted."""

    trigger: Trigger
    order_id: UUID
    version: int | None = Field(default=None, ge=0, description="row version when known")
    request_id: str | None = Field(default=None, max_length=100)


class OrderFound(_Message):
    """What the confirmation poller learnt about an order it sent."""

    kind: Literal["found", "overdue"]
    batch_id: str = Field(min_length=1, max_length=40)
    order_id: str = Field(min_length=1, max_length=100)
    sales_order: str | None = Field(default=None, max_length=10)
    purchase_order: str | None = Field(default=None, max_length=35)
    sent_at: datetime | None = None


def encode(message: _Message) -> bytes:
    """The JSON payload of ``message``."""
    return message.model_dump_json(exclude_none=True).encode("utf-8")


M = TypeVar("M", bound=_Message)


def _decode(model: type[M], payload: bytes) -> M:
    try:
        return model.model_validate_json(payload)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise ValidationError(where, first["msg"]) from None


def decode_submitted(payload: bytes) -> OrderSubmitted:
    """An :class:`OrderSubmitted` payload; :class:`ValidationError` names the member."""
    return _decode(OrderSubmitted, payload)


def decode_found(payload: bytes) -> OrderFound:
    """An :class:`OrderFound` payload."""
    return _decode(OrderFound, payload)


def is_submitted(payload: bytes) -> bool:
    """Whether ``payload`` is a trigger's :class:`OrderSubmitted` (not a pushed order)."""
    head = payload.lstrip()[:1]
    return head == b"{" and b'"trigger"' in payload[:200]


def submitted_source_id(order_id: UUID | str, marker: str | int | None) -> str:
    """Source id of a submission: one message per order and transition (``marker``)."""
    return f"salesorder:{str(order_id).lower()}:submitted:{marker if marker is not None else '-'}"


def confirmation_source_id(confirmation_id: str) -> str:
    """Source id of a pushed confirmation (its own ``MessageHeader/ID``)."""
    return f"confirmation:{confirmation_id}"


def found_source_id(found: OrderFound) -> str:
    """Source id of a poll finding: once per bulk message, order and finding."""
    return f"{found.kind}:{found.batch_id}:{found.order_id}"

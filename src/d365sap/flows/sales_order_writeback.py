"""Writing an order's SAP outcome back to the Dynamics ``salesorder`` row (closing G6).

Three moments, each one PATCH of the order (``If-Match: *``: never creates a row):

- **sent**: S/4 acknowledged the bulk message (status ``sent``, the d365sap message id, the
  message column cleared) — only with ``write_back.on_sent``;
- **created**: S/4's confirmation or API_SALES_ORDER_SRV has the order: its number, status
  ``created`` and S/4's note;
- **failed**: S/4 rejected the order (its error text), or d365sap could not send it (the reason).

:meth:`OrderWriteBack.record` is what the flows call: a write that Dataverse refuses for good
(the order is not in Dataverse, as with orders pushed from a CRM without it, or the columns
are misconfigured) is recorded in the trace and the result, never turned into a failure of an
order S/4 already has; a transient failure is raised, so the message is tried again and the
write-back completed.

Columns and status values are configuration (``[sales_orders.write_back]``); an empty column name
leaves that value out. Writing only these columns, never ``statecode``, keeps the write-back from
looking like a new submission to the triggers.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from d365sap.config_sales_orders import OrderWriteBackSettings
from d365sap.connectors.dataverse import DataverseClient
from d365sap.engine.trace import Trace
from d365sap.errors import NotFoundError, PermanentError

ENTITY_SET = "salesorders"


class OrderWriteBack:
    """Writes outcomes to ``salesorders``; does nothing when switched off or without a client."""

    def __init__(
        self,
        client: DataverseClient | None,
        settings: OrderWriteBackSettings,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.settings = settings
        self.clock = clock

    @property
    def active(self) -> bool:
        """Whether outcomes are written at all."""
        return self.client is not None and self.settings.enabled

    def values(
        self,
        status: str,
        *,
        message_id: str,
        sales_order: str | None = None,
        text: str | None = None,
    ) -> dict[str, Any]:
        """The columns to set for ``status`` (``sent``, ``created`` or ``failed``)."""
        settings = self.settings
        codes = settings.status_values
        code = {"sent": codes.sent, "created": codes.created, "failed": codes.failed}[status]
        values: dict[str, Any] = {}
        if settings.status_column:
            values[settings.status_column] = code
        if settings.message_column:
            limit = settings.message_max_length
            values[settings.message_column] = text[:limit] if text else None
        if settings.synced_on_column:
            values[settings.synced_on_column] = self.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
        if settings.message_id_column:
            values[settings.message_id_column] = message_id
        if sales_order is not None and settings.sales_order_column:
            values[settings.sales_order_column] = sales_order
        return values

    async def write(
        self,
        order_id: UUID | str,
        status: str,
        *,
        message_id: str,
        sales_order: str | None = None,
        text: str | None = None,
    ) -> bool:
        """PATCH the order; ``False`` when nothing is written (switched off)."""
        if self.client is None or not self.settings.enabled:
            return False
        if status == "sent" and not self.settings.on_sent:
            return False
        values = self.values(status, message_id=message_id, sales_order=sales_order, text=text)
        if not values:
            return False
        await self.client.update(ENTITY_SET, str(order_id), values)
        return True

    async def record(
        self,
        trace: Trace,
        order_id: UUID | str,
        status: str,
        *,
        message_id: str,
        sales_order: str | None = None,
        text: str | None = None,
    ) -> str:
        """Write in a trace step: ``written``, ``off`` or why not; transient failures raise."""
        with trace.step("dataverse.write_back", detail=status) as step:
            try:
                written = await self.write(
                    order_id, status, message_id=message_id, sales_order=sales_order, text=text
                )
            except NotFoundError:
                step.status = "skipped"
                step.detail = f"{status}: order {order_id} is not in Dataverse"
                return "order not in Dataverse"
            except PermanentError as refused:
                step.status = "error"
                step.detail = f"{status}: {refused.message}"
                return f"failed: {refused.message}"
            if not written:
                step.status = "skipped"
                return "off"
            return "written"

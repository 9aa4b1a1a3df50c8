"""S/4's word on an order, written back to Dynamics: the closed loop the package lacks (G6).

One message per word about one order: a ``SalesOrderBulkConfirmation`` S/4 pushed to
``POST /sap/SalesOrderConfirmation``, or what the poller found in API_SALES_ORDER_SRV
(``found``), or that it found nothing by the deadline (``overdue``). A run:

1. finds the order's item in the outbox: by the bulk message the confirmation refers to
   (``ReferenceID``) and the order id (``YY1_CRMOrderID``), or, without a ``ReferenceID``, the
   order's latest sending; a word about an order (or bulk) d365sap never sent is discarded;
2. waits (a transient failure, tried again shortly) while the order's own message has not
   settled: S/4 may answer before the order flow has written ``sent``, which must come first;
3. records the verdict on the item: ``confirmed`` with S/4's order number, ``rejected`` with
   S/4's error log, or ``overdue`` (after one more look in API_SALES_ORDER_SRV);
4. writes it to the Dynamics order: the number and status ``created``, or status ``failed``
   with S/4's text; unless the order went out again since (then the word is ``superseded``
   and Dynamics keeps what the newer sending says).

A rejected or overdue order ends as a failed message carrying S/4's text, for an operator to see;
retrying it re-checks S/4 (overdue) or writes the verdict again. Repeated words are harmless:
the item and the Dynamics columns end the same.
"""

from __future__ import annotations

import structlog

from d365sap.config_sales_orders import SalesOrderSettings
from d365sap.connectors.s4_sales_orders import SalesOrderReader
from d365sap.engine.outbox import CONFIRMED, OVERDUE, REJECTED, ItemView, Outbox
from d365sap.engine.store import MessageStore
from d365sap.engine.trace import Trace
from d365sap.engine.types import Description
from d365sap.engine.views import FINAL_STATUSES
from d365sap.errors import D365SapError, PermanentError, TransientError
from d365sap.flows.result import ErrorInfo
from d365sap.flows.sales_order_messages import (
    CONFIRMATION_FLOW,
    ROUTE,
    OrderFound,
    decode_found,
)
from d365sap.flows.sales_order_result import (
    BulkInfo,
    OrderOutcome,
    SalesOrderResult,
    failure,
)
from d365sap.flows.sales_order_writeback import OrderWriteBack
from d365sap.mapping.sales_order_confirmation import OrderConfirmation, parse_confirmation

log = structlog.get_logger("d365sap.sales_orders")

Word = OrderConfirmation | OrderFound
ORDER_MESSAGE_WAIT_SECONDS = 1.0


def read_word(payload: bytes) -> Word:
    """A pushed confirmation (XML) or a poll finding (JSON)."""
    if payload.lstrip()[:1] == b"{":
        return decode_found(payload)
    return parse_confirmation(payload)


def _bulk_of(word: Word) -> str | None:
    return word.reference_id if isinstance(word, OrderConfirmation) else word.batch_id


class SalesOrderConfirmationFlow:
    """Applies S/4's word about one order (see the module docstring)."""

    name: str = CONFIRMATION_FLOW
    content_types: tuple[str, ...] = (
        "text/xml",
        "application/soap+xml",
        "application/xml",
        "application/json",
    )

    def __init__(
        self,
        *,
        settings: SalesOrderSettings,
        store: MessageStore,
        write_back: OrderWriteBack,
        reader: SalesOrderReader | None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.outbox = Outbox(store)
        self.write_back = write_back
        self.reader = reader

    def describe(self, payload: bytes) -> Description:
        """The order id is the business key: words about one order apply in arrival order."""
        queue = self.settings.queue
        try:
            word = read_word(payload)
        except D365SapError:
            return Description(queue=queue)
        return Description(route=ROUTE, business_key=word.order_id, queue=queue)

    async def run(self, payload: bytes, trace: Trace, *, message_id: str) -> SalesOrderResult:
        """Record and write back one word; errors are returned, not raised."""
        keys: dict[str, str] = {}
        bulk: BulkInfo | None = None
        try:
            with trace.step("parse") as step:
                word = read_word(payload)
                step.detail = _describe(word)
            keys["SalesOrderID"] = word.order_id
            item = await self._item(word, trace)
            if item is None:
                return SalesOrderResult(
                    outcome=OrderOutcome.DISCARDED,
                    http_status=202,
                    flow=CONFIRMATION_FLOW,
                    route=ROUTE,
                    keys=keys,
                    reason=f"no order {word.order_id} was sent to S/4 by d365sap"
                    + (f" in bulk {_bulk_of(word)}" if _bulk_of(word) else ""),
                )
            bulk = BulkInfo(
                message_header_id=item.batch_id, position=item.position, orders=item.batch_items
            )
            keys["OrderMessage"] = item.message_id
            await self._after_order_message(item, trace)
            settled = await self._settle(word, item, trace)
            latest = await self.store.call(lambda: self.outbox.latest_for(word.order_id))
            if latest is not None and latest.id != settled.id:
                return SalesOrderResult(
                    outcome=OrderOutcome.SUPERSEDED,
                    http_status=200,
                    flow=CONFIRMATION_FLOW,
                    route=ROUTE,
                    keys=keys,
                    bulk=bulk,
                    sales_order=settled.target_ref,
                    reason=f"the order went out again since (bulk {latest.batch_id}, "
                    f"{latest.state}); Dynamics keeps what that sending says",
                )
            return await self._conclude(settled, keys, bulk, trace, message_id=message_id)
        except D365SapError as error:
            return failure(error, flow=CONFIRMATION_FLOW, route=ROUTE, keys=keys, bulk=bulk)

    async def _item(self, word: Word, trace: Trace) -> ItemView | None:
        bulk_id = _bulk_of(word)
        with trace.step("outbox.find_order") as step:
            found: ItemView | None = None
            if bulk_id:
                items = await self.store.call(lambda: self.outbox.in_batch(bulk_id, word.order_id))
                found = items[0] if items else None
            if found is None and bulk_id is None:
                # No ReferenceID: the order's latest sending is the one S/4 speaks of.
                found = await self.store.call(lambda: self.outbox.latest_for(word.order_id))
            step.detail = (
                f"bulk {found.batch_id} order {found.position}: {found.state}"
                if found
                else "not found"
            )
        return found

    async def _after_order_message(self, item: ItemView, trace: Trace) -> None:
        """Wait while the order's own message is unsettled (S/4 answered faster than it).

        The order flow writes ``sent`` to Dynamics when S/4 acknowledges; applying S/4's word
        only once that message has settled keeps ``sent`` from overwriting ``created``.
        """
        with trace.step("order_message.check", detail=item.message_id) as step:
            message = await self.store.call(lambda: self.store.status_of(item.message_id))
            step.detail = f"{item.message_id}: {message.status if message else 'unknown'}"
        if message is not None and message.status not in FINAL_STATUSES:
            raise TransientError(
                f"the order's message {item.message_id} is still {message.status}; S/4's word "
                "about the order is applied once it has settled",
                retry_after=ORDER_MESSAGE_WAIT_SECONDS,
            )

    async def _settle(self, word: Word, item: ItemView, trace: Trace) -> ItemView:
        state, number, detail = await self._verdict(word, trace)
        with trace.step("outbox.settle", detail=state):
            settled = await self.store.call(
                lambda: self.outbox.settle_item(item.id, state, target_ref=number, detail=detail)
            )
        assert settled is not None
        return settled

    async def _verdict(self, word: Word, trace: Trace) -> tuple[str, str | None, str | None]:
        if isinstance(word, OrderConfirmation):
            if word.created:
                return CONFIRMED, word.sales_order, word.notes() or None
            return REJECTED, None, word.notes() or f"S/4 result code {word.result_code}"
        if word.kind == "found":
            return CONFIRMED, word.sales_order, "found in API_SALES_ORDER_SRV"
        if self.reader is not None:
            reader = self.reader
            with trace.step("s4.find_order", detail=word.order_id) as step:
                found = (await reader.find_orders([word.order_id]))[word.order_id]
                step.detail = ", ".join(order.sales_order for order in found) or "not found"
            if found:
                return CONFIRMED, found[0].sales_order, "found in API_SALES_ORDER_SRV"
        deadline = self.settings.confirmation.deadline_seconds
        return (
            OVERDUE,
            None,
            f"S/4HANA Cloud has not confirmed the order within {deadline:.0f} s of sending it "
            f"(bulk message {word.batch_id}), nor is it in API_SALES_ORDER_SRV; see S/4's "
            "message monitoring for the bulk message",
        )

    async def _conclude(
        self,
        item: ItemView,
        keys: dict[str, str],
        bulk: BulkInfo,
        trace: Trace,
        *,
        message_id: str,
    ) -> SalesOrderResult:
        if item.state == CONFIRMED:
            written = await self._write("created", trace, item)
            keys["SalesOrder"] = item.target_ref or ""
            return SalesOrderResult(
                outcome=OrderOutcome.CONFIRMED,
                http_status=200,
                flow=CONFIRMATION_FLOW,
                route=ROUTE,
                keys=keys,
                bulk=bulk,
                sales_order=item.target_ref,
                backend_message=item.detail,
                write_back=written,
            )
        written = await self._write("failed", trace, item)
        text = item.detail or "S/4HANA Cloud did not create the order"
        if item.state == REJECTED:
            return SalesOrderResult(
                outcome=OrderOutcome.REJECTED,
                http_status=422,
                flow=CONFIRMATION_FLOW,
                route=ROUTE,
                keys=keys,
                bulk=bulk,
                backend_message=text,
                error=ErrorInfo(type="RejectedBySap", message=f"S/4HANA Cloud rejected: {text}"),
                write_back=written,
            )
        result = failure(
            PermanentError(text, status=504),
            flow=CONFIRMATION_FLOW,
            route=ROUTE,
            keys=keys,
            bulk=bulk,
        )
        result.write_back = written
        return result

    async def _write(self, status: str, trace: Trace, item: ItemView) -> str:
        return await self.write_back.record(
            trace,
            item.reference,
            status,
            message_id=item.message_id,
            sales_order=item.target_ref if status == "created" else None,
            text=item.detail,
        )


def _describe(word: Word) -> str:
    if isinstance(word, OrderConfirmation):
        verdict = f"created {word.sales_order}" if word.created else "failed"
        return f"confirmation {word.confirmation_id} of bulk {word.reference_id}: {verdict}"
    return f"{word.kind} by polling (bulk {word.batch_id})"

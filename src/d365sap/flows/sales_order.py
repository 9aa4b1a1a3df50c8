"""Sales orders: Dynamics → S/4HANA Cloud SalesOrderBulkRequest_In (SEED-SPEC §6, §8.8).

One message per order. A run:

1. reads the message: a pushed order (legacy endpoint) or an :class:`OrderSubmitted` trigger,
   for which the order, its lines, products, units and currency are read from Dataverse;
2. asks the outbox whether the order went out before. An order S/4 may hold (sent, waiting,
   confirmed, or in a bulk whose fate is unknown) is never sent in a new bulk: a bulk still
   ``sending`` is sent again as recorded, with the same ``MessageHeader/ID``; anything else
   ends as ``sent``/``already_sent``. Only an order S/4 rejected or refused goes out anew (or
   an overdue one, when an operator forces its own message to run again);
3. routes: only ``erpsystemtype = S4HC`` (and, from Dataverse, only a Submitted order) goes on,
   anything else is discarded with the reason;
4. finds the customer's S/4 keys in the key registry. A customer not synchronised yet is a
   transient failure: the order waits (``customer_retry_seconds``) until
   ``customer_wait_seconds`` after it arrived, then fails with a message saying so;
5. maps the order (:mod:`d365sap.mapping.sales_order`), checks its ``SalesOrder`` node against
   the schema, and hands it to the :class:`BulkPacker`, which packs it with other orders ready
   at the same time into one bulk message;
6. on S/4's acknowledgement writes ``sent`` to the order in Dynamics and ends as ``sent``.

A permanent failure is also written to the order in Dynamics (status failed, the reason). S/4's
verdict on the order arrives later and is handled by the confirmation flow.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from d365sap.config_sales_orders import SalesOrderSettings
from d365sap.connectors.dataverse import DataverseClient
from d365sap.connectors.s4_sales_orders import SalesOrderReader
from d365sap.engine.dry_run import DryRunReport
from d365sap.engine.outbox import OVERDUE, PENDING, REFUSED, REJECTED, SENT, ItemView, Outbox
from d365sap.engine.store import MessageStore
from d365sap.engine.trace import Trace
from d365sap.engine.types import Description
from d365sap.errors import D365SapError, NotFoundError, PermanentError, TransientError
from d365sap.flows.sales_order_customer import CustomerKeys
from d365sap.flows.sales_order_messages import (
    DISCARD_ROUTE,
    FLOW_NAME,
    ROUTE,
    OrderSubmitted,
    decode_submitted,
    is_submitted,
)
from d365sap.flows.sales_order_packer import BulkPacker, Dispatch, PackedOrder, SendAloneError
from d365sap.flows.sales_order_result import (
    BulkInfo,
    OrderOutcome,
    SalesOrderResult,
    failure,
)
from d365sap.flows.sales_order_writeback import OrderWriteBack
from d365sap.mapping.sales_order import sales_order
from d365sap.mapping.sales_order_bulk import order_problems, order_xml
from d365sap.mapping.sales_order_rows import (
    ENTITY_SET,
    S4HC_LABEL,
    SUBMITTED,
    order_from_rows,
    order_query,
)
from d365sap.mapping.sales_order_source import parse_order
from d365sap.model.sales_order import DynamicsOrder, SoldTo

log = structlog.get_logger("d365sap.sales_orders")
FRESH_STATES = frozenset({REJECTED, REFUSED})
"""Earlier sendings after which S/4 holds nothing of the order: it may go out anew."""


def goes_out_anew(earlier: ItemView | None, message_id: str) -> bool:
    """Whether the order may be sent in a new bulk message.

    Never sent, rejected by S/4, or its bulk refused: yes. Overdue (S/4 never said anything, and
    API_SALES_ORDER_SRV did not have it at the deadline): only when the message that sent it
    runs again, which after it settled only an operator's forced retry does.
    """
    if earlier is None or earlier.state in FRESH_STATES:
        return True
    return earlier.state == OVERDUE and earlier.message_id == message_id


class DiscardedError(Exception):
    """The order is not for S/4 (or no longer submitted): it ends as discarded, with the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_pushed(payload: bytes) -> DynamicsOrder:
    """A pushed order, JSON or XML by its first character."""
    head = payload.lstrip()[:1]
    return parse_order(payload, "application/json" if head in (b"{", b"[") else "application/xml")


def read_message(payload: bytes) -> OrderSubmitted | DynamicsOrder:
    """The trigger or the pushed order in ``payload``."""
    if is_submitted(payload):
        return decode_submitted(payload)
    return parse_pushed(payload)


class SalesOrderFlow:
    """Runs one sales order message (see the module docstring)."""

    name: str = FLOW_NAME
    content_types: tuple[str, ...] = ("application/json", "application/xml", "text/xml")

    def __init__(
        self,
        *,
        settings: SalesOrderSettings,
        store: MessageStore,
        packer: BulkPacker,
        customers: CustomerKeys,
        dataverse: DataverseClient | None,
        write_back: OrderWriteBack,
        max_attempts: int,
        reader: SalesOrderReader | None = None,
        discard_status: int = 202,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.discard_status = discard_status
        self.store = store
        self.outbox = Outbox(store)
        self.packer = packer
        self.customers = customers
        self.dataverse = dataverse
        self.write_back = write_back
        self.max_attempts = max_attempts
        self.reader = reader
        self.clock = clock

    # describing ------------------------------------------------------------------------------

    def describe(self, payload: bytes) -> Description:
        """Route, business key (the Dynamics order id) and queue, without side effects."""
        queue = self.settings.queue
        try:
            message = read_message(payload)
        except D365SapError:
            return Description(queue=queue)
        if isinstance(message, OrderSubmitted):
            return Description(route=ROUTE, business_key=str(message.order_id), queue=queue)
        route = ROUTE if message.erp_system_type == S4HC_LABEL else DISCARD_ROUTE
        return Description(route=route, business_key=str(message.order_id), queue=queue)

    async def dry_run(self, payload: bytes) -> DryRunReport:
        """What :meth:`run` would do now, without sending or writing (``sales_order_dry_run``)."""
        from d365sap.flows.sales_order_dry_run import dry_run  # the report builds on this flow

        return await dry_run(self, self.reader, payload)

    # running ---------------------------------------------------------------------------------

    async def run(self, payload: bytes, trace: Trace, *, message_id: str) -> SalesOrderResult:
        """Process one message; business and back-end errors are returned, not raised."""
        keys: dict[str, str] = {}
        order: DynamicsOrder | None = None
        try:
            with trace.step("parse"):
                message = read_message(payload)
            keys["SalesOrderID"] = str(message.order_id)
            with trace.step("outbox.check") as step:
                earlier = await self.store.call(
                    lambda: self.outbox.latest_for(str(message.order_id))
                )
                step.detail = _earlier_text(earlier)
            alone = False
            if earlier is not None and not goes_out_anew(earlier, message_id):
                try:
                    return await self._earlier(earlier, keys, trace, message_id=message_id)
                except SendAloneError:
                    alone = True  # the recorded bulk was refused as a whole: go out alone
            order = await self.order_of(message, trace)
            keys["OrderNumber"] = order.order_number
            self.check_route(order)
            sold_to = await self._sold_to(order, trace, message_id=message_id)
            keys["SoldToParty"] = sold_to.customer
            packed = self._pack(order, sold_to, trace, message_id=message_id)
            dispatch = await self._send(packed, trace, alone=alone)
            written = await self._write(str(order.order_id), trace, message_id=message_id)
            return self._sent(keys, dispatch, written)
        except DiscardedError as discard:
            return SalesOrderResult(
                outcome=OrderOutcome.DISCARDED,
                http_status=self.discard_status,
                flow=FLOW_NAME,
                route=DISCARD_ROUTE,
                target=None,
                keys=keys,
                reason=discard.reason,
            )
        except D365SapError as error:
            result = failure(error, flow=FLOW_NAME, route=ROUTE, keys=keys)
            if order is not None and not isinstance(error, TransientError):
                result.write_back = await self._mark_failed(
                    order, error, trace, message_id=message_id
                )
            return result

    async def order_of(
        self, message: OrderSubmitted | DynamicsOrder, trace: Trace
    ) -> DynamicsOrder:
        if isinstance(message, DynamicsOrder):
            return message
        if self.dataverse is None:
            raise PermanentError(
                "the order must be read from Dataverse, but no Dataverse client is configured"
            )
        client = self.dataverse
        query = order_query(self.settings.columns)
        with trace.step("dataverse.read_order", detail=str(message.order_id)) as step:
            try:
                row = await client.get(
                    ENTITY_SET, message.order_id, select=query.select, expand=query.expand
                )
            except NotFoundError:
                step.detail = "the order no longer exists"
                raise DiscardedError(
                    f"order {message.order_id} no longer exists in Dataverse"
                ) from None
            order = order_from_rows(row, self.settings.columns)
            step.detail = f"{order.order_number}: {len(order.lines)} line(s), state {order.state}"
        if order.state != SUBMITTED:
            raise DiscardedError(
                f"order {order.order_number} is not submitted (statecode {order.state}); "
                "only submitted orders go to S/4"
            )
        return order

    def check_route(self, order: DynamicsOrder) -> None:
        if order.erp_system_type != S4HC_LABEL:
            found = order.erp_system_type or "(none)"
            raise DiscardedError(f"erpsystemtype {found!r} is not 'S4HC': the order is not for S/4")

    async def _sold_to(self, order: DynamicsOrder, trace: Trace, *, message_id: str) -> SoldTo:
        with trace.step("registry.customer", detail=str(order.customer_id)) as step:
            sold_to = await self.store.call(lambda: self.customers.sold_to(order))
            if sold_to is not None:
                step.detail = f"{sold_to.customer} in {sold_to.sales_area} ({sold_to.source})"
                return sold_to
            step.status = "waiting"
        message = await self.store.call(lambda: self.store.status_of(message_id))
        arrived = message.created_at if message is not None else self.clock()
        waited = (self.clock() - arrived).total_seconds()
        wait = self.settings.customer_wait_seconds
        last_attempt = message is not None and message.attempts >= self.max_attempts
        text = (
            f"customer {order.customer_id} of order {order.order_number} is not synchronised "
            "with S/4HANA Cloud (no confirmed S/4 sales area in the key registry)"
        )
        if waited < wait and not last_attempt:
            remaining = wait - waited
            raise TransientError(
                f"{text}; the order waits up to {wait:.0f} s for it ({remaining:.0f} s left)",
                retry_after=min(self.settings.customer_retry_seconds, max(remaining, 0.1)),
            )
        raise PermanentError(
            f"{text} after waiting {waited:.0f} s; synchronise the customer, then retry the "
            "message",
            status=422,
        )

    def _pack(
        self, order: DynamicsOrder, sold_to: SoldTo, trace: Trace, *, message_id: str
    ) -> PackedOrder:
        with trace.step("map") as step:
            mapped = sales_order(order, sold_to, self.settings)
            node = order_xml(mapped)
            problems = order_problems(node)
            if problems:
                raise PermanentError(
                    "the mapped order breaks the SalesOrderBulkRequest schema: "
                    + "; ".join(problems),
                    status=422,
                )
            step.detail = f"{mapped.line_count} item(s), {len(node)} bytes"
        trace.snapshot("mapped.sales_order", "application/xml", node)
        return PackedOrder(
            message_id=message_id, reference=mapped.order_id, node=node, lines=mapped.line_count
        )

    async def _send(self, packed: PackedOrder, trace: Trace, *, alone: bool) -> Dispatch:
        with trace.step("s4.send_bulk") as step:
            if alone:
                dispatch = await self.packer.submit_alone(packed)
            else:
                try:
                    dispatch = await self.packer.submit(packed)
                except SendAloneError as refused:
                    step.detail = refused.message
                    dispatch = await self.packer.submit_alone(packed)
            step.detail = (
                f"bulk {dispatch.batch_id}: order {dispatch.position} of {dispatch.orders}, "
                f"{dispatch.request_bytes} bytes"
            )
            step.reply(dispatch.status, None)
        return dispatch

    async def _earlier(
        self, earlier: ItemView, keys: dict[str, str], trace: Trace, *, message_id: str
    ) -> SalesOrderResult:
        """The order went out before: finish that sending instead of sending it again."""
        bulk = BulkInfo(
            message_header_id=earlier.batch_id,
            position=earlier.position,
            orders=earlier.batch_items,
            resent=earlier.state == PENDING,
        )
        if earlier.state == PENDING:
            with trace.step("s4.resend_bulk", detail=f"bulk {earlier.batch_id}") as step:
                acknowledgement = await self.packer.resend(earlier.batch_id)
                if acknowledgement is None:
                    step.detail = f"bulk {earlier.batch_id} was sent meanwhile"
                else:
                    step.reply(acknowledgement.status, None)
        mine = earlier.message_id == message_id
        if mine:
            written = None
            if earlier.state in (PENDING, SENT):
                written = await self._write(keys["SalesOrderID"], trace, message_id=message_id)
            return SalesOrderResult(
                outcome=OrderOutcome.SENT,
                http_status=202,
                flow=FLOW_NAME,
                route=ROUTE,
                keys=keys,
                bulk=bulk,
                sales_order=earlier.target_ref,
                write_back=written,
            )
        return SalesOrderResult(
            outcome=OrderOutcome.ALREADY_SENT,
            http_status=200,
            flow=FLOW_NAME,
            route=ROUTE,
            keys=keys,
            bulk=bulk,
            sales_order=earlier.target_ref,
            reason=f"the order was sent to S/4 by message {earlier.message_id} "
            f"(bulk {earlier.batch_id}, {earlier.state}); it is not sent again",
        )

    def _sent(self, keys: dict[str, str], dispatch: Dispatch, written: str) -> SalesOrderResult:
        return SalesOrderResult(
            outcome=OrderOutcome.SENT,
            http_status=202,
            flow=FLOW_NAME,
            route=ROUTE,
            keys=keys,
            bulk=BulkInfo(
                message_header_id=dispatch.batch_id,
                position=dispatch.position,
                orders=dispatch.orders,
                request_bytes=dispatch.request_bytes,
            ),
            write_back=written,
            backend_status=dispatch.status,
        )

    # writing back ----------------------------------------------------------------------------

    async def _write(self, order_id: str, trace: Trace, *, message_id: str) -> str:
        """Record ``sent`` in Dynamics (a transient failure retries the message)."""
        return await self.write_back.record(trace, order_id, "sent", message_id=message_id)

    async def _mark_failed(
        self, order: DynamicsOrder, error: D365SapError, trace: Trace, *, message_id: str
    ) -> str:
        """Tell Dynamics the order failed; a write-back that fails too is only recorded."""
        try:
            return await self.write_back.record(
                trace, str(order.order_id), "failed", message_id=message_id, text=error.message
            )
        except D365SapError as unwritten:
            log.warning(
                "failure not written back", order=str(order.order_id), error=unwritten.message
            )
            return f"failed: {unwritten.message}"


def _earlier_text(earlier: ItemView | None) -> str:
    if earlier is None:
        return "not sent before"
    return f"{earlier.state} in bulk {earlier.batch_id} (message {earlier.message_id})" + (
        f", S/4 order {earlier.target_ref}" if earlier.target_ref else ""
    )

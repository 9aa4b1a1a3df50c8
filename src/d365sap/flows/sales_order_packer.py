"""Packing sales orders into bulk messages: several ``SalesOrder`` per SOAP request.

Each order is its own d365sap message and settles on its own; what they share is the request.
A flow run hands its serialised order to :meth:`BulkPacker.submit` and waits. The first order of
a new bulk opens a short window (``bulk_window_ms``); orders that are ready meanwhile join it,
until ``bulk_size`` orders or ``bulk_max_kb`` are reached, then the bulk goes out:

1. a new ``MessageHeader/ID`` (32 hex digits, like SAP's) is drawn and the whole request is
   written to the outbox with one ``pending`` item per order, in one transaction, *before* it is
   sent (:mod:`d365sap.engine.outbox`);
2. the request is posted; each waiting run hears the outcome of its own order.

An outcome that is unknown (timeout, dropped connection, 5xx) leaves the bulk ``sending``. When
a member's message is tried again it finds its pending item and :meth:`BulkPacker.resend` posts
the *recorded* request, with the same id and body: S/4 processes a ``MessageHeader/ID`` once,
so a request that had arrived creates nothing twice, and one that had not creates its orders
now. Members retrying at the same time share one resend.

S/4 refuses a whole request when one order breaks its schema. Orders are checked against the
schema before they are packed, so that should not happen; if S/4 still refuses a bulk of several
orders with a ``Client`` fault, nothing of it was taken, and each member is sent again alone
(:class:`SendAloneError`), so one bad order cannot fail the others.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from d365sap.connectors.s4_soap import BulkAcknowledgement, SalesOrderBulkClient
from d365sap.engine.outbox import REFUSED, SENT, NewItem, Outbox
from d365sap.engine.store import MessageStore
from d365sap.errors import D365SapError, PermanentError, TransientError
from d365sap.mapping.sales_order_bulk import BulkHeader, bulk_request

log = structlog.get_logger("d365sap.sales_orders")

CHANNEL = "s4hc:SalesOrderBulkRequest_In"
_ENVELOPE_BYTES = 512
"""Room the message header and the SOAP envelope take besides the orders."""
_SPLIT_CODES = frozenset({"Client", "Sender"})


@dataclass(frozen=True)
class PackedOrder:
    """One order ready to go: its message, business reference and ``SalesOrder`` node."""

    message_id: str
    reference: str
    node: bytes
    lines: int


@dataclass(frozen=True)
class Dispatch:
    """How an order went out: in which bulk message, at which position, and S/4's answer."""

    batch_id: str
    position: int
    orders: int
    request_bytes: int
    status: int
    resent: bool = False


class SendAloneError(PermanentError):
    """S/4 refused a bulk of several orders as a whole: send this order again on its own."""


@dataclass
class PackerStats:
    """What went out since start: requests, orders and request sizes (for the benchmark)."""

    requests: int = 0
    orders: int = 0
    lines: int = 0
    request_bytes: int = 0
    largest_request: int = 0
    resends: int = 0
    sizes: list[int] = field(default_factory=list)


@dataclass
class _Entry:
    order: PackedOrder
    future: asyncio.Future[Dispatch]


class BulkPacker:
    """Collects orders into bulk messages and sends them through the outbox."""

    def __init__(
        self,
        store: MessageStore,
        client: SalesOrderBulkClient,
        *,
        sender_system: str,
        recipient_system: str | None = None,
        max_orders: int = 20,
        max_bytes: int = 2 * 1024 * 1024,
        window_seconds: float = 0.025,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.outbox = Outbox(store)
        self.client = client
        self.sender_system = sender_system
        self.recipient_system = recipient_system
        self.max_orders = max_orders
        self.max_bytes = max_bytes
        self.window_seconds = window_seconds
        self.clock = clock
        self.stats = PackerStats()
        self._open: list[_Entry] = []
        self._open_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._resends: dict[str, asyncio.Task[BulkAcknowledgement | None]] = {}

    # packing ---------------------------------------------------------------------------------

    async def submit(self, order: PackedOrder) -> Dispatch:
        """Send ``order`` in the next bulk message; the outcome of its own order."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Dispatch] = loop.create_future()
        size = len(order.node)
        if self._open and self._open_bytes + size + _ENVELOPE_BYTES > self.max_bytes:
            self._flush()
        self._open.append(_Entry(order, future))
        self._open_bytes += size
        if len(self._open) >= self.max_orders:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.window_seconds, self._flush)
        return await future

    async def submit_alone(self, order: PackedOrder) -> Dispatch:
        """Send ``order`` in a bulk message of its own, at once."""
        future: asyncio.Future[Dispatch] = asyncio.get_running_loop().create_future()
        self._start([_Entry(order, future)])
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        entries, self._open, self._open_bytes = self._open, [], 0
        if entries:
            self._start(entries)

    def _start(self, entries: list[_Entry]) -> None:
        task = asyncio.get_running_loop().create_task(self._deliver(entries))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, entries: list[_Entry]) -> None:
        batch_id = uuid.uuid4()
        header = BulkHeader(
            message_id=batch_id.hex.upper(),
            message_uuid=str(batch_id),
            created_at=self.clock(),
            sender_system=self.sender_system,
            recipient_system=self.recipient_system,
        )
        body = bulk_request(header, [entry.order.node for entry in entries])
        items = [
            NewItem(entry.order.message_id, entry.order.reference, position)
            for position, entry in enumerate(entries, start=1)
        ]
        try:
            await self.store.call(
                lambda: self.outbox.record(header.message_id, CHANNEL, body, items)
            )
        except Exception as exc:  # the store failed: nothing was sent
            failure = TransientError(f"the outbox could not record the bulk message: {exc}")
            for entry in entries:
                _settle(entry.future, failure)
            return
        stats = self.stats
        stats.requests += 1
        stats.orders += len(entries)
        stats.lines += sum(entry.order.lines for entry in entries)
        stats.request_bytes += len(body)
        stats.largest_request = max(stats.largest_request, len(body))
        stats.sizes.append(len(body))
        try:
            acknowledgement = await self._post(header.message_id, body, len(entries))
        except D365SapError as error:
            for entry in entries:
                _settle(entry.future, error)
            return
        except Exception as exc:  # a bug: report it to every member rather than hang them
            for entry in entries:
                _settle(entry.future, exc)
            raise
        for position, entry in enumerate(entries, start=1):
            _settle(
                entry.future,
                Dispatch(
                    batch_id=header.message_id,
                    position=position,
                    orders=len(entries),
                    request_bytes=len(body),
                    status=acknowledgement.status,
                ),
            )

    async def _post(self, batch_id: str, body: bytes, orders: int) -> BulkAcknowledgement:
        """Post a recorded bulk; record the outcome; raise what the members must hear."""
        try:
            acknowledgement = await self.client.send(body, message_id=batch_id)
        except TransientError as error:
            unknown = error.message
            await self.store.call(lambda: self.outbox.note_attempt(batch_id, unknown))
            raise
        except PermanentError as error:
            refused = error.message
            await self.store.call(lambda: self.outbox.mark_refused(batch_id, refused))
            if orders > 1 and error.code in _SPLIT_CODES:
                log.warning("bulk message refused, sending its orders alone", batch=batch_id)
                raise SendAloneError(
                    f"{error.message} (bulk of {orders} orders; sent again alone)",
                    status=error.status,
                    backend_message=error.backend_message,
                    code=error.code,
                ) from error
            raise
        await self.store.call(lambda: self.outbox.mark_sent(batch_id))
        return acknowledgement

    # resending -------------------------------------------------------------------------------

    async def resend(self, batch_id: str) -> BulkAcknowledgement | None:
        """Send a recorded bulk again as it is; ``None`` when it has been taken meanwhile.

        Members of one bulk that retry together share a single request. Raises what S/4
        answers, like :meth:`submit`.
        """
        running = self._resends.get(batch_id)
        if running is None:
            running = asyncio.get_running_loop().create_task(self._resend(batch_id))
            self._resends[batch_id] = running
            running.add_done_callback(lambda _: self._resends.pop(batch_id, None))
        return await asyncio.shield(running)

    async def _resend(self, batch_id: str) -> BulkAcknowledgement | None:
        batch = await self.store.call(lambda: self.outbox.batch(batch_id))
        if batch is None:
            raise PermanentError(f"bulk message {batch_id} is not in the outbox")
        if batch.state == SENT:
            return None
        if batch.state == REFUSED:
            raise PermanentError(
                f"bulk message {batch_id} was refused: {batch.last_error}", status=422
            )
        self.stats.resends += 1
        self.stats.requests += 1
        self.stats.request_bytes += len(batch.body)
        log.info("resending bulk message", batch=batch_id, attempts=batch.attempts)
        return await self._post(batch_id, batch.body, batch.item_count)

    async def aclose(self) -> None:
        """Send what is open and wait for the deliveries under way."""
        self._flush()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _settle(future: asyncio.Future[Dispatch], outcome: Dispatch | BaseException) -> None:
    if future.done():
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)

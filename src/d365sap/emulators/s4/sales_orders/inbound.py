"""Received bulk messages: acceptance with duplicate detection, then processing in arrival order.

SalesOrderBulkRequest_In is asynchronous: the caller hears 202 once the message is stored, and
S/4 processes it later. Here one worker on the app's event loop takes the messages in the order
they arrived, waits until ``processing_delay_seconds`` after receipt, runs every order of the
message through :class:`~.creation.OrderBook` and hands each outcome to the confirmation sender.

A message whose ``MessageHeader/ID`` was received before is acknowledged like any other but
not processed again (it shows as ``duplicate`` with the number of the first one), so a sender
that repeats a message after a lost answer creates its orders once. Messages accepted before
the worker runs (an app without lifespan) wait for it. ``reset`` forgets everything, including
the ids seen, and stops what is under way.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from d365sap.emulators.loop_inbox import LoopInbox
from d365sap.emulators.s4.sales_orders.confirmation import ConfirmationSender
from d365sap.emulators.s4.sales_orders.creation import OrderBook
from d365sap.emulators.s4.sales_orders.message import BulkRequest
from d365sap.emulators.s4.sales_orders.outcome import OrderOutcome
from d365sap.emulators.s4.sales_orders.soap import SoapVersion

log = logging.getLogger(__name__)

MessageState = Literal[
    "received", "processing", "processed", "partly_failed", "failed", "duplicate"
]
UNDER_WAY = frozenset({"received", "processing"})
_BODY_KEPT = 256 * 1024


@dataclass
class ReceivedMessage:
    """One accepted request and what became of it."""

    seq: int
    request: BulkRequest
    user: str
    soap_version: SoapVersion
    body: bytes
    received_at: datetime
    state: MessageState = "received"
    duplicate_of: int | None = None
    processed_at: datetime | None = None
    outcomes: list[OrderOutcome] = field(default_factory=list)

    def view(self, *, full: bool = False) -> dict[str, Any]:
        """JSON for the admin routes; ``full`` adds the request body."""
        header = self.request.header
        entry: dict[str, Any] = {
            "seq": self.seq,
            "message_id": header.id,
            "message_uuid": header.uuid,
            "sender_business_system": header.sender_system,
            "received_at": self.received_at.isoformat(),
            "processed_at": self.processed_at.isoformat() if self.processed_at else None,
            "user": self.user,
            "soap_version": self.soap_version.value,
            "state": self.state,
            "duplicate_of": self.duplicate_of,
            "order_count": len(self.request.orders),
            "orders": [outcome.view() for outcome in self.outcomes],
        }
        if full:
            entry["body"] = self.body[:_BODY_KEPT].decode("utf-8", "replace")
        return entry


class SalesOrderInbound:
    """The message log, the duplicate check and the processing worker."""

    def __init__(
        self,
        book: OrderBook,
        sender: ConfirmationSender,
        delay_seconds: float,
        log_size: int,
    ) -> None:
        self.book = book
        self.sender = sender
        self.delay_seconds = delay_seconds
        self.log_size = log_size
        self._lock = threading.Lock()
        # Held while orders are written, so a reset never interleaves with a half-done message.
        self._processing = threading.Lock()
        self._messages: OrderedDict[int, ReceivedMessage] = OrderedDict()
        self._seen: dict[str, int] = {}
        self._sequence = itertools.count(1)
        self._inbox: LoopInbox[int] = LoopInbox(
            self._process, name="sales-order-inbound", on_error=self._crashed
        )

    # receiving --------------------------------------------------------------------------

    def accept(
        self, request: BulkRequest, body: bytes, user: str, version: SoapVersion
    ) -> ReceivedMessage:
        """Store a schema-valid message and queue it, unless its id was seen before."""
        now = datetime.now(UTC)
        message_id = request.header.id
        with self._lock:
            seq = next(self._sequence)
            message = ReceivedMessage(seq, request, user, version, body, now)
            first = self._seen.get(message_id) if message_id else None
            if first is not None:
                message.state, message.duplicate_of = "duplicate", first
            elif message_id:
                self._seen[message_id] = seq
            self._messages[seq] = message
            self._evict()
        if message.state != "duplicate":
            self._inbox.put(seq)
        return message

    def _evict(self) -> None:
        excess = len(self._messages) - self.log_size
        done = [k for k, m in self._messages.items() if m.state not in UNDER_WAY]
        for key in done[: max(0, excess)]:
            del self._messages[key]

    # processing -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the worker on the running loop and queue what waited for it."""
        await self._inbox.start()

    async def stop(self) -> None:
        """Stop the worker and the confirmations under way."""
        await self._inbox.stop()
        await self.sender.stop()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[SalesOrderInbound]:
        """``async with inbound.running():`` for the app's lifespan."""
        await self.start()
        try:
            yield self
        finally:
            await self.stop()

    def _crashed(self, seq: int) -> None:
        self._settle(seq, [], "failed")

    async def _process(self, seq: int) -> None:
        with self._lock:
            message = self._messages.get(seq)
        if message is None:
            return  # forgotten by a reset
        due = message.received_at + timedelta(seconds=self.delay_seconds)
        wait = (due - datetime.now(UTC)).total_seconds()
        if wait > 0:
            await asyncio.sleep(wait)
        with self._processing:
            with self._lock:
                if self._messages.get(seq) is not message:
                    return
                message.state = "processing"
            outcomes = [
                self.book.process(order, message.request.header, message.user)
                for order in message.request.orders
            ]
            created = sum(outcome.created for outcome in outcomes)
            if created == len(outcomes):
                state: MessageState = "processed"
            else:
                state = "partly_failed" if created else "failed"
            if not self._settle(seq, outcomes, state):
                return
        for outcome in outcomes:
            self.sender.submit(seq, message.request.header, outcome)

    def _settle(self, seq: int, outcomes: list[OrderOutcome], state: MessageState) -> bool:
        with self._lock:
            message = self._messages.get(seq)
            if message is None:
                return False
            message.outcomes, message.state = outcomes, state
            message.processed_at = datetime.now(UTC)
            return True

    # inspection -------------------------------------------------------------------------

    def messages(self) -> list[dict[str, Any]]:
        """The message log, oldest first."""
        with self._lock:
            return [m.view() for m in self._messages.values()]

    def message(self, seq: int) -> dict[str, Any] | None:
        """One message with its body and its confirmations, or None."""
        with self._lock:
            found = self._messages.get(seq)
            entry = found.view(full=True) if found else None
        if entry is not None:
            entry["confirmations"] = self.sender.of_message(seq)
        return entry

    def idle(self) -> bool:
        """No message waiting or being processed and no confirmation under way."""
        with self._lock:
            busy = any(m.state in UNDER_WAY for m in self._messages.values())
        return not busy and not self.sender.busy()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until :meth:`idle`; False on timeout."""
        deadline = time.monotonic() + timeout
        while not self.idle():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def reset(self) -> None:
        """Forget every message and id seen; stop confirmations under way (from any thread).

        Waits for an order being written, so the caller's store reset removes it afterwards.
        """
        with self._processing, self._lock:
            self._messages.clear()
            self._seen.clear()
        self._inbox.clear()
        self.sender.reset()

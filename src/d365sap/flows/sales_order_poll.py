"""Looking for S/4's orders in API_SALES_ORDER_SRV: the confirmation channel of last resort.

SalesOrderBulkRequest_In acknowledges only receipt; the package's guide leaves S/4's outbound
confirmations deactivated (G6). Without a confirmation channel (``confirmation.channel =
"poll"``) this poller reads, at ``poll_interval_seconds``, the orders d365sap has sent and not
heard of yet (outbox items ``sent``), a chunk at a time, from API_SALES_ORDER_SRV by the
custom field ``YY1_CRMOrderID_SDH``. Each order found becomes a ``found`` message of the
confirmation flow, which writes the number back to Dynamics.

S/4 leaves no trace in API_SALES_ORDER_SRV of an order it could not create (its error log is
in S/4's message monitoring). An order neither found nor confirmed ``deadline_seconds`` after it
was sent becomes an ``overdue`` message: the confirmation flow looks once more, then reports it
failed in Dynamics. With pushed confirmations (``channel = "push"``) the poller only does that
last part, for orders whose confirmation never arrived.

Messages are submitted with stable source ids (``found:<bulk>:<order>``), so a finding reported
by several rounds (or processes) is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from d365sap.config_sales_orders import ConfirmationSettings
from d365sap.connectors.s4_sales_orders import SalesOrderReader
from d365sap.engine.intake import Intake
from d365sap.engine.outbox import ItemView, Outbox
from d365sap.engine.store import MessageStore
from d365sap.errors import D365SapError
from d365sap.flows.sales_order_messages import (
    CONFIRMATION_FLOW,
    TRIGGER_CONTENT_TYPE,
    OrderFound,
    encode,
    found_source_id,
)

log = structlog.get_logger("d365sap.sales_orders")
ROUND_LIMIT = 2000
"""Items looked at per round at most (the oldest first)."""


@dataclass
class ConfirmationPollStats:
    """What the poller did since start."""

    rounds: int = 0
    looked_up: int = 0
    found: int = 0
    overdue: int = 0
    errors: int = 0
    last_error: str | None = None


class ConfirmationPoller:
    """Finds the orders S/4 created (or did not) and hands them to the confirmation flow."""

    def __init__(
        self,
        *,
        store: MessageStore,
        intake: Intake,
        reader: SalesOrderReader | None,
        settings: ConfirmationSettings,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.outbox = Outbox(store)
        self.intake = intake
        self.reader = reader
        self.settings = settings
        self.clock = clock
        self.stats = ConfirmationPollStats()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @property
    def looks_up(self) -> bool:
        """Whether every sent order is looked for (poll channel), not only overdue ones."""
        return self.settings.channel == "poll" and self.reader is not None

    async def poll_once(self) -> ConfirmationPollStats:
        """One round; returns the running totals."""
        now = self.clock()
        deadline = now - timedelta(seconds=self.settings.deadline_seconds)
        if self.looks_up:
            since = now - timedelta(seconds=self.settings.poll_after_seconds)
        else:
            since = deadline
        candidates = await self.store.call(lambda: self.outbox.awaiting(since, limit=ROUND_LIMIT))
        found: dict[str, str] = {}
        if self.looks_up and candidates:
            found = await self._look_up(candidates)
        words: list[OrderFound] = []
        for item in candidates:
            number = found.get(item.reference)
            if number is not None:
                words.append(
                    OrderFound(
                        kind="found",
                        batch_id=item.batch_id,
                        order_id=item.reference,
                        sales_order=number,
                    )
                )
            elif item.sent_at is not None and item.sent_at <= deadline:
                words.append(
                    OrderFound(
                        kind="overdue",
                        batch_id=item.batch_id,
                        order_id=item.reference,
                        sent_at=item.sent_at,
                    )
                )
        await self._submit(words)
        self.stats.rounds += 1
        return self.stats

    async def _look_up(self, items: list[ItemView]) -> dict[str, str]:
        assert self.reader is not None
        references = list(dict.fromkeys(item.reference for item in items))
        chunk = self.settings.poll_chunk
        found: dict[str, str] = {}
        for start in range(0, len(references), chunk):
            part = references[start : start + chunk]
            orders = await self.reader.find_orders(part)
            self.stats.looked_up += len(part)
            for reference, matches in orders.items():
                if matches:
                    found[reference] = matches[0].sales_order
        return found

    async def _submit(self, words: list[OrderFound]) -> None:
        if not words:
            return
        correlation_id = uuid.uuid4().hex
        results = await asyncio.gather(
            *(
                self.intake.submit(
                    CONFIRMATION_FLOW,
                    encode(word),
                    content_type=TRIGGER_CONTENT_TYPE,
                    correlation_id=correlation_id,
                    source_id=found_source_id(word),
                )
                for word in words
            )
        )
        for word, result in zip(words, results, strict=True):
            if result.duplicate:
                continue
            if word.kind == "found":
                self.stats.found += 1
            else:
                self.stats.overdue += 1
        log.info(
            "sales order poll",
            found=sum(1 for w in words if w.kind == "found"),
            overdue=sum(1 for w in words if w.kind == "overdue"),
        )

    # the schedule ----------------------------------------------------------------------------

    def poke(self) -> None:
        """Start the next round now."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                await self.poll_once()
            except D365SapError as failure:
                self.stats.errors += 1
                self.stats.last_error = failure.message
                log.error("sales order poll failed", error=failure.message)
            except Exception:  # one bad round must not end the schedule
                self.stats.errors += 1
                log.exception("sales order poll round failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval_seconds)

    def start(self) -> None:
        """Run the schedule as a background task of the running loop."""
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._loop(), name="sales-order-confirmation-poll")

    async def stop(self) -> None:
        """Stop the schedule."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

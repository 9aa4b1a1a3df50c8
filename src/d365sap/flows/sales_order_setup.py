"""Building the sales order flows from the settings, for the service and the workers.

:func:`build_sales_orders` wires the parts: the SOAP client of SalesOrderBulkRequest_In, the
API_SALES_ORDER_SRV reader, the bulk packer over the outbox, the customer keys from the key
registry, the write-back to Dynamics, and the two flows (``sales_order``,
``sales_order_confirmation``). Once the service has its intake, :meth:`SalesOrderParts.attach`
adds what feeds the intake on a schedule: the confirmation poller and, with ``poll_submitted``,
the delta poll of submitted orders. :meth:`start`/:meth:`stop` run and end those schedules;
:meth:`aclose` sends what the packer holds and closes the clients.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import structlog

from d365sap.config import Settings
from d365sap.connectors.dataverse import DataverseClient
from d365sap.connectors.dataverse_setup import dataverse_client, token_provider
from d365sap.connectors.dataverse_token import MsalTokenProvider
from d365sap.connectors.s4_sales_orders import SalesOrderReader
from d365sap.connectors.s4_soap import SalesOrderBulkClient
from d365sap.engine.checkpoints import CheckpointConflictError, CheckpointStore
from d365sap.engine.intake import Intake
from d365sap.engine.store import MessageStore
from d365sap.engine.throttle import SharedThrottle, ThrottleLimits
from d365sap.engine.types import Flow
from d365sap.engine.xref import KeyRegistry
from d365sap.errors import D365SapError
from d365sap.flows.sales_order import SalesOrderFlow
from d365sap.flows.sales_order_confirmation import SalesOrderConfirmationFlow
from d365sap.flows.sales_order_customer import CustomerKeys, parse_sales_area
from d365sap.flows.sales_order_packer import BulkPacker
from d365sap.flows.sales_order_poll import ConfirmationPoller
from d365sap.flows.sales_order_triggers import SubmittedOrderPoll
from d365sap.flows.sales_order_writeback import OrderWriteBack

log = structlog.get_logger("d365sap.sales_orders")
THROTTLE_NAME = "dataverse"
"""The deployment-wide Dataverse throttle, shared with the customer flow."""


def sales_orders_enabled(settings: Settings) -> bool:
    """Whether the service runs the sales order flows."""
    return settings.sales_orders.enabled


class OrderPollSchedule:
    """Runs the delta poll of submitted orders at an interval."""

    def __init__(self, poll: SubmittedOrderPoll, *, interval_seconds: float) -> None:
        self.poll = poll
        self.interval_seconds = interval_seconds
        self.rounds = 0
        self.errors = 0
        self._task: asyncio.Task[None] | None = None

    async def poll_once(self) -> None:
        """One round; failures are logged and left for the next round."""
        try:
            await self.poll.run()
        except CheckpointConflictError:
            log.warning("order poll skipped: another process advanced it")
        except D365SapError as failure:
            self.errors += 1
            log.error("order poll failed", error=failure.message)
        self.rounds += 1

    async def _loop(self) -> None:
        while True:
            try:
                await self.poll_once()
            except Exception:  # one bad round must not end the schedule
                self.errors += 1
                log.exception("order poll round failed")
            await asyncio.sleep(self.interval_seconds)

    def start(self) -> None:
        """Run as a background task."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="dataverse-order-poll")

    async def stop(self) -> None:
        """Stop the schedule."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@dataclass
class SalesOrderParts:
    """The flows and what they own."""

    settings: Settings
    store: MessageStore
    flow: SalesOrderFlow
    confirmations: SalesOrderConfirmationFlow
    packer: BulkPacker
    soap: SalesOrderBulkClient
    reader: SalesOrderReader
    dataverse: DataverseClient | None
    tokens: MsalTokenProvider | None = None
    """Set when the parts opened their own Dataverse client (closed with them)."""
    poller: ConfirmationPoller | None = None
    order_poll: OrderPollSchedule | None = None

    def flows(self) -> dict[str, Flow]:
        """Both flows by name."""
        return {self.flow.name: self.flow, self.confirmations.name: self.confirmations}

    def attach(self, intake: Intake, *, schedules: bool = True) -> None:
        """Create what submits messages on a schedule (where this process serves jobs)."""
        if not schedules:
            return
        orders = self.settings.sales_orders
        self.poller = ConfirmationPoller(
            store=self.store, intake=intake, reader=self.reader, settings=orders.confirmation
        )
        triggers = self.settings.dataverse_triggers
        if orders.poll_submitted and self.dataverse is not None:
            poll = SubmittedOrderPoll(
                intake=intake,
                checkpoints=CheckpointStore(self.store),
                client=self.dataverse,
                initial=triggers.poll_initial,
                rebaseline_cap=self.settings.dataverse.rebaseline_max_rows,
            )
            self.order_poll = OrderPollSchedule(
                poll, interval_seconds=triggers.poll_interval_seconds
            )

    def start(self) -> None:
        """Start the schedules."""
        if self.poller is not None:
            self.poller.start()
        if self.order_poll is not None:
            self.order_poll.start()

    async def stop(self) -> None:
        """Stop the schedules."""
        if self.poller is not None:
            await self.poller.stop()
        if self.order_poll is not None:
            await self.order_poll.stop()

    async def aclose(self) -> None:
        """Send what the packer holds, close the S/4 clients (and the Dataverse one if ours)."""
        await self.packer.aclose()
        await self.soap.aclose()
        await self.reader.aclose()
        if self.tokens is not None and self.dataverse is not None:
            await self.dataverse.aclose()
            self.tokens.close()


def _own_dataverse(
    settings: Settings, store: MessageStore
) -> tuple[DataverseClient, MsalTokenProvider] | None:
    """A Dataverse client of the flow's own, when ``[dataverse]`` is configured at all."""
    if "dataverse" not in settings.model_fields_set:
        return None
    tokens = token_provider(settings.dataverse)
    limits = settings.dataverse.throttle
    throttle = SharedThrottle(
        store, THROTTLE_NAME, ThrottleLimits(**limits.model_dump(exclude={"max_retries"}))
    )
    return dataverse_client(settings.dataverse, tokens, throttle=throttle), tokens


def build_sales_orders(
    settings: Settings, *, store: MessageStore, dataverse: DataverseClient | None
) -> SalesOrderParts:
    """The sales order flows wired from ``settings`` (no request is sent yet).

    ``dataverse`` is the service's Dataverse client when it has one (the native customer
    flow's); otherwise the parts open their own when ``[dataverse]`` is configured, and work
    without Dataverse (pushed orders, no write-back) when it is not.
    """
    orders = settings.sales_orders
    tokens: MsalTokenProvider | None = None
    if dataverse is None:
        own = _own_dataverse(settings, store)
        if own is not None:
            dataverse, tokens = own
    soap = SalesOrderBulkClient(
        orders.soap_url,
        user=orders.user,
        password=orders.secret(),
        timeout=orders.timeout_seconds,
        verify=orders.verify_tls,
    )
    user, password = orders.odata_credentials()
    reader = SalesOrderReader(
        orders.odata.base_url,
        user=user,
        password=password,
        timeout=orders.timeout_seconds,
        verify=orders.verify_tls,
    )
    packer = BulkPacker(
        store,
        soap,
        sender_system=orders.sender_business_system,
        recipient_system=orders.recipient_business_system,
        max_orders=orders.bulk_size,
        max_bytes=orders.bulk_max_bytes,
        window_seconds=orders.bulk_window_ms / 1000.0,
    )
    write_back = OrderWriteBack(dataverse, orders.write_back)
    flow = SalesOrderFlow(
        settings=orders,
        store=store,
        packer=packer,
        customers=CustomerKeys(KeyRegistry(store), preferred=parse_sales_area(orders.sales_area)),
        dataverse=dataverse,
        write_back=write_back,
        max_attempts=settings.runtime.retry.max_attempts,
        discard_status=settings.inbound.discard_status,
        reader=reader,
    )
    confirmations = SalesOrderConfirmationFlow(
        settings=orders, store=store, write_back=write_back, reader=reader
    )
    return SalesOrderParts(
        settings=settings,
        store=store,
        flow=flow,
        confirmations=confirmations,
        packer=packer,
        soap=soap,
        reader=reader,
        dataverse=dataverse,
        tokens=tokens,
    )

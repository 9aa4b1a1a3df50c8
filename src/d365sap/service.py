"""Assembling the service from its settings: store, back-end clients, flows, runtime, intake.

The web app, ``d365sap worker`` and the operator commands all need the same parts wired the same
way; :class:`Service` builds them once and closes them in the right order.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from d365sap.config import Settings
from d365sap.connectors.idoc import IdocClient
from d365sap.connectors.s4_odata import S4ODataClient
from d365sap.engine.checkpoints import CheckpointStore
from d365sap.engine.embedded import EmbeddedRuntime
from d365sap.engine.intake import Intake
from d365sap.engine.processor import Processor
from d365sap.engine.retry import RetryPolicy
from d365sap.engine.runtime import Runtime
from d365sap.engine.store import MessageStore
from d365sap.engine.types import Flow
from d365sap.engine.waiters import Waiters
from d365sap.flows.customer import CustomerFlow, CustomerFlowOptions
from d365sap.flows.dataverse_poller import DataversePoller, delta_poller
from d365sap.flows.dataverse_setup import (
    DataverseFlowParts,
    build_dataverse_flow,
    dataverse_flow_enabled,
)
from d365sap.flows.sales_order_setup import (
    SalesOrderParts,
    build_sales_orders,
    sales_orders_enabled,
)
from d365sap.mapping.pii import mask_payload
from d365sap.mapping.s4_sales_area import S4MappingOptions


def s4_client(settings: Settings) -> S4ODataClient:
    """The API_BUSINESS_PARTNER client described by the settings."""
    s4 = settings.s4
    cert = None
    if s4.client_cert_file and s4.client_key_file:
        cert = (str(s4.client_cert_file), str(s4.client_key_file))
    return S4ODataClient(
        s4.base_url,
        user=s4.user if s4.secret() is not None or cert is None else None,
        password=s4.secret(),
        timeout=s4.timeout_seconds,
        verify=s4.verify_tls,
        cert=cert,
    )


def idoc_client(settings: Settings) -> IdocClient:
    """The IDoc-XML SOAP client described by the settings."""
    erp = settings.erp
    return IdocClient(
        erp.idoc_url,
        user=erp.user,
        password=erp.secret(),
        content_type=erp.content_type,
        timeout=erp.timeout_seconds,
        verify=erp.verify_tls,
        status_url=erp.status_url,
    )


def customer_flow_options(settings: Settings) -> CustomerFlowOptions:
    """The customer flow's options from the settings."""
    return CustomerFlowOptions(
        s4_mapping=S4MappingOptions(
            customer_number_padding=settings.s4.customer_number_padding,
            omit_blank_properties=settings.s4.omit_blank_properties,
            send_tax_row=settings.s4.send_tax_row,
        ),
        idoc_control=settings.erp.control,
        discard_status=settings.inbound.discard_status,
    )


def retry_policy(settings: Settings) -> RetryPolicy:
    """The back-off policy from the settings."""
    retry = settings.runtime.retry
    return RetryPolicy(
        max_attempts=retry.max_attempts,
        base_delay=retry.base_delay_seconds,
        max_delay=retry.max_delay_seconds,
        jitter=retry.jitter,
    )


class Service:
    """Every part of a running d365sap, built from one :class:`Settings`."""

    def __init__(
        self, settings: Settings, *, store: MessageStore | None = None, serve_jobs: bool = True
    ) -> None:
        self.settings = settings
        self._own_store = store is None
        self.store = store or MessageStore.open(
            settings.store.url, masker=mask_payload if settings.store.mask_pii else None
        )
        self.s4 = s4_client(settings)
        self.erp = idoc_client(settings)
        customers = CustomerFlow(s4=self.s4, erp=self.erp, options=customer_flow_options(settings))
        self.flows: dict[str, Flow] = {"customer": customers}
        # The native Dataverse customer flow, when a [dataverse] section is configured.
        self.dataverse: DataverseFlowParts | None = None
        if dataverse_flow_enabled(settings):
            self.dataverse = build_dataverse_flow(
                settings, store=self.store, s4=self.s4, erp=self.erp, customers=customers
            )
            self.flows[self.dataverse.flow.name] = self.dataverse.flow
        # Sales orders to S/4HANA Cloud and S/4's word about them (docs/sales-order-flow.md).
        self.sales_orders: SalesOrderParts | None = None
        if sales_orders_enabled(settings):
            self.sales_orders = build_sales_orders(
                settings,
                store=self.store,
                dataverse=self.dataverse.client if self.dataverse is not None else None,
            )
            self.flows.update(self.sales_orders.flows())
        self.processor = Processor(
            self.store,
            self.flows,
            retry=retry_policy(settings),
            log_payloads=settings.store.log_payloads,
        )
        self.runtime = self._runtime()
        self.serve_jobs = serve_jobs
        self.intake = Intake(self.store, self.flows, self.runtime)
        if self.sales_orders is not None:
            self.sales_orders.attach(self.intake, schedules=serve_jobs)
        # The scheduled delta poll of Dataverse runs where jobs are served (`d365sap serve`).
        self.poller: DataversePoller | None = None
        if self.dataverse is not None and serve_jobs:
            self.poller = delta_poller(
                settings.dataverse_triggers,
                intake=self.intake,
                checkpoints=CheckpointStore(self.store),
                client=self.dataverse.client,
                rebaseline_cap=settings.dataverse.rebaseline_max_rows,
            )
        self.waiters = Waiters(self.store)
        self.processor.on_settled(self.waiters.notify)

    def _runtime(self) -> Runtime:
        runtime = self.settings.runtime
        if runtime.kind == "procrastinate":
            from d365sap.engine.procrastinate_runtime import ProcrastinateRuntime

            return ProcrastinateRuntime(
                self.processor,
                store_url=self.settings.store.url,
                concurrency=runtime.concurrency,
                default_concurrency=runtime.concurrency.get("default", 4),
                poll_interval=runtime.poll_interval_seconds,
                heartbeat_seconds=runtime.heartbeat_seconds,
                stalled_seconds=runtime.stalled_seconds,
                shutdown_grace_seconds=runtime.shutdown_grace_seconds,
                workers_in_process=runtime.workers_in_service,
            )
        return EmbeddedRuntime(
            self.processor,
            concurrency=runtime.concurrency,
            default_concurrency=runtime.concurrency.get("default", 4),
            poll_interval=runtime.poll_interval_seconds,
            lease_seconds=runtime.lease_seconds,
        )

    async def start(self) -> None:
        """Bind waiters to this loop and, where this process serves jobs, start the workers."""
        self.waiters.bind(asyncio.get_running_loop())
        if self.serve_jobs:
            await self.runtime.start()
        if self.poller is not None:
            self.poller.start()
        if self.sales_orders is not None:
            self.sales_orders.start()

    async def stop(self) -> None:
        """Stop workers, close clients, release the store."""
        if self.poller is not None:
            await self.poller.stop()
        if self.sales_orders is not None:
            await self.sales_orders.stop()
        if self.serve_jobs:
            await self.runtime.stop()
        if self.sales_orders is not None:
            await self.sales_orders.aclose()
        if self.dataverse is not None:
            await self.dataverse.aclose()
        await self.s4.aclose()
        await self.erp.aclose()
        if self._own_store:
            await self.store.aclose()

    async def __aenter__(self) -> Service:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

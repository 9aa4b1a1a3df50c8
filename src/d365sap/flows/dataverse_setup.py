"""Building the native customer flow from the settings, for the service and the worker.

:func:`dataverse_flow_enabled` decides whether a service runs the flow: ``[dataverse_flow]
enabled`` when set, else whether ``[dataverse]`` was configured (in the file or the environment)
with a credential. :func:`build_dataverse_flow` wires the parts: a Dataverse client (msal token,
the deployment's shared throttle), the key registry, the applied digests, the creator, the
deletion handler and the ``$batch`` buffer its account reads and write-backs share, around the
legacy :class:`CustomerFlow` whose S/4 and IDoc paths it reuses. :class:`DataverseFlowParts`
closes what it opened.
"""

from __future__ import annotations

from dataclasses import dataclass

from d365sap.config import Settings
from d365sap.connectors.dataverse import DataverseClient
from d365sap.connectors.dataverse_setup import dataverse_client, token_provider
from d365sap.connectors.dataverse_token import MsalTokenProvider
from d365sap.connectors.idoc import IdocClient
from d365sap.connectors.s4_odata import S4ODataClient
from d365sap.engine.store import MessageStore
from d365sap.engine.throttle import SharedThrottle, ThrottleLimits
from d365sap.engine.xref import KeyRegistry
from d365sap.flows.customer import CustomerFlow
from d365sap.flows.customer_creation import CreationSettings, CustomerCreator
from d365sap.flows.dataverse_assembly import AccountReader
from d365sap.flows.dataverse_customer import DataverseCustomerFlow, DataverseFlowOptions
from d365sap.flows.dataverse_deletes import DeletionHandler
from d365sap.flows.dataverse_sync import RecordSyncer
from d365sap.flows.sync_state import AppliedDigests
from d365sap.flows.writeback import WriteBackBuffer, WriteBackPlanner

THROTTLE_NAME = "dataverse"


def dataverse_flow_enabled(settings: Settings) -> bool:
    """Whether the native customer flow runs in this service (see the module docstring).

    Unset ``enabled`` means: when ``[dataverse]`` is configured and a credential is there (a
    secret or a certificate key), so a configuration that only names the environment (like the
    shipped example without its secret variable) still starts. ``enabled = true`` insists, and a
    missing credential is then a configuration error naming the field.
    """
    enabled = settings.dataverse_flow.enabled
    if enabled is not None:
        return enabled
    if "dataverse" not in settings.model_fields_set:
        return False
    dataverse = settings.dataverse
    try:
        return dataverse.private_key_file is not None or dataverse.secret() is not None
    except OSError:
        return True  # a credential is configured but unreadable: building the flow names it


@dataclass
class DataverseFlowParts:
    """The flow and what it owns (closed by :meth:`aclose`)."""

    flow: DataverseCustomerFlow
    client: DataverseClient
    tokens: MsalTokenProvider
    write_back: WriteBackBuffer
    registry: KeyRegistry

    async def aclose(self) -> None:
        """Stop the write-back, close the connection pool and msal's session."""
        await self.write_back.close()
        await self.client.aclose()
        self.tokens.close()


def build_dataverse_flow(
    settings: Settings,
    *,
    store: MessageStore,
    s4: S4ODataClient,
    erp: IdocClient,
    customers: CustomerFlow,
    tokens: MsalTokenProvider | None = None,
) -> DataverseFlowParts:
    """The native customer flow wired from ``settings`` (no request is sent yet)."""
    provider = tokens or token_provider(settings.dataverse)
    limits = settings.dataverse.throttle
    throttle = SharedThrottle(
        store, THROTTLE_NAME, ThrottleLimits(**limits.model_dump(exclude={"max_retries"}))
    )
    client = dataverse_client(settings.dataverse, provider, throttle=throttle)
    flow_settings = settings.dataverse_flow
    columns = flow_settings.write_back
    detail_columns = [
        columns.customer_number_column,
        columns.status_column,
        columns.error_column,
    ]
    erp_columns = [columns.status_column, columns.error_column]
    registry = KeyRegistry(store)
    applied = AppliedDigests(store)
    creator = CustomerCreator(
        store=store,
        registry=registry,
        s4=s4,
        erp=erp,
        settings=CreationSettings(
            s4=settings.s4.create,
            erp=settings.erp.create,
            idoc_control=settings.erp.control,
            send_tax_row=settings.s4.send_tax_row,
        ),
    )
    write_back = WriteBackBuffer(
        client,
        batch_size=columns.batch_size or settings.dataverse.batch_size,
        linger_seconds=columns.linger_seconds,
    )
    flow = DataverseCustomerFlow(
        store=store,
        reader=AccountReader(
            client,
            write_back_columns=[name for name in detail_columns if name],
            erp_account_write_back_columns=[name for name in erp_columns if name],
            buffer=write_back if flow_settings.batch_reads else None,
            org_cache_seconds=flow_settings.org_cache_seconds,
        ),
        syncer=RecordSyncer(
            store=store, registry=registry, applied=applied, customers=customers, creator=creator
        ),
        deletions=DeletionHandler(
            store=store,
            registry=registry,
            applied=applied,
            customers=customers,
            s4=s4,
            on_delete=flow_settings.on_delete,
        ),
        planner=WriteBackPlanner(columns),
        write_back=write_back,
        options=DataverseFlowOptions(
            max_attempts=settings.runtime.retry.max_attempts,
            discard_status=settings.inbound.discard_status,
        ),
    )
    return DataverseFlowParts(flow, client, provider, write_back, registry)

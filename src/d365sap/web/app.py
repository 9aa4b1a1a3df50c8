"""The service's FastAPI application: inbound endpoints, the message API and health.

The lifespan builds everything from the settings: the store (migrated), the back-end clients,
the flows and the processor; they live on ``app.state`` and are closed on shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from d365sap import __version__
from d365sap.config import Settings
from d365sap.connectors.idoc import IdocClient
from d365sap.connectors.s4_odata import S4ODataClient
from d365sap.engine.processor import Processor
from d365sap.engine.store import MessageStore
from d365sap.engine.types import Flow
from d365sap.flows.customer import CustomerFlow, CustomerFlowOptions
from d365sap.mapping.pii import mask_payload
from d365sap.mapping.s4_sales_area import S4MappingOptions
from d365sap.web import api, inbound
from d365sap.web.auth import BasicAuthenticator


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


def create_app(settings: Settings, *, store: MessageStore | None = None) -> FastAPI:
    """Build the service app; ``store`` may be shared with the caller (tests, the demo)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own_store = store is None
        message_store = store or MessageStore.open(
            settings.store.url, masker=mask_payload if settings.store.mask_pii else None
        )
        s4 = s4_client(settings)
        erp = idoc_client(settings)
        flows: dict[str, Flow] = {
            "customer": CustomerFlow(s4=s4, erp=erp, options=customer_flow_options(settings))
        }
        app.state.settings = settings
        app.state.store = message_store
        app.state.authenticator = BasicAuthenticator(settings.inbound)
        app.state.processor = Processor(
            message_store, flows, log_payloads=settings.store.log_payloads
        )
        try:
            yield
        finally:
            await s4.aclose()
            await erp.aclose()
            if own_store:
                message_store.close()

    app = FastAPI(title="d365sap", version=__version__, lifespan=lifespan)
    app.include_router(inbound.router)
    app.include_router(api.router)

    @app.get("/health", include_in_schema=False)
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    return app

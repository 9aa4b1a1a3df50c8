"""The SAP ERP (ECC) emulator as a FastAPI application.

It speaks the IDoc-XML inbound interface of an ECC (SOAP ``/sap/bc/srt/idoc`` and plain
``/sap/bc/idoc_xml``) strictly: DEBMAS07 schema, partner profile, logon client, basic auth, size
limit; it posts accepted IDocs to an in-memory customer master seeded from JSON (creating customers
in configured account groups), reports IDoc status through ``IDOC_READ_COMPLETELY`` as a SOAP
service, and shows all of it under ``/emulator`` (injected faults: ``/emulator/faults``). Build
one with :func:`create_app` and serve it with uvicorn.
"""

from __future__ import annotations

from fastapi import FastAPI

from d365sap.emulators.erp.admin import admin_router
from d365sap.emulators.erp.inbound import InboundService, inbound_router
from d365sap.emulators.erp.middleware import FaultInjectionMiddleware, is_idoc_endpoint
from d365sap.emulators.erp.schema import load_schema
from d365sap.emulators.erp.state import ErpState
from d365sap.emulators.erp.status_service import status_router
from d365sap.emulators.faults_admin import fault_router
from d365sap.emulators.faults_asgi import FaultAwareFastAPI
from d365sap.emulators.settings import ErpEmulatorSettings


def create_app(settings: ErpEmulatorSettings) -> FastAPI:
    """A fresh emulator with its own state; raises ConfigError for an unusable seed file."""
    schema = load_schema()
    state = ErpState(settings, schema, idoc_endpoint=is_idoc_endpoint)
    app = FaultAwareFastAPI(
        title="SAP ERP (ECC) IDoc emulator",
        description="DEBMAS07 IDoc-XML inbound with an in-memory customer master",
        version="1",
    )
    app.state.erp = state
    app.include_router(inbound_router(InboundService(settings, schema, state)))
    app.include_router(status_router(state, settings))
    app.include_router(admin_router(state, settings))
    app.include_router(fault_router(state.faults))
    app.add_middleware(FaultInjectionMiddleware, controller=state.faults)
    return app

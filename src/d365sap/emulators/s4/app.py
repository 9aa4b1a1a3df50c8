"""The S/4HANA Cloud emulator as an ASGI app: OData v2 services, a SOAP service, admin routes.

Public entry point: :func:`create_app`. The OData services live under
``/sap/opu/odata/sap/<service>/`` (API_BUSINESS_PARTNER; read-only API_SALES_ORDER_SRV and
API_PRODUCT_SRV) and answer JSON only (``$format=json`` or any
``Accept``; Atom XML is not implemented, asking for it with ``$format`` gives SAP's error body
with 415). The SOAP service SalesOrderBulkRequest_In is at
``/sap/bc/srt/scs_ext/sap/salesorderbulkrequest_in`` (``sales_orders``). Admin routes are under
``/emulator/`` (see ``admin``, ``sales_orders.admin``; faults: ``faults_admin``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from d365sap.emulators.faults_admin import fault_router
from d365sap.emulators.faults_asgi import FaultAwareFastAPI
from d365sap.emulators.s4 import errors
from d365sap.emulators.s4.admin import admin_router
from d365sap.emulators.s4.fault_injection import S4FaultMiddleware
from d365sap.emulators.s4.gate import BODY_KEY, METHOD_KEY, USER_KEY, ODataGate
from d365sap.emulators.s4.hosting import ODataHost
from d365sap.emulators.s4.messages import ODataRequest, ODataResponse
from d365sap.emulators.s4.sales_orders.admin import sales_order_router
from d365sap.emulators.s4.sales_orders.endpoint import SOAP_PATH
from d365sap.emulators.s4.state import EmulatorState
from d365sap.emulators.settings import S4EmulatorSettings

log = logging.getLogger(__name__)
ODATA_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "MERGE", "DELETE"]
SOAP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def _odata_endpoint(host: ODataHost) -> Callable[[Request], Awaitable[Response]]:
    root = host.root.rstrip("/")

    async def odata(request: Request) -> Response:
        scope = request.scope
        raw_path = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        operation = ODataRequest(
            method=scope[METHOD_KEY],
            path=raw_path[len(root) :].lstrip("/"),
            query=scope.get("query_string", b"").decode("latin-1"),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=scope[BODY_KEY],
            service_root=f"{request.url.scheme}://{request.url.netloc}{host.root}",
            user=scope[USER_KEY],
        )
        try:
            reply = host.service.handle(operation)
        except Exception:
            log.exception("S/4 emulator failed on %s %s", operation.method, operation.path)
            failure = errors.ODataError(
                500, errors.INTERNAL_ERROR, "Internal error in the S/4HANA Cloud emulator"
            )
            reply = ODataResponse.error(failure, application=host.service.application)
        headers = dict(reply.headers)
        headers.setdefault("dataserviceversion", "2.0")
        if operation.method in ("GET", "HEAD"):
            headers.setdefault("cache-control", "no-store, no-cache")
        return Response(reply.body, status_code=reply.status, headers=headers)

    return odata


def create_app(settings: S4EmulatorSettings) -> FastAPI:
    """A fresh emulator: parsed EDMX (cached per process), seeded data, empty journal.

    The sales order worker and confirmation sender run with the app's lifespan.
    """
    state = EmulatorState(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with state.sales_orders.inbound.running():
            yield

    app = FaultAwareFastAPI(
        title="S/4HANA Cloud emulator",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.s4 = state
    app.include_router(admin_router(state))
    app.include_router(fault_router(state.faults))
    app.include_router(sales_order_router(state.sales_orders))
    app.add_route(SOAP_PATH, state.sales_orders.endpoint.handle, methods=SOAP_METHODS)
    for host in state.hosts.values():
        endpoint = _odata_endpoint(host)
        app.add_route(host.root.rstrip("/"), endpoint, methods=ODATA_METHODS)
        app.add_route(host.root + "{rest:path}", endpoint, methods=ODATA_METHODS)
    app.add_middleware(ODataGate, state=state)
    app.add_middleware(S4FaultMiddleware, controller=state.faults)  # outermost: before the gate
    return app

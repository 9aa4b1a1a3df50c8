"""The Dataverse emulator as an ASGI app: Entra ID token endpoint, Web API v9.2, admin routes.

Public entry point: :func:`create_app`. Routes:

- the tenant's token endpoint and discovery at the root (``/{tenant}/oauth2/v2.0/token``,
  ``identity``), and ``/emulator/identity/...`` to list and expire tokens;
- the Web API under ``/api/data/v9.2/``: every request needs a bearer token of the tenant for
  the environment URL (401 with the ``WWW-Authenticate`` challenge otherwise), bodies are
  limited to ``max_body_bytes`` (413 in Dataverse's error format);
- ``/emulator/*``: health, reset, seed, rows (``admin``), faults (``faults_admin``), service
  protection usage (``/emulator/limits``) and webhooks (``/emulator/webhooks``).

Every authenticated Web API request counts against its user's service protection limits (429
with ``Retry-After`` beyond them); webhook deliveries run on the app's event loop between
start-up and shut-down.

Served over TLS by ``d365sap emulators`` (certificate from :func:`d365sap.emulators.tls.
ensure_tls`), so msal and the connector talk to it unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response

from d365sap.emulators.dataverse import errors
from d365sap.emulators.dataverse.admin import admin_router
from d365sap.emulators.dataverse.environment import API_ROOT, DataverseEnvironment
from d365sap.emulators.dataverse.fault_injection import DataverseFaultMiddleware
from d365sap.emulators.dataverse.identity import TokenRejected
from d365sap.emulators.dataverse.messages import Caller, WebApiRequest, WebApiResponse
from d365sap.emulators.dataverse.protection import ThrottledError, limits_router
from d365sap.emulators.dataverse.webhooks import webhook_router
from d365sap.emulators.faults import FaultKind
from d365sap.emulators.faults_admin import fault_router
from d365sap.emulators.faults_asgi import FAULT_KEY, FaultAwareFastAPI
from d365sap.emulators.settings import DataverseEmulatorSettings

log = logging.getLogger(__name__)
WEB_API_METHODS = ["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"]


class BodyTooLargeError(Exception):
    """The request body passed the configured limit."""


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or :class:`BodyTooLargeError` as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


def _send(reply: WebApiResponse) -> Response:
    return Response(reply.body, status_code=reply.status, headers=reply.headers)


def web_api_path(request: Request) -> str:
    """The request path below ``/api/data/v9.2/``, still percent-encoded."""
    scope = request.scope
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
    raw = raw_path.decode("latin-1").partition("?")[0]
    return raw[len(API_ROOT) :].lstrip("/")


def _web_api(environment: DataverseEnvironment) -> Callable[[Request], Awaitable[Response]]:
    settings = environment.settings

    async def web_api(request: Request) -> Response:
        try:
            caller = environment.issuer.verify(request.headers.get("authorization"))
        except TokenRejected as rejected:
            return _send(rejected.response())
        try:
            admission = environment.protection.enter(caller)
        except ThrottledError as refused:
            return _send(refused.response())
        try:
            reply = await answer(request, caller)
        finally:
            environment.protection.leave(admission)
        reply.headers.update(admission.headers())
        return _send(reply)

    async def answer(request: Request, caller: Caller) -> WebApiResponse:
        try:
            body = await read_body(request, settings.max_body_bytes)
        except BodyTooLargeError:
            return errors.too_large(settings.max_body_bytes).response()
        path = web_api_path(request)
        if request.scope.get(FAULT_KEY) is FaultKind.ETAG_CHANGE:
            environment.change_row(path)
        operation = WebApiRequest(
            method=request.method,
            path=path,
            query=request.scope.get("query_string", b"").decode("latin-1"),
            headers={name.lower(): value for name, value in request.headers.items()},
            body=body,
            service_root=f"{request.url.scheme}://{request.url.netloc}{API_ROOT}/",
            caller=caller,
        )
        try:
            reply = environment.service.handle(operation)
        except Exception:
            log.exception("Dataverse emulator failed on %s %s", operation.method, path)
            reply = WebApiResponse.error(500, "0x80040216", "An unexpected error occurred.")
        return reply

    return web_api


def create_app(settings: DataverseEmulatorSettings) -> FastAPI:
    """A fresh environment: seeded rows, a new signing key, no faults but the configured ones."""
    environment = DataverseEnvironment(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with environment.deliveries.running():
            yield

    app = FaultAwareFastAPI(
        title="Dataverse emulator (Web API v9.2)",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.dataverse = environment
    app.include_router(environment.issuer.router())
    app.include_router(environment.issuer.admin_router())
    app.include_router(admin_router(environment))
    app.include_router(fault_router(environment.faults))
    app.include_router(limits_router(environment.protection))
    app.include_router(webhook_router(environment.webhooks, environment.deliveries))
    endpoint = _web_api(environment)
    app.add_route(API_ROOT, endpoint, methods=WEB_API_METHODS)
    app.add_route(API_ROOT + "/{rest:path}", endpoint, methods=WEB_API_METHODS)
    app.add_middleware(DataverseFaultMiddleware, controller=environment.faults)
    return app

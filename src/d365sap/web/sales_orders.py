"""The sales order endpoints: the package's push address, S/4's confirmations, order webhooks.

``POST /http/SalesOrder_CRM_S4HC`` (also without ``/http``) is the sender address of SAP's
package (SEED-SPEC §6.3): a Dynamics order with its lines and ``erpsystemtype``, as JSON or XML
(:mod:`d365sap.mapping.sales_order_source`), HTTP basic authentication of an ``[inbound]`` user
with ``ESBMessaging.send``. The body is checked before anything is stored: a broken order is
answered 400 naming the member. A valid one is stored and queued, then the caller waits (as on
the customer endpoint) for ``sent`` (S/4 acknowledged the order: 202), ``discarded`` (not S4HC),
or an error; ``Prefer: respond-async`` answers at once.

``POST /sap/SalesOrderConfirmation`` receives S/4's ``SalesOrderBulkConfirmation`` (SOAP 1.1 or
1.2, or bare XML), authenticated as an ``[inbound]`` user holding
``[sales_orders.confirmation] role``. The confirmation is checked, stored as a message of the
confirmation flow (deduplicated by its ``MessageHeader/ID``) and answered 202; the write-back to
Dynamics happens when the message is processed.

:func:`receive_order_context` takes the Dataverse webhook's contexts about ``salesorder`` rows,
handed over by ``POST /webhooks/dataverse`` after its own authentication and body checks.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from d365sap.config import Settings
from d365sap.engine.views import FINAL_STATUSES
from d365sap.errors import ValidationError
from d365sap.flows.sales_order_messages import (
    CONFIRMATION_FLOW,
    FLOW_NAME,
    TRIGGER_CONTENT_TYPE,
    confirmation_source_id,
    encode,
)
from d365sap.flows.sales_order_triggers import submission_from_context, webhook_source_id
from d365sap.mapping.sales_order_confirmation import parse_confirmation
from d365sap.mapping.sales_order_source import is_json, parse_order
from d365sap.service import Service
from d365sap.web.auth import BasicAuthenticator, refusal
from d365sap.web.body import BodyTooLargeError, read_limited
from d365sap.web.errors import error_response
from d365sap.web.inbound import answer, status_url

ORDER_PATHS = ("/http/SalesOrder_CRM_S4HC", "/SalesOrder_CRM_S4HC")
CONFIRMATION_PATH = "/sap/SalesOrderConfirmation"
SOURCE_ID_HEADERS = ("sapmessageid", "x-message-id")
XML_TYPES = ("application/xml", "text/xml", "application/soap+xml")

router = APIRouter()


def _media(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _is_xml(content_type: str | None) -> bool:
    media = _media(content_type)
    return media in XML_TYPES or media.endswith("+xml")


def _source_id(request: Request) -> str | None:
    for header in SOURCE_ID_HEADERS:
        value = request.headers.get(header)
        if value and value.strip():
            return value.strip()[:200]
    return None


def _unavailable(service: Service, flow: str) -> JSONResponse | None:
    if flow in service.flows:
        return None
    return error_response(
        503,
        "Unavailable",
        f"the flow {flow!r} is not available in this service ([sales_orders] enabled)",
        field="flow",
    )


async def receive_order(request: Request) -> Response:
    """Authenticate, bound, check and persist one pushed order; answer with its outcome."""
    state = request.app.state
    settings: Settings = state.settings
    authenticator: BasicAuthenticator = state.authenticator
    denied = authenticator.check(request.headers.get("authorization"))
    if denied is not None:
        return refusal(denied)
    content_type = request.headers.get("content-type")
    if not (is_json(content_type) or _is_xml(content_type)):
        return error_response(
            415,
            "UnsupportedMediaType",
            f"expected application/json or an XML body, got {content_type!r}",
            field="Content-Type",
        )
    try:
        payload = await read_limited(request, settings.inbound.max_body_bytes)
    except BodyTooLargeError as exc:
        return error_response(413, "PayloadTooLarge", str(exc), field="body")
    try:
        parse_order(payload, content_type)
    except ValidationError as exc:
        return error_response(400, "ValidationError", exc.reason, field=exc.field)
    service: Service = state.service
    missing = _unavailable(service, FLOW_NAME)
    if missing is not None:
        return missing
    correlation_id = request.headers.get("x-correlation-id") or uuid.uuid4().hex
    respond_async = settings.runtime.respond_async or "respond-async" in (
        request.headers.get("prefer", "").lower()
    )
    submitted = await service.intake.submit(
        FLOW_NAME,
        payload,
        content_type=_media(content_type) or "application/xml",
        correlation_id=correlation_id,
        source_id=_source_id(request),
    )
    message = submitted.message
    if not respond_async and message.status not in FINAL_STATUSES:
        waited = await service.waiters.wait(message.id, settings.runtime.sync_wait_seconds)
        message = waited or message
    return answer(message, duplicate=submitted.duplicate, respond_async=respond_async)


def _confirmation_authenticator(request: Request) -> BasicAuthenticator:
    state = request.app.state
    existing = getattr(state, "confirmation_authenticator", None)
    if isinstance(existing, BasicAuthenticator):
        return existing
    settings: Settings = state.settings
    role = settings.sales_orders.confirmation.role
    created = BasicAuthenticator(settings.inbound.model_copy(update={"required_role": role}))
    state.confirmation_authenticator = created
    return created


async def receive_confirmation(request: Request) -> Response:
    """Authenticate, bound, check and store one of S/4's confirmations; 202 once stored."""
    settings: Settings = request.app.state.settings
    denied = _confirmation_authenticator(request).check(request.headers.get("authorization"))
    if denied is not None:
        return refusal(denied)
    content_type = request.headers.get("content-type")
    if not _is_xml(content_type):
        return error_response(
            415,
            "UnsupportedMediaType",
            f"expected a SOAP or XML body, got {content_type!r}",
            field="Content-Type",
        )
    limit = settings.sales_orders.confirmation.max_body_kb * 1024
    try:
        payload = await read_limited(request, limit)
    except BodyTooLargeError as exc:
        return error_response(413, "PayloadTooLarge", str(exc), field="body")
    try:
        confirmation = parse_confirmation(payload)
    except ValidationError as exc:
        return error_response(400, "ValidationError", exc.reason, field=exc.field)
    service: Service = request.app.state.service
    missing = _unavailable(service, CONFIRMATION_FLOW)
    if missing is not None:
        return missing
    source_id = (
        confirmation_source_id(confirmation.confirmation_id)
        if confirmation.confirmation_id
        else None
    )
    submitted = await service.intake.submit(
        CONFIRMATION_FLOW,
        payload,
        content_type=_media(content_type),
        correlation_id=request.headers.get("x-correlation-id") or uuid.uuid4().hex,
        source_id=source_id,
    )
    message = submitted.message
    body: dict[str, Any] = {
        "outcome": "accepted",
        "status": message.status,
        "message_id": message.id,
        "status_url": status_url(message.id),
        "duplicate": submitted.duplicate,
        "order_id": confirmation.order_id,
        "sales_order": confirmation.sales_order,
    }
    return JSONResponse(body, status_code=202, headers={"X-Message-Id": message.id})


async def receive_order_context(request: Request, document: dict[str, Any]) -> JSONResponse:
    """A Dataverse webhook context about an order: store a submission, or say why none."""
    try:
        submission = submission_from_context(
            document, request_id=request.headers.get("x-request-id")
        )
    except ValidationError as exc:
        return error_response(400, "ValidationError", exc.reason, field=exc.field)
    described = {
        "table": "salesorder",
        "id": str(submission.order_id),
        "request_id": submission.request_id,
    }
    if submission.submitted is None:
        return JSONResponse(
            {"outcome": "ignored", "reason": submission.reason, **described}, status_code=200
        )
    service: Service = request.app.state.service
    missing = _unavailable(service, FLOW_NAME)
    if missing is not None:
        return missing
    submitted = await service.intake.submit(
        FLOW_NAME,
        encode(submission.submitted),
        content_type=TRIGGER_CONTENT_TYPE,
        correlation_id=submission.correlation_id
        or request.headers.get("x-ms-correlation-request-id")
        or uuid.uuid4().hex,
        source_id=webhook_source_id(submission),
    )
    message = submitted.message
    body = {
        "outcome": "accepted",
        "status": message.status,
        "message_id": message.id,
        "correlation_id": message.correlation_id,
        "status_url": status_url(message.id),
        "duplicate": submitted.duplicate,
        **described,
    }
    headers = {"X-Message-Id": message.id, "Location": status_url(message.id)}
    return JSONResponse(body, status_code=200 if submitted.duplicate else 202, headers=headers)


for _path in ORDER_PATHS:
    router.add_api_route(_path, receive_order, methods=["POST"])
router.add_api_route(CONFIRMATION_PATH, receive_confirmation, methods=["POST"])

"""The package-compatible inbound endpoint for customer messages.

``POST /http/CustomerSalesData_CRM_to_S4HC_ERP`` is the address SAP's package publishes, so a
Dynamics side built for it only changes the host (``/CustomerSalesData_CRM_to_S4HC_ERP`` works
too). The body is XML (``erpaccountdetails`` or ``erpaccounts``). The message is stored and queued
before anything else happens; by default the caller then waits (up to ``runtime.sync_wait_seconds``)
for the outcome and gets the uniform JSON result. With ``Prefer: respond-async`` (or
``runtime.respond_async``), or when the wait runs out, the answer is 202 with the message id and
a status URL.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from d365sap.engine.views import DONE, FINAL_STATUSES, SUPERSEDED, MessageView
from d365sap.service import Service
from d365sap.web.auth import BasicAuthenticator, refusal
from d365sap.web.body import BodyTooLargeError, read_limited
from d365sap.web.errors import error_response

CUSTOMER_PATHS = ("/http/CustomerSalesData_CRM_to_S4HC_ERP", "/CustomerSalesData_CRM_to_S4HC_ERP")
XML_TYPES = ("application/xml", "text/xml")
SOURCE_ID_HEADERS = ("sapmessageid", "x-message-id")

router = APIRouter()


def _is_xml(content_type: str | None) -> bool:
    if not content_type:
        return True  # the package accepted untyped bodies; the parser decides
    media = content_type.split(";", 1)[0].strip().lower()
    return media in XML_TYPES or media.endswith("+xml")


def _source_id(request: Request) -> str | None:
    for header in SOURCE_ID_HEADERS:
        value = request.headers.get(header)
        if value and value.strip():
            return value.strip()[:200]
    return None


async def receive_customer(request: Request) -> Response:
    """Authenticate, bound and persist the message, process it, answer with the result."""
    state = request.app.state
    authenticator: BasicAuthenticator = state.authenticator
    failure = authenticator.check(request.headers.get("authorization"))
    if failure is not None:
        return refusal(failure)
    content_type = request.headers.get("content-type")
    if not _is_xml(content_type):
        return error_response(
            415,
            "UnsupportedMediaType",
            f"expected an XML body, got {content_type!r}",
            field="Content-Type",
        )
    try:
        payload = await read_limited(request, state.settings.inbound.max_body_bytes)
    except BodyTooLargeError as exc:
        return error_response(413, "PayloadTooLarge", str(exc), field="body")
    service: Service = state.service
    correlation_id = request.headers.get("x-correlation-id") or uuid.uuid4().hex
    respond_async = state.settings.runtime.respond_async or "respond-async" in (
        request.headers.get("prefer", "").lower()
    )
    submitted = await service.intake.submit(
        "customer",
        payload,
        content_type=content_type or "application/xml",
        correlation_id=correlation_id,
        source_id=_source_id(request),
    )
    message = submitted.message
    if not respond_async and message.status not in FINAL_STATUSES:
        waited = await service.waiters.wait(message.id, state.settings.runtime.sync_wait_seconds)
        message = waited or message
    return answer(message, duplicate=submitted.duplicate, respond_async=respond_async)


def status_url(message_id: str) -> str:
    """Where a caller can follow a message."""
    return f"/api/messages/{message_id}"


def answer(message: MessageView, *, duplicate: bool, respond_async: bool) -> JSONResponse:
    """The caller's answer for ``message`` as it stands."""
    headers = {
        "X-Message-Id": message.id,
        "X-Correlation-Id": message.correlation_id,
    }
    if respond_async:
        headers["Preference-Applied"] = "respond-async"
    if message.status in FINAL_STATUSES and message.result is not None:
        body: dict[str, Any] = dict(message.result)
        status = message.http_status or 200
    elif message.status in FINAL_STATUSES:
        # settled without a flow result: superseded by a newer message, or discarded by hand
        body = {"outcome": message.outcome or message.status, "reason": message.error}
        status = 200 if message.status in (DONE, SUPERSEDED) else 409
    else:
        body = {"outcome": "accepted", "status": message.status}
        if message.result is not None:
            body["last_attempt"] = message.result
        status = 202
        headers["Location"] = status_url(message.id)
    body.update(
        message_id=message.id,
        correlation_id=message.correlation_id,
        status_url=status_url(message.id),
        duplicate=duplicate,
    )
    return JSONResponse(body, status_code=status, headers=headers)


for _path in CUSTOMER_PATHS:
    router.add_api_route(_path, receive_customer, methods=["POST"], include_in_schema=True)

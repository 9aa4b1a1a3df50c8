"""``POST /webhooks/dataverse``: Dataverse's webhook, the fast trigger of the native customer flow.

A webhook registered in Dataverse (a service endpoint with one step per message on
``account``, ``sap_erpaccount`` or ``sap_erpaccountdetail``) posts the ``RemoteExecutionContext``
of every change. The endpoint checks the key, bounds and validates the body, turns the context
into one :class:`~d365sap.flows.dataverse_messages.DataverseChange` and stores it with its job;
then it answers, long before anything reaches SAP. Dataverse waits at most 60 s and retries
only a few times, so the answer must not depend on SAP being up.

Authentication: the key configured in ``[dataverse_triggers]``, sent the way the registration's
authentication kind sends it: ``HttpHeader`` with the header ``webhook_header`` (default
``x-d365sap-webhook-key``) or ``x-functions-key``, ``WebhookKey`` as ``?code=<key>``
(``HttpQueryString`` with a ``code`` parameter works the same).

Deduplication: Dataverse sends every attempt of one delivery with the same ``RequestId`` (also
in ``x-request-id``); it is the message's source id (``webhook:<RequestId>``), so a repeated
delivery is answered with the first message (200, ``duplicate: true``) instead of queued twice.

Answers: 202 stored and queued; 200 a repeated delivery, or an update that only echoed
d365sap's own write-back (``outcome: ignored``: nothing stored); 400 the context is invalid
(``error.field`` names the member); 401 no or a wrong key; 403 no key configured; 413 too
large; 415 not JSON; 503 the flow is not available in this service.
"""

from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from d365sap.config import Settings
from d365sap.errors import ValidationError
from d365sap.flows.dataverse_messages import CONTENT_TYPE, FLOW_NAME, encode_change
from d365sap.flows.dataverse_webhook import change_from_context
from d365sap.flows.sales_order_triggers import is_sales_order_context
from d365sap.service import Service
from d365sap.web.body import BodyTooLargeError, read_limited
from d365sap.web.errors import error_response
from d365sap.web.inbound import status_url
from d365sap.web.sales_orders import receive_order_context

WEBHOOK_PATH = "/webhooks/dataverse"
FUNCTIONS_KEY_HEADER = "x-functions-key"
CODE_PARAMETER = "code"
SOURCE_PREFIX = "webhook:"

router = APIRouter()


def _presented_keys(request: Request, header: str) -> list[str]:
    """Every key the caller sent, in any of the accepted places."""
    found = [
        request.headers.get(header),
        request.headers.get(FUNCTIONS_KEY_HEADER),
        request.query_params.get(CODE_PARAMETER),
    ]
    return [value for value in found if value]


def _auth_failure(request: Request, settings: Settings) -> JSONResponse | None:
    triggers = settings.dataverse_triggers
    expected = triggers.key()
    if expected is None:
        return error_response(
            403,
            "AuthenticationError",
            "the Dataverse webhook is not enabled: no key is configured "
            "([dataverse_triggers] webhook_key_env, webhook_key_file or "
            "D365SAP_DATAVERSE_TRIGGERS__WEBHOOK_KEY)",
            field="webhook_key",
        )
    presented = _presented_keys(request, triggers.webhook_header.lower())
    if not presented:
        return error_response(
            401,
            "AuthenticationError",
            f"webhook key required: header {triggers.webhook_header} or "
            f"{FUNCTIONS_KEY_HEADER}, or ?{CODE_PARAMETER}=",
            field=triggers.webhook_header,
        )
    # Compare every candidate, so the answer's timing does not tell which place was tried.
    matches = [secrets.compare_digest(key.encode(), expected.encode()) for key in presented]
    if not any(matches):
        return error_response(
            401, "AuthenticationError", "wrong webhook key", field=triggers.webhook_header
        )
    return None


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


async def receive_dataverse_change(request: Request) -> JSONResponse:
    """Authenticate, bound, validate and store one webhook call; answer once it is stored."""
    settings: Settings = request.app.state.settings
    denied = _auth_failure(request, settings)
    if denied is not None:
        return denied
    content_type = request.headers.get("content-type")
    if not _is_json(content_type):
        return error_response(
            415,
            "UnsupportedMediaType",
            f"expected application/json, got {content_type!r}",
            field="Content-Type",
        )
    try:
        raw = await read_limited(request, settings.dataverse_triggers.webhook_max_body_bytes)
    except BodyTooLargeError as exc:
        return error_response(413, "PayloadTooLarge", str(exc), field="body")
    try:
        document = json.loads(raw)
    except ValueError as exc:
        return error_response(400, "ValidationError", f"the body is not JSON: {exc}", field="body")
    if is_sales_order_context(document):  # orders go to the sales order flow
        return await receive_order_context(request, document)
    try:
        reported = change_from_context(document, request_id=request.headers.get("x-request-id"))
    except ValidationError as exc:
        return error_response(400, "ValidationError", exc.reason, field=exc.field)
    change = reported.change
    described: dict[str, Any] = {
        "table": change.table.value,
        "id": str(change.id),
        "change": change.change.value,
        "request_id": reported.request_id,
    }
    if reported.write_back_only:
        return JSONResponse(
            {
                "outcome": "ignored",
                "reason": "the update only set columns d365sap writes back",
                **described,
            },
            status_code=200,
        )
    service: Service = request.app.state.service
    if FLOW_NAME not in service.flows:
        return error_response(
            503,
            "Unavailable",
            f"the flow {FLOW_NAME!r} is not available in this service",
            field="flow",
        )
    correlation_id = (
        reported.correlation_id
        or request.headers.get("x-ms-correlation-request-id")
        or uuid.uuid4().hex
    )
    submitted = await service.intake.submit(
        FLOW_NAME,
        encode_change(change),
        content_type=CONTENT_TYPE,
        correlation_id=correlation_id,
        source_id=f"{SOURCE_PREFIX}{reported.request_id}",
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


router.add_api_route(WEBHOOK_PATH, receive_dataverse_change, methods=["POST"])

"""REST API over the message store: what happened to a message, recent messages, and the
operator actions on dead letters (retry, resubmit a corrected payload, discard, dry run).

Reading is open as before; the actions change what is sent to SAP, so they need HTTP basic
authentication of a configured user holding ``inbound.operator_role``. Each action answers with
what it did (200), or why it did nothing: 404 unknown message, 409 refused transition.
"""

from __future__ import annotations

import json
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from d365sap.config import Settings
from d365sap.engine.operations import (
    NOT_FOUND,
    ActionResult,
    MessageOperations,
    UnknownMessageError,
)
from d365sap.engine.store import MessageStore
from d365sap.engine.views import MessageView
from d365sap.service import Service
from d365sap.web.auth import BasicAuthenticator, refusal
from d365sap.web.body import BodyTooLargeError, read_limited
from d365sap.web.errors import error_response

router = APIRouter(prefix="/api")


def summary(message: MessageView) -> dict[str, Any]:
    """The list view of a message."""
    return {
        "id": message.id,
        "flow": message.flow,
        "status": message.status,
        "outcome": message.outcome,
        "route": message.route,
        "business_key": message.business_key,
        "http_status": message.http_status,
        "attempts": message.attempts,
        "error": message.error,
        "created_at": message.created_at.isoformat(),
        "finished_at": message.finished_at.isoformat() if message.finished_at else None,
    }


@router.get("/messages")
async def list_messages(
    request: Request, flow: str | None = None, status: str | None = None, limit: int = 50
) -> JSONResponse:
    """Newest messages first."""
    store: MessageStore = request.app.state.store
    limit = max(1, min(limit, 500))
    rows = await anyio.to_thread.run_sync(lambda: store.list(flow=flow, status=status, limit=limit))
    return JSONResponse({"messages": [summary(m) for m in rows]})


@router.get("/stats")
async def stats(request: Request) -> JSONResponse:
    """How many messages are in each status (for dashboards and load tests)."""
    store: MessageStore = request.app.state.store
    counts = await store.call(store.counts)
    return JSONResponse({"messages": counts, "total": sum(counts.values())})


@router.get("/messages/{message_id}")
async def get_message(request: Request, message_id: str) -> JSONResponse:
    """One message with its result and steps."""
    store: MessageStore = request.app.state.store
    message = await anyio.to_thread.run_sync(lambda: store.get(message_id))
    if message is None:
        return error_response(404, "NotFound", f"no message {message_id}", field="message_id")
    body = summary(message)
    body["result"] = message.result
    body["correlation_id"] = message.correlation_id
    body["steps"] = [
        {
            "attempt": s.attempt,
            "name": s.name,
            "status": s.status,
            "duration_ms": round(s.duration_ms, 3),
            "detail": s.detail,
            "backend_status": s.backend_status,
            "backend_reply": s.backend_reply,
        }
        for s in message.steps
    ]
    body["payloads"] = [
        {"stage": p.stage, "content_type": p.content_type, "body": p.body} for p in message.payloads
    ]
    body["version"] = message.version
    body["versions"] = [
        {
            "version": v.version,
            "comment": v.comment,
            "content_type": v.content_type,
            "bytes": len(v.payload),
            "created_at": v.created_at.isoformat(),
        }
        for v in message.versions
    ]
    return JSONResponse(body)


# -- operator actions -------------------------------------------------------------------------


def _operator_check(request: Request) -> JSONResponse | None:
    """``None`` when the caller holds the operator role; otherwise the 401/403 answer."""
    state = request.app.state
    authenticator: BasicAuthenticator | None = getattr(state, "operator_authenticator", None)
    if authenticator is None:
        settings: Settings = state.settings
        inbound = settings.inbound.model_copy(
            update={"required_role": settings.inbound.operator_role}
        )
        authenticator = state.operator_authenticator = BasicAuthenticator(inbound)
    failure = authenticator.check(request.headers.get("authorization"))
    if failure is None:
        return None
    return refusal(failure)


def _operations(request: Request) -> MessageOperations:
    service: Service = request.app.state.service
    return MessageOperations(service.store, service.runtime, service.flows)


def _action_answer(request: Request, result: ActionResult) -> JSONResponse:
    """200 with what changed; 404 or 409 in the error shape, with the result beside it."""
    if result.applied:
        if result.after == "queued":
            request.app.state.service.runtime.notify()
        return JSONResponse(result.to_dict())
    status, kind = (404, "NotFound") if result.refusal == NOT_FOUND else (409, "Refused")
    error = {"type": kind, "message": result.detail, "field": "message_id", "retryable": False}
    return JSONResponse(
        {"outcome": "error", "error": error, **result.to_dict()}, status_code=status
    )


async def _body(request: Request) -> bytes | JSONResponse:
    settings: Settings = request.app.state.settings
    try:
        return await read_limited(request, settings.inbound.max_body_bytes)
    except BodyTooLargeError as exc:
        return error_response(413, "PayloadTooLarge", str(exc), field="body")


@router.post("/messages/{message_id}/retry")
async def retry_message(request: Request, message_id: str, force: bool = False) -> JSONResponse:
    """Queue the message again with its current payload (``force`` for done or discarded)."""
    if (denied := _operator_check(request)) is not None:
        return denied
    ops = _operations(request)
    result = await anyio.to_thread.run_sync(lambda: ops.retry_one(message_id, force=force))
    return _action_answer(request, result)


@router.post("/messages/{message_id}/resubmit")
async def resubmit_message(
    request: Request, message_id: str, comment: str | None = None, force: bool = False
) -> JSONResponse:
    """Queue the message with the corrected payload in the body, kept as a new version."""
    if (denied := _operator_check(request)) is not None:
        return denied
    payload = await _body(request)
    if isinstance(payload, JSONResponse):
        return payload
    if not payload.strip():
        return error_response(
            400, "ValidationError", "the corrected payload is empty", field="body"
        )
    ops = _operations(request)
    result = await anyio.to_thread.run_sync(
        lambda: ops.resubmit(message_id, payload, comment=comment, force=force)
    )
    return _action_answer(request, result)


@router.post("/messages/{message_id}/discard")
async def discard_message(request: Request, message_id: str) -> JSONResponse:
    """Settle the message as discarded; body ``{"reason": "..."}``."""
    if (denied := _operator_check(request)) is not None:
        return denied
    raw = await _body(request)
    if isinstance(raw, JSONResponse):
        return raw
    try:
        document = json.loads(raw or b"{}")
    except ValueError:
        return error_response(400, "ValidationError", "expected a JSON object", field="body")
    reason = document.get("reason") if isinstance(document, dict) else None
    if not isinstance(reason, str) or not reason.strip():
        return error_response(
            400, "ValidationError", "a non-blank reason is required", field="reason"
        )
    ops = _operations(request)
    result = await anyio.to_thread.run_sync(lambda: ops.discard_one(message_id, reason))
    return _action_answer(request, result)


@router.post("/messages/{message_id}/dry-run")
async def dry_run_message(request: Request, message_id: str) -> JSONResponse:
    """What processing would do now, writing nothing: the body's payload, else the current one."""
    if (denied := _operator_check(request)) is not None:
        return denied
    payload = await _body(request)
    if isinstance(payload, JSONResponse):
        return payload
    try:
        result = await _operations(request).dry_run(
            message_id, payload if payload.strip() else None
        )
    except UnknownMessageError:
        return error_response(404, "NotFound", f"no message {message_id}", field="message_id")
    return JSONResponse(result.to_dict())

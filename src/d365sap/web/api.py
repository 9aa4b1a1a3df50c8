"""Read-only REST API over the message store: what happened to a message, and recent messages."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from d365sap.engine.store import MessageStore
from d365sap.engine.views import MessageView
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
    return JSONResponse(body)

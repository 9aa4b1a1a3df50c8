"""Accepting and processing messages: persist first, then run the flow, then record the outcome.

A message is written to the store before anything is sent anywhere, so nothing a caller handed
over can be lost without a trace. A message that carries a source id (``SapMessageId`` or
``X-Message-Id``) that was seen before is not processed again: the first message's result is
returned. The queue and retries of the durable runtime build on :meth:`Processor.process`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
import structlog

from d365sap.engine.store import FAILED, MessageStore, MessageView
from d365sap.engine.trace import Trace
from d365sap.engine.types import Flow

log = structlog.get_logger("d365sap.engine")


@dataclass(frozen=True)
class Processed:
    """What the caller gets back for one inbound message."""

    message_id: str
    http_status: int
    body: dict[str, Any]
    duplicate: bool = False


def new_correlation_id() -> str:
    """A fresh correlation id for a message that arrived without one."""
    return uuid.uuid4().hex


class Processor:
    """Runs flows over messages kept in a :class:`MessageStore`."""

    def __init__(self, store: MessageStore, flows: dict[str, Flow], *, log_payloads: bool) -> None:
        self.store = store
        self.flows = flows
        self.log_payloads = log_payloads

    async def submit(
        self,
        flow_name: str,
        payload: bytes,
        *,
        content_type: str,
        correlation_id: str,
        source_id: str | None = None,
    ) -> Processed:
        """Persist ``payload`` as a new message of ``flow_name`` and process it now."""
        message, duplicate = await anyio.to_thread.run_sync(
            lambda: self.store.accept(
                flow=flow_name,
                payload=payload,
                content_type=content_type,
                correlation_id=correlation_id,
                source_id=source_id,
            )
        )
        if duplicate:
            log.info("duplicate message", message_id=message.id, source_id=source_id)
            return self._replay(message)
        return await self.process(message.id, payload, flow_name, correlation_id)

    def _replay(self, message: MessageView) -> Processed:
        body = dict(message.result or {"outcome": message.status})
        body["duplicate"] = True
        body["message_id"] = message.id
        return Processed(
            message_id=message.id,
            http_status=message.http_status or 202,
            body=body,
            duplicate=True,
        )

    async def process(
        self, message_id: str, payload: bytes, flow_name: str, correlation_id: str
    ) -> Processed:
        """Run the flow for a stored message and record steps and outcome."""
        flow = self.flows[flow_name]
        route, business_key = flow.describe(payload)
        attempt = await anyio.to_thread.run_sync(
            lambda: self.store.start_attempt(message_id, route=route, business_key=business_key)
        )
        bound = log.bind(
            message_id=message_id,
            correlation_id=correlation_id,
            flow=flow_name,
            route=route,
            key=business_key,
            attempt=attempt,
        )
        trace = Trace(log_payloads=self.log_payloads)
        trace.snapshot("inbound", "application/xml", payload)
        try:
            output = await flow.run(payload, trace, message_id=message_id)
        except Exception as exc:
            # A bug, not a business error: record it so the message is not left half-done.
            bound.exception("flow crashed")
            crash = f"internal error: {exc.__class__.__name__}: {exc}"
            await anyio.to_thread.run_sync(
                lambda: self.store.complete(
                    message_id,
                    attempt=attempt,
                    status=FAILED,
                    outcome="error",
                    http_status=500,
                    result=None,
                    error=crash,
                    trace=trace,
                )
            )
            raise
        body = output.body()
        body["message_id"] = message_id
        body["correlation_id"] = correlation_id
        status = output.store_status()
        await anyio.to_thread.run_sync(
            lambda: self.store.complete(
                message_id,
                attempt=attempt,
                status=status,
                outcome=str(body.get("outcome")),
                http_status=output.http_status,
                result=body,
                error=output.error_text(),
                trace=trace,
            )
        )
        bound.info(
            "message processed",
            outcome=body.get("outcome"),
            http_status=output.http_status,
            steps=len(trace.steps),
        )
        return Processed(message_id=message_id, http_status=output.http_status, body=body)

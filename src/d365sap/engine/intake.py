"""Accepting messages: describe, store and enqueue in one transaction, then wake the workers.

Whatever the runtime, a message handed over by a caller is durable (stored with its job) before
the caller hears anything back; duplicates are answered with the first message. Messages that
arrive together share one transaction (group commit), each caller still waiting for its commit.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from d365sap.engine.batching import Batcher
from d365sap.engine.runtime import Runtime
from d365sap.engine.store import Arrival, MessageStore
from d365sap.engine.types import Flow
from d365sap.engine.views import MessageView

log = structlog.get_logger("d365sap.engine")


@dataclass(frozen=True)
class Submitted:
    """The stored message and whether it was a duplicate of an earlier one."""

    message: MessageView
    duplicate: bool


class Intake:
    """The way into the engine for every inbound channel."""

    def __init__(self, store: MessageStore, flows: dict[str, Flow], runtime: Runtime) -> None:
        self.store = store
        self.flows = flows
        self.runtime = runtime
        # Messages arriving together are stored in one transaction (see engine.batching).
        self._accepts: Batcher[Arrival, tuple[MessageView, bool]] = Batcher(self._accept_all)

    async def _accept_all(self, arrivals: list[Arrival]) -> list[tuple[MessageView, bool]]:
        return await self.store.call(lambda: self.store.accept_many(arrivals, self.runtime))

    async def submit(
        self,
        flow_name: str,
        payload: bytes,
        *,
        content_type: str,
        correlation_id: str,
        source_id: str | None = None,
    ) -> Submitted:
        """Persist and enqueue ``payload`` for ``flow_name``; nothing is sent yet."""
        description = self.flows[flow_name].describe(payload)
        arrival = Arrival(
            flow=flow_name,
            payload=payload,
            content_type=content_type,
            correlation_id=correlation_id,
            source_id=source_id,
            route=description.route,
            business_key=description.business_key,
            queue=description.queue,
        )
        message, duplicate = await self._accepts.submit(arrival)
        if duplicate:
            log.info("duplicate message", message_id=message.id, source_id=source_id)
        else:
            self.runtime.notify()
            log.info(
                "message accepted",
                message_id=message.id,
                correlation_id=correlation_id,
                flow=flow_name,
                route=description.route,
                key=description.business_key,
                seq=message.seq,
            )
        return Submitted(message=message, duplicate=duplicate)

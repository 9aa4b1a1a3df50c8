"""Processing one stored message: the worker side of every runtime.

For a message taken from the queue the processor checks it is still open and not overtaken by a
newer message of the same record, runs its flow, and records the attempt. A transient failure is
scheduled for another attempt (exponential back-off, ``Retry-After`` honoured) until the attempts
are used up; a permanent one is parked as failed with the back end's message. The decision goes
back to the runtime, which keeps or drops the job.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

import structlog

from d365sap.engine.attempts import Started
from d365sap.engine.batching import Batcher
from d365sap.engine.retry import RetryPolicy
from d365sap.engine.runtime import FINISHED, DbHandle, Decision
from d365sap.engine.store import BatchHook, MessageStore, Outcome, Settlement
from d365sap.engine.trace import Trace
from d365sap.engine.types import Flow
from d365sap.engine.views import FAILED, RETRYING, MessageView

log = structlog.get_logger("d365sap.engine")

Listener = Callable[[str, MessageView | None], None]
SettleHook = Callable[[DbHandle, Decision], None]


class Processor:
    """Runs flows over messages kept in a :class:`MessageStore`."""

    def __init__(
        self,
        store: MessageStore,
        flows: dict[str, Flow],
        *,
        retry: RetryPolicy,
        log_payloads: bool = False,
    ) -> None:
        self.store = store
        self.flows = flows
        self.retry = retry
        self.log_payloads = log_payloads
        self._listeners: list[Listener] = []
        self._batch_hooks: list[BatchHook] = []
        # Attempts that end together are recorded in one transaction (see engine.batching).
        self._settlements: Batcher[Settlement, Exception | None] = Batcher(self._record_all)

    async def _record_all(self, settlements: list[Settlement]) -> list[Exception | None]:
        hooks = self._batch_hooks
        return await self.store.call(lambda: self.store.settle_many(settlements, hooks))

    def on_settle_batch(self, hook: BatchHook) -> None:
        """Run ``hook(session, settlements)`` in every transaction that records attempts.

        A runtime with its jobs in the store's database ends them there, several per statement.
        """
        self._batch_hooks.append(hook)

    async def _record(self, settlement: Settlement) -> None:
        """Record one attempt; returns once it is committed."""
        failure = await self._settlements.submit(settlement)
        if failure is not None:
            raise failure

    def on_settled(self, listener: Listener) -> None:
        """Call ``listener(message_id, view)`` whenever an attempt has been recorded.

        ``view`` is the message as recorded (``None`` when the attempt was skipped).
        """
        self._listeners.append(listener)

    def _settled(self, message_id: str, view: MessageView | None = None) -> None:
        for listener in self._listeners:
            listener(message_id, view)

    async def process(
        self,
        message_id: str,
        *,
        on_settle: SettleHook | None = None,
        started: Started | None = None,
    ) -> Decision:
        """Process the message once; tell the runtime whether to keep its job for a retry.

        ``on_settle`` runs inside the transaction that records the attempt, with the decision,
        so a runtime with its queue in the same database settles job and message together.
        ``started`` is the attempt when the runtime already began it while claiming the job.
        """
        if started is None:
            started = await self.store.call(lambda: self.store.begin_attempt(message_id))
        if isinstance(started, str):
            log.info("message skipped", message_id=message_id, reason=started)
            self._settled(message_id)
            return FINISHED
        message, attempt = started
        bound = log.bind(
            message_id=message_id,
            correlation_id=message.correlation_id,
            flow=message.flow,
            route=message.route,
            key=message.business_key,
            attempt=attempt,
        )
        flow = self.flows[message.flow]

        def settlement(outcome: Outcome, decision: Decision) -> Settlement:
            hook = _bind(on_settle, decision)
            return Settlement(
                message_id,
                attempt,
                outcome,
                trace,
                decision.run_at,
                hook,
                message.lock_key,
                message.seq,
            )

        trace = Trace(log_payloads=self.log_payloads, attempt=attempt, version=message.version)
        trace.snapshot("inbound", message.content_type, message.payload)
        try:
            output = await flow.run(message.payload, trace, message_id=message_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A bug, not a business error: park the message so it is not lost half-done.
            bound.exception("flow crashed")
            outcome = Outcome(
                status=FAILED,
                outcome="error",
                http_status=500,
                result=None,
                error=f"internal error: {exc.__class__.__name__}: {exc}",
            )
            await self._record(settlement(outcome, FINISHED))
            self._settled(message_id)
            return FINISHED
        body = output.body()
        body["message_id"] = message_id
        body["correlation_id"] = message.correlation_id
        retryable, retry_after = output.retry_hint()
        next_run = self.retry.next_run(attempt, retry_after) if retryable else None
        if next_run is not None:
            body["status"] = "retrying"
            body["next_attempt_at"] = next_run.isoformat()
        outcome = Outcome(
            status=output.store_status(),
            outcome=str(body.get("outcome")),
            http_status=output.http_status,
            result=body,
            error=output.error_text(),
        )
        decision = Decision("retry", next_run) if next_run is not None else FINISHED
        await self._record(settlement(outcome, decision))
        bound.info(
            "message attempt recorded",
            outcome=outcome.outcome,
            status="retrying" if next_run else outcome.status,
            http_status=output.http_status,
            steps=len(trace.steps),
        )
        self._settled(
            message_id,
            replace(
                message,
                status=RETRYING if next_run is not None else outcome.status,
                outcome=outcome.outcome,
                http_status=outcome.http_status,
                result=body,
                error=outcome.error,
                next_attempt_at=next_run,
            ),
        )
        return decision


def _bind(hook: SettleHook | None, decision: Decision) -> Callable[[DbHandle], None] | None:
    if hook is None:
        return None
    return lambda session: hook(session, decision)

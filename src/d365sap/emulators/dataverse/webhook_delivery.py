"""Asynchronous webhook delivery: a queue, a few workers, retries with back-off, a delivery log.

Dataverse runs webhook steps registered as asynchronous after the operation committed, so the
client's Web API request never waits for a receiver. The emulator does the same: the store's
listener only builds the context (once, so every retry posts the same body with the same
``RequestId``) and queues it; workers on the app's event loop post it with httpx. A non-2xx
answer, a timeout or a connection error is retried after a growing wait, up to
``webhooks.retries`` times (Dataverse itself retries once, and only 502/503/504: set
``retry_on = "gateway_errors"`` and ``retries = 1`` for exactly that). The log keeps every
delivery with its attempts for ``GET /emulator/webhooks/deliveries``.

The listener may be called from any thread; deliveries that arrive before :meth:`start` wait
and go out once the worker runs. The workers live and die with the app (its lifespan).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx2

from d365sap.emulators.dataverse.events import RowChange
from d365sap.emulators.dataverse.remote_context import (
    ContextBuilder,
    ContextSchema,
    Invocation,
    Organization,
    serialize,
)
from d365sap.emulators.dataverse.webhooks import (
    MASK,
    AuthKind,
    Registered,
    WebhookRegistry,
    WebhookSettings,
)
from d365sap.emulators.loop_inbox import LoopInbox

log = logging.getLogger(__name__)

DeliveryStatus = Literal["pending", "delivering", "retrying", "succeeded", "failed"]
UNDER_WAY = frozenset({"pending", "delivering", "retrying"})
GATEWAY_ERRORS = frozenset({502, 503, 504})


@dataclass
class Attempt:
    """One POST of a delivery."""

    number: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float


@dataclass
class Delivery:
    """One context for one registration, from queueing to success or giving up."""

    id: str
    registration_id: str
    registration_name: str
    table: str
    message: str
    row_id: str
    url: str
    target: str
    headers: dict[str, str]
    secret_headers: frozenset[str]
    body: bytes
    request_id: str
    correlation_id: str
    size_exceeded: bool
    created_at: datetime
    status: DeliveryStatus = "pending"
    attempts: list[Attempt] = field(default_factory=list)
    next_attempt_at: datetime | None = None
    completed_at: datetime | None = None

    def view(self, *, full: bool = False) -> dict[str, Any]:
        """The log entry; ``full`` adds the headers (secrets masked) and the posted context."""
        last = self.attempts[-1] if self.attempts else None
        entry: dict[str, Any] = {
            "id": self.id,
            "registration_id": self.registration_id,
            "registration_name": self.registration_name,
            "table": self.table,
            "message": self.message,
            "row_id": self.row_id,
            "url": self.url,
            "request_id": self.request_id,
            "correlation_id": self.correlation_id,
            "status": self.status,
            "attempts": len(self.attempts),
            "last_status_code": last.status_code if last else None,
            "last_error": last.error if last else None,
            "size_exceeded": self.size_exceeded,
            "created_at": self.created_at.isoformat(),
            "next_attempt_at": _iso(self.next_attempt_at),
            "completed_at": _iso(self.completed_at),
            "history": [
                {
                    "attempt": a.number,
                    "at": a.at.isoformat(),
                    "status_code": a.status_code,
                    "error": a.error,
                    "duration_ms": round(a.duration_ms, 3),
                }
                for a in self.attempts
            ],
        }
        if full:
            entry["headers"] = {
                k: MASK if k in self.secret_headers else v for k, v in self.headers.items()
            }
            entry["context"] = json.loads(self.body)
        return entry


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def correlation_of(request_id: str) -> str:
    """The correlation id shared by every delivery caused by one Web API request."""
    try:
        return str(uuid.UUID(request_id))
    except ValueError:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"dataverse-request:{request_id}"))


def _with_query(url: str, pairs: list[tuple[str, str]]) -> str:
    if not pairs:
        return url
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(pairs)) if q)
    return urlunsplit(parts._replace(query=query))


class WebhookDispatcher:
    """The store listener that turns matching changes into queued deliveries, and the workers."""

    def __init__(
        self,
        registry: WebhookRegistry,
        settings: WebhookSettings,
        builder: ContextBuilder,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.builder = builder
        self._transport = transport
        self._lock = threading.Lock()
        self._records: OrderedDict[str, Delivery] = OrderedDict()
        self._inbox: LoopInbox[str] = LoopInbox(
            self._attempt, name="webhook-delivery", workers=settings.workers
        )
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._client: httpx2.AsyncClient | None = None

    # the listener -------------------------------------------------------------------------

    def __call__(self, change: RowChange) -> None:
        """Queue one delivery per registration ``change`` triggers; never blocks on the network.

        Changes made outside any request (the seed loaded at start-up or by a reset) trigger
        nothing: no message ran, so no step would.
        """
        if not change.request_id:
            return
        for registered in self.registry.matching(change):
            try:
                delivery = self._prepare(change, registered)
            except Exception:
                log.exception("webhook %s: context for %s failed", registered.id, change.row_id)
                continue
            with self._lock:
                self._records[delivery.id] = delivery
                self._evict()
            self._inbox.put(delivery.id)

    def _prepare(self, change: RowChange, registered: Registered) -> Delivery:
        spec = registered.registration
        now = datetime.now(UTC)
        run = Invocation(
            operation_id=str(uuid.uuid4()),
            request_id=str(uuid.uuid4()),
            correlation_id=correlation_of(change.request_id),
            created_on=now,
        )
        body, stripped = serialize(self.builder.build(change, registered.step, run))
        headers = {
            "content-type": "application/json",
            "x-request-id": run.request_id,
            "x-ms-dynamics-organization": self.builder.organization.domain,
            "x-ms-dynamics-entity-name": change.table,
            "x-ms-dynamics-request-name": change.kind,
            "x-ms-correlation-request-id": run.correlation_id,
        }
        if stripped:
            headers["x-ms-dynamics-msg-size-exceeded"] = "true"
        secret: frozenset[str] = frozenset()
        query: list[tuple[str, str]] = []
        value = spec.auth_value
        if spec.auth is AuthKind.HTTP_HEADER and isinstance(value, dict):
            headers.update({name.lower(): v for name, v in value.items()})
            secret = frozenset(name.lower() for name in value)
        elif spec.auth is AuthKind.HTTP_QUERY_STRING and isinstance(value, dict):
            query = list(value.items())
        elif isinstance(value, str):
            query = [("code", value)]
        return Delivery(
            id=run.operation_id,
            registration_id=registered.id,
            registration_name=spec.name,
            table=change.table,
            message=change.kind,
            row_id=change.row_id,
            url=spec.url,
            target=_with_query(spec.url, query),
            headers=headers,
            secret_headers=secret,
            body=body,
            request_id=run.request_id,
            correlation_id=run.correlation_id,
            size_exceeded=stripped,
            created_at=now,
        )

    def _evict(self) -> None:
        """Keep the log bounded, dropping the oldest finished deliveries first."""
        excess = len(self._records) - self.settings.delivery_log_size
        if excess <= 0:
            return
        finished = [k for k, d in self._records.items() if d.status not in UNDER_WAY][:excess]
        for key in finished:
            del self._records[key]

    # the workers --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the workers on the running loop and send what waited for them."""
        if self._inbox.started:
            return
        self._client = httpx2.AsyncClient(
            timeout=self.settings.timeout_seconds,
            verify=self.settings.verify_tls,
            transport=self._transport,
            trust_env=False,
        )
        await self._inbox.start()

    async def stop(self) -> None:
        """Stop the workers; deliveries not yet done stay in the log as they are."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        await self._inbox.stop()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[WebhookDispatcher]:
        """``async with dispatcher.running():`` for an app's lifespan."""
        await self.start()
        try:
            yield self
        finally:
            await self.stop()

    async def _attempt(self, delivery_id: str) -> None:
        with self._lock:
            delivery = self._records.get(delivery_id)
            if delivery is None or delivery.status not in UNDER_WAY or self._client is None:
                return
            delivery.status = "delivering"
            delivery.next_attempt_at = None
            client = self._client
        started, clock = datetime.now(UTC), time.perf_counter()
        status_code: int | None = None
        error: str | None = None
        try:
            response = await client.post(
                delivery.target, content=delivery.body, headers=delivery.headers
            )
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code} {response.reason_phrase}".strip()
        except httpx2.TimeoutException:
            error = f"no answer within {self.settings.timeout_seconds:g} s"
        except httpx2.HTTPError as failure:
            error = f"{type(failure).__name__}: {failure}".rstrip(": ")
        elapsed = (time.perf_counter() - clock) * 1000
        self._settle(
            delivery, Attempt(len(delivery.attempts) + 1, started, status_code, error, elapsed)
        )

    def _settle(self, delivery: Delivery, attempt: Attempt) -> None:
        settings = self.settings
        now = datetime.now(UTC)
        with self._lock:
            delivery.attempts.append(attempt)
            if attempt.error is None:
                delivery.status, delivery.completed_at = "succeeded", now
                return
            retryable = settings.retry_on == "any_failure" or (
                attempt.status_code is None or attempt.status_code in GATEWAY_ERRORS
            )
            if not retryable or len(delivery.attempts) > settings.retries:
                delivery.status, delivery.completed_at = "failed", now
                log.warning("webhook delivery %s failed: %s", delivery.id, attempt.error)
                return
            wait = settings.backoff_seconds * settings.backoff_factor ** (
                len(delivery.attempts) - 1
            )
            wait = min(wait, settings.max_backoff_seconds)
            delivery.status, delivery.next_attempt_at = "retrying", now + timedelta(seconds=wait)
        loop = self._inbox.loop
        if loop is not None:
            self._timers[delivery.id] = loop.call_later(wait, self._retry, delivery.id)

    def _retry(self, delivery_id: str) -> None:
        self._timers.pop(delivery_id, None)
        self._inbox.put(delivery_id)

    # the log ------------------------------------------------------------------------------

    def deliveries(self, status: str | None = None) -> list[dict[str, Any]]:
        """The log, oldest first, optionally only one status."""
        with self._lock:
            return [d.view() for d in self._records.values() if status in (None, d.status)]

    def delivery(self, delivery_id: str) -> dict[str, Any] | None:
        """One delivery with its headers and context, or None."""
        with self._lock:
            found = self._records.get(delivery_id)
            return found.view(full=True) if found else None

    def forget_finished(self) -> None:
        """Drop succeeded and failed deliveries from the log."""
        with self._lock:
            for key in [k for k, d in self._records.items() if d.status not in UNDER_WAY]:
                del self._records[key]

    async def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no delivery is under way (tests, demos); False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                busy = any(d.status in UNDER_WAY for d in self._records.values())
            if not busy:
                return True
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)


def create_webhooks(
    settings: WebhookSettings,
    schema: ContextSchema | None = None,
    tables: Mapping[str, Iterable[str]] | None = None,
    *,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> tuple[WebhookRegistry, WebhookDispatcher]:
    """Registry with the configured registrations and its dispatcher (not started yet).

    ``tables`` (logical name → attribute names) lets the registry refuse unknown tables and
    columns, including in the configuration (:class:`RegistrationError` at start-up).
    """
    registry = WebhookRegistry(tables)
    for registration in settings.registrations:
        registry.add(registration)
    organization = Organization(
        organization_id=settings.organization_id,
        name=settings.organization_name,
        domain=settings.organization_domain,
        business_unit_id=settings.business_unit_id,
    )
    builder = ContextBuilder(organization, schema)
    return registry, WebhookDispatcher(registry, settings, builder, transport=transport)

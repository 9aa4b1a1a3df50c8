"""Posting confirmations to the configured receiver, with retries, and the log of deliveries.

Each confirmation is built once (so every attempt posts the same message with the same id) and
delivered by its own task on the app's event loop: a 2xx answer ends it, a connection error, a
timeout, 408, 429 or a 5xx is retried after ``backoff_seconds`` doubled per attempt (at most
``max_backoff_seconds``, at least what ``Retry-After`` asks) up to ``retries`` more times, any
other answer fails it at once. Basic authentication when ``user`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx2

from d365sap.emulators.s4.sales_orders.confirmation_xml import build_confirmation
from d365sap.emulators.s4.sales_orders.message import MessageHeader
from d365sap.emulators.s4.sales_orders.outcome import OrderOutcome
from d365sap.emulators.s4.sales_orders.soap import SoapVersion, message_bytes
from d365sap.emulators.settings import SalesOrderConfirmationSettings

log = logging.getLogger(__name__)

SOAP_ACTION = "http://sap.com/xi/SD-SLS/SalesOrderBulkConfirmation_Out"
DeliveryStatus = Literal["pending", "sending", "retrying", "sent", "failed"]
_RETRYABLE = frozenset({408, 429})


@dataclass
class Attempt:
    """One POST of a confirmation."""

    number: int
    at: datetime
    status_code: int | None
    error: str | None

    def view(self) -> dict[str, Any]:
        """JSON for the admin routes."""
        return {
            "attempt": self.number,
            "at": self.at.isoformat(),
            "status_code": self.status_code,
            "error": self.error,
        }


@dataclass
class Delivery:
    """One confirmation from building to being sent or given up."""

    id: int
    message_seq: int
    position: int
    sales_order: str | None
    confirmation_id: str
    body: bytes
    status: DeliveryStatus = "pending"
    attempts: list[Attempt] = field(default_factory=list)

    def view(self, *, full: bool = False) -> dict[str, Any]:
        """JSON for the admin routes; ``full`` adds the posted XML."""
        entry: dict[str, Any] = {
            "id": self.id,
            "message": self.message_seq,
            "position": self.position,
            "sales_order": self.sales_order,
            "confirmation_id": self.confirmation_id,
            "status": self.status,
            "attempts": [a.view() for a in self.attempts],
        }
        if full:
            entry["body"] = self.body.decode("utf-8")
        return entry


def _retry_after(response: httpx2.Response) -> float:
    raw = response.headers.get("retry-after", "").strip()
    return float(raw) if raw.isdigit() else 0.0


class ConfirmationSender:
    """Builds, posts and retries confirmations; keeps the log of deliveries."""

    def __init__(
        self,
        settings: SalesOrderConfirmationSettings,
        sender_system: str,
        *,
        log_size: int = 2000,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.sender_system = sender_system
        self._log_size = log_size
        self._transport = transport
        self._lock = threading.Lock()
        self._deliveries: dict[int, Delivery] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx2.AsyncClient | None = None

    @property
    def enabled(self) -> bool:
        """Whether a receiver is configured."""
        return self.settings.url is not None

    def submit(self, message_seq: int, header: MessageHeader, outcome: OrderOutcome) -> None:
        """Build the confirmation of ``outcome`` and start delivering it (on the running loop)."""
        if not self.enabled:
            return
        confirmation_id = uuid.uuid4()
        element = build_confirmation(header, outcome, self.sender_system, confirmation_id)
        version = SoapVersion(self.settings.soap_version)
        delivery = Delivery(
            id=next(self._ids),
            message_seq=message_seq,
            position=outcome.position,
            sales_order=outcome.sales_order,
            confirmation_id=confirmation_id.hex.upper(),
            body=message_bytes(version, element),
        )
        task = asyncio.get_running_loop().create_task(self._deliver(delivery, version))
        with self._lock:
            self._deliveries[delivery.id] = delivery
            self._tasks.add(task)
            self._evict()
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        with self._lock:
            self._tasks.discard(task)

    def _evict(self) -> None:
        """Keep the log bounded, dropping the oldest finished deliveries."""
        excess = len(self._deliveries) - self._log_size
        done = [k for k, d in self._deliveries.items() if d.status in ("sent", "failed")]
        for key in done[: max(0, excess)]:
            del self._deliveries[key]

    def _headers(self, version: SoapVersion) -> dict[str, str]:
        if version is SoapVersion.V11:
            return {"content-type": "text/xml; charset=utf-8", "soapaction": f'"{SOAP_ACTION}"'}
        return {"content-type": f'application/soap+xml; charset=utf-8; action="{SOAP_ACTION}"'}

    def _client_now(self) -> httpx2.AsyncClient:
        if self._client is None:
            settings = self.settings
            auth = None
            if settings.user is not None and settings.password is not None:
                auth = httpx2.BasicAuth(settings.user, settings.password.get_secret_value())
            self._client = httpx2.AsyncClient(
                timeout=settings.timeout_seconds,
                auth=auth,
                transport=self._transport,
                trust_env=False,
            )
        return self._client

    async def _deliver(self, delivery: Delivery, version: SoapVersion) -> None:
        settings = self.settings
        assert settings.url is not None
        for number in range(1, settings.retries + 2):
            delivery.status = "sending"
            status_code: int | None = None
            problem: str | None = None
            wait_at_least = 0.0
            try:
                response = await self._client_now().post(
                    settings.url, content=delivery.body, headers=self._headers(version)
                )
                status_code = response.status_code
                if not 200 <= status_code < 300:
                    problem = f"HTTP {status_code} {response.reason_phrase}".strip()
                    wait_at_least = _retry_after(response)
            except httpx2.TimeoutException:
                problem = f"no answer within {settings.timeout_seconds:g} s"
            except httpx2.HTTPError as failure:
                problem = f"{type(failure).__name__}: {failure}".rstrip(": ")
            delivery.attempts.append(Attempt(number, datetime.now(UTC), status_code, problem))
            if problem is None:
                delivery.status = "sent"
                return
            retryable = status_code is None or status_code >= 500 or status_code in _RETRYABLE
            if not retryable or number > settings.retries:
                break
            delivery.status = "retrying"
            wait = settings.backoff_seconds * 2 ** (number - 1)
            await asyncio.sleep(max(min(wait, settings.max_backoff_seconds), wait_at_least))
        delivery.status = "failed"
        log.warning("confirmation %s failed: %s", delivery.id, delivery.attempts[-1].error)

    def deliveries(self) -> list[dict[str, Any]]:
        """Every delivery, oldest first."""
        with self._lock:
            return [d.view() for d in self._deliveries.values()]

    def delivery(self, delivery_id: int) -> dict[str, Any] | None:
        """One delivery with its XML, or None."""
        with self._lock:
            found = self._deliveries.get(delivery_id)
            return found.view(full=True) if found else None

    def of_message(self, message_seq: int) -> list[dict[str, Any]]:
        """The deliveries of one received message."""
        with self._lock:
            return [d.view() for d in self._deliveries.values() if d.message_seq == message_seq]

    def busy(self) -> bool:
        """Whether a delivery is still under way."""
        with self._lock:
            return bool(self._tasks)

    def reset(self) -> None:
        """Stop every delivery under way and forget the log (from any thread)."""
        with self._lock:
            tasks = list(self._tasks)
            self._deliveries.clear()
        for task in tasks:
            task.get_loop().call_soon_threadsafe(task.cancel)

    async def stop(self) -> None:
        """Cancel deliveries under way and close the HTTP client."""
        with self._lock:
            tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no delivery is under way; False on timeout."""
        deadline = time.monotonic() + timeout
        while self.busy():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

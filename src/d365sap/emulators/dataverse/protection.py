"""Service protection API limits: per-user sliding window of requests, execution time, concurrency.

Dataverse protects itself per authenticated user with three limits: the number of requests and
their combined execution time within a sliding five-minute window, and the number of requests
running at once. A client that goes over gets 429 with ``Retry-After`` and one of three documented
error codes; a client that is well behaved must read both and back off. The emulator enforces the
same limits (configurable, window included, so tests and demos can hit them in seconds) so that
such a client can be tested.

Two of the limits are judged on what the window already holds, as Dataverse documents ("you can
expect to exceed the number of requests and execution time limits ... before the limits take
effect"): the request that finds the window full is refused, the one that fills it is not.
Concurrency is judged at once. Refused requests are not counted.

The core applies :meth:`ServiceProtection.admit` around every authenticated Web API request;
``GET /emulator/limits`` shows the usage, ``PUT`` changes the limits while the emulator runs and
``DELETE`` forgets the usage.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from d365sap.emulators.dataverse.messages import Caller, WebApiResponse

LimitKind = Literal["requests", "execution_time", "concurrency"]

# error number (SDK), hex code (Web API): api-limits.md
REQUESTS_CODE = "0x80072322"  # -2147015902
EXECUTION_TIME_CODE = "0x80072321"  # -2147015903
CONCURRENCY_CODE = "0x80072326"  # -2147015898
ERROR_NUMBERS: dict[LimitKind, int] = {
    "requests": -2147015902,
    "execution_time": -2147015903,
    "concurrency": -2147015898,
}
BURST_REMAINING = "x-ms-ratelimit-burst-remaining-xrm-requests"
TIME_REMAINING = "x-ms-ratelimit-time-remaining-xrm-requests"


class ServiceProtectionSettings(BaseModel):
    """The three limits and the window; Dataverse's defaults."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    window_seconds: float = Field(default=300.0, gt=0, description="sliding window length")
    max_requests: int = Field(default=6000, ge=1, description="requests per user in the window")
    max_execution_seconds: float = Field(
        default=1200.0, gt=0, description="combined execution time per user in the window"
    )
    max_concurrent: int = Field(default=52, ge=1, description="requests of a user running at once")


def _number(value: float) -> str:
    return f"{value:g}" if value != int(value) else str(int(value))


def limit_message(kind: LimitKind, settings: ServiceProtectionSettings) -> str:
    """Dataverse's message for ``kind`` with the limits in force."""
    window = _number(settings.window_seconds)
    if kind == "requests":
        return (
            f"Number of requests exceeded the limit of {settings.max_requests} "
            f"over time window of {window} seconds."
        )
    if kind == "execution_time":
        milliseconds = f"{round(settings.max_execution_seconds * 1000):,}"
        return (
            f"Combined execution time of incoming requests exceeded limit of {milliseconds}  "
            f"milliseconds over time window of {window} seconds. Decrease number of concurrent "
            "requests or reduce the duration of requests and try again later."
        )
    return f"Number of concurrent requests exceeded the limit of {settings.max_concurrent}."


_CODES: dict[LimitKind, str] = {
    "requests": REQUESTS_CODE,
    "execution_time": EXECUTION_TIME_CODE,
    "concurrency": CONCURRENCY_CODE,
}


class ThrottledError(Exception):
    """A request refused by a limit; :meth:`response` is the 429 to send."""

    def __init__(self, kind: LimitKind, retry_after: int, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after
        self.code = _CODES[kind]
        self.message = message

    def response(self) -> WebApiResponse:
        """429 with ``Retry-After`` (whole seconds) and the documented code and message."""
        return WebApiResponse.error(
            429, self.code, self.message, {"retry-after": str(self.retry_after)}
        )


@dataclass
class Admission:
    """A request let in: it holds a concurrency slot until :meth:`ServiceProtection.leave`."""

    user_id: str
    started: float
    remaining_requests: int
    remaining_seconds: float
    left: bool = False

    def headers(self) -> dict[str, str]:
        """The usage headers Dataverse adds to its replies (``1,199.46`` style seconds)."""
        return {
            BURST_REMAINING: str(max(self.remaining_requests, 0)),
            TIME_REMAINING: f"{max(self.remaining_seconds, 0.0):,.2f}",
        }


@dataclass
class _Usage:
    starts: deque[float] = field(default_factory=deque)
    finished: deque[tuple[float, float]] = field(default_factory=deque)  # (end, duration)
    execution: float = 0.0
    running: int = 0
    throttled: dict[str, int] = field(
        default_factory=lambda: {"requests": 0, "execution_time": 0, "concurrency": 0}
    )


def _retry_after(seconds: float) -> int:
    return max(1, math.ceil(seconds - 1e-9))


class ServiceProtection:
    """Per-user usage and the decision to admit or refuse (thread-safe)."""

    def __init__(
        self,
        settings: ServiceProtectionSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings or ServiceProtectionSettings()
        self._clock = clock
        self._lock = threading.Lock()
        self._users: dict[str, _Usage] = {}

    @property
    def settings(self) -> ServiceProtectionSettings:
        """The limits in force."""
        return self._settings

    def replace(self, settings: ServiceProtectionSettings) -> None:
        """New limits; the usage recorded so far is judged by them."""
        with self._lock:
            self._settings = settings

    def clear(self) -> None:
        """Forget all usage (requests still running keep their slot until they end)."""
        with self._lock:
            for usage in self._users.values():
                usage.starts.clear()
                usage.finished.clear()
                usage.execution = 0.0
                for kind in usage.throttled:
                    usage.throttled[kind] = 0

    def _prune(self, usage: _Usage, now: float) -> None:
        horizon = now - self._settings.window_seconds
        while usage.starts and usage.starts[0] <= horizon:
            usage.starts.popleft()
        while usage.finished and usage.finished[0][0] <= horizon:
            usage.execution -= usage.finished.popleft()[1]
        if not usage.finished:
            usage.execution = 0.0

    def _refusal(self, usage: _Usage, now: float) -> ThrottledError | None:
        settings = self._settings
        window = settings.window_seconds
        if usage.running >= settings.max_concurrent:
            return ThrottledError("concurrency", 1, limit_message("concurrency", settings))
        excess = len(usage.starts) - settings.max_requests
        if excess >= 0:
            frees_at = usage.starts[excess] + window
            return ThrottledError(
                "requests", _retry_after(frees_at - now), limit_message("requests", settings)
            )
        if usage.execution >= settings.max_execution_seconds:
            remaining = usage.execution
            frees_at = now
            for end, duration in usage.finished:
                remaining -= duration
                frees_at = end + window
                if remaining < settings.max_execution_seconds:
                    break
            message = limit_message("execution_time", settings)
            return ThrottledError("execution_time", _retry_after(frees_at - now), message)
        return None

    def enter(self, caller: Caller) -> Admission:
        """Admit a request of ``caller`` or raise :class:`ThrottledError`; then :meth:`leave`."""
        with self._lock:
            now = self._clock()
            usage = self._users.setdefault(caller.user_id, _Usage())
            self._prune(usage, now)
            settings = self._settings
            if settings.enabled:
                refusal = self._refusal(usage, now)
                if refusal is not None:
                    usage.throttled[refusal.kind] += 1
                    raise refusal
            usage.starts.append(now)
            usage.running += 1
            return Admission(
                caller.user_id,
                now,
                settings.max_requests - len(usage.starts),
                settings.max_execution_seconds - usage.execution,
            )

    def leave(self, admission: Admission) -> None:
        """The request ended: free its slot and count its execution time (once)."""
        with self._lock:
            if admission.left:
                return
            admission.left = True
            now = self._clock()
            usage = self._users[admission.user_id]
            usage.running -= 1
            duration = max(now - admission.started, 0.0)
            usage.finished.append((now, duration))
            usage.execution += duration

    @asynccontextmanager
    async def admit(self, caller: Caller) -> AsyncIterator[Admission]:
        """``async with protection.admit(caller):`` around one Web API request."""
        admission = self.enter(caller)
        try:
            yield admission
        finally:
            self.leave(admission)

    @contextmanager
    def admitted(self, caller: Caller) -> Iterator[Admission]:
        """The same as :meth:`admit` for synchronous code."""
        admission = self.enter(caller)
        try:
            yield admission
        finally:
            self.leave(admission)

    def usage(self) -> dict[str, Any]:
        """Limits in force and, per user, what the window holds now."""
        with self._lock:
            now = self._clock()
            settings = self._settings
            users: dict[str, Any] = {}
            for user_id, usage in sorted(self._users.items()):
                self._prune(usage, now)
                users[user_id] = {
                    "requests": len(usage.starts),
                    "execution_seconds": round(usage.execution, 6),
                    "concurrent": usage.running,
                    "remaining_requests": max(settings.max_requests - len(usage.starts), 0),
                    "remaining_execution_seconds": round(
                        max(settings.max_execution_seconds - usage.execution, 0.0), 6
                    ),
                    "throttled": dict(usage.throttled),
                }
            return {"settings": settings.model_dump(), "users": users}


def limits_router(protection: ServiceProtection) -> APIRouter:
    """``/emulator/limits``: usage, limits changed at run time, usage forgotten."""
    router = APIRouter(prefix="/emulator/limits", tags=["emulator"])

    @router.get("")
    def current() -> dict[str, Any]:
        """Limits in force and each user's usage in the current window."""
        return protection.usage()

    @router.put("")
    def replace(settings: ServiceProtectionSettings) -> dict[str, Any]:
        """Replace the limits as a whole (omitted fields get Dataverse's defaults)."""
        protection.replace(settings)
        return protection.usage()

    @router.delete("")
    def clear() -> dict[str, Any]:
        """Forget the usage of every user."""
        protection.clear()
        return protection.usage()

    return router

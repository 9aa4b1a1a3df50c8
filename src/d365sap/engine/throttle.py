"""One throttle per remote system, shared by every process of a deployment through the store.

Dataverse limits requests per user (6000 in a sliding five minutes, among others) and answers
429 with ``Retry-After`` once a limit is reached. Every worker of a deployment calls with the
same application user, so they have to hold back together:

- **Pause.** A caller that gets 429 calls :meth:`SharedThrottle.pause`: ``paused_until`` in the
  ``throttles`` row moves forward (never back) in one atomic update. Every caller looks at that
  row before its next request (at most ``pause_check_seconds`` old; the caller that got the 429
  knows at once) and waits until then, so the whole deployment backs off, not one request.
- **Budget.** Requests are counted in a sliding window (``max_requests`` per
  ``window_seconds``, by default 5000 per 300 s, under Dataverse's 6000). A process does not
  write the store per request: it takes a lease of ``lease_size`` requests at a time
  (``throttle_grants``, one row per lease) and spends it locally. A lease not spent within
  ``lease_seconds`` is dropped, so requests go out close to when they were counted. When the
  window is full the caller waits until the oldest lease leaves it.
- **Bounded waits.** A caller never waits longer than ``max_wait_seconds``: it gets a
  :class:`~d365sap.errors.TransientError` with ``retry_after`` instead, and its message is retried
  later by the engine instead of holding a worker.

Leases are taken in one transaction that first bumps the row's revision (a row lock on
PostgreSQL, the write lock on SQLite), so two processes never both take the last requests of
the window. Times are Unix seconds from each process's clock (keep the machines' clocks in
sync). :attr:`SharedThrottle.stats` reports the time spent waiting, for the benchmark.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.orm import Session

from d365sap.engine.db import insert_for
from d365sap.engine.store import MessageStore
from d365sap.engine.tables import ThrottleGrantRow, ThrottleRow
from d365sap.errors import TransientError

THROTTLES = cast(Table, ThrottleRow.__table__)
GRANTS = cast(Table, ThrottleGrantRow.__table__)


@dataclass(frozen=True)
class ThrottleLimits:
    """The budget and how it is shared; defaults stay under Dataverse's per-user limit."""

    max_requests: int = 5000
    window_seconds: float = 300.0
    lease_size: int = 20
    lease_seconds: float = 10.0
    pause_check_seconds: float = 1.0
    max_wait_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.max_requests < 1 or self.lease_size < 1:
            raise ValueError("max_requests and lease_size must be at least 1")
        if self.window_seconds <= 0 or self.lease_seconds <= 0:
            raise ValueError("window_seconds and lease_seconds must be positive")
        if self.pause_check_seconds < 0 or self.max_wait_seconds < 0:
            raise ValueError("pause_check_seconds and max_wait_seconds must not be negative")


@dataclass
class ThrottleStats:
    """What this process's throttle did: requests let through, leases, waits and their time."""

    requests: int = 0
    leases: int = 0
    pauses_reported: int = 0
    waits: int = 0
    waited_seconds: float = 0.0
    budget_waits: int = 0


@dataclass(frozen=True)
class ThrottleState:
    """A throttle as stored: the pause in force and the requests counted in the window."""

    name: str
    paused_until: float
    requests_in_window: int


@dataclass(frozen=True)
class _Grant:
    granted: int
    paused_until: float
    free_at: float | None


class SharedThrottle:
    """The throttle called ``name`` (one per remote, e.g. ``dataverse``) in ``store``.

    Satisfies the Dataverse connector's ``RequestThrottle``: call :meth:`acquire` before each
    request and :meth:`pause` after a 429.
    """

    def __init__(
        self,
        store: MessageStore,
        name: str = "dataverse",
        limits: ThrottleLimits | None = None,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if not name or len(name) > 64:
            raise ValueError("throttle name: 1 to 64 characters")
        self.store = store
        self.name = name
        self.limits = limits or ThrottleLimits()
        self.stats = ThrottleStats()
        self._clock = clock
        self._sleep = sleep
        self._dialect = store.engine.dialect.name
        self._paused_until = 0.0
        self._checked_at = float("-inf")
        self._left = 0
        self._lease_until = 0.0
        self._lease_lock = asyncio.Lock()

    # The connector's side -------------------------------------------------------------------

    async def acquire(self) -> None:
        """Wait for the pause in force and for budget, then count one request."""
        deadline = self._clock() + self.limits.max_wait_seconds
        while True:
            now = self._clock()
            if now - self._checked_at >= self.limits.pause_check_seconds:
                await self._refresh(now)
            if self._paused_until > now:
                await self._wait_until(self._paused_until, deadline, "paused after a 429")
                continue
            if self._left > 0 and now < self._lease_until:
                self._left -= 1
                self.stats.requests += 1
                return
            free_at = await self._lease(now)
            if free_at is not None:
                self.stats.budget_waits += 1
                await self._wait_until(free_at, deadline, "request budget used up")

    async def pause(self, seconds: float) -> None:
        """Every caller, in every process, waits ``seconds`` from now before its next request."""
        until = self._clock() + max(seconds, 0.0)
        self.stats.pauses_reported += 1
        self._paused_until = max(self._paused_until, until)
        await self.store.call(lambda: self._store_pause(until))

    # Waiting -------------------------------------------------------------------------------

    async def _wait_until(self, until: float, deadline: float, why: str) -> None:
        if until > deadline:
            delay = until - self._clock()
            raise TransientError(
                f"{self.name}: {why}; the next request may go in {delay:.1f} s",
                status=429,
                retry_after=max(delay, 0.0),
            )
        delay = max(until - self._clock(), 0.0)
        self.stats.waits += 1
        self.stats.waited_seconds += delay
        await self._sleep(delay)

    async def _refresh(self, now: float) -> None:
        stored = await self.store.call(self._read_pause)
        self._paused_until = max(self._paused_until, stored)
        self._checked_at = now

    async def _lease(self, now: float) -> float | None:
        """Take a lease; ``None`` when requests are in hand, else when budget frees up."""
        async with self._lease_lock:
            if self._left > 0 and now < self._lease_until:
                return None  # another task of this process took one meanwhile
            grant = await self.store.call(lambda: self._take(now))
            self._paused_until = max(self._paused_until, grant.paused_until)
            self._checked_at = now
            if grant.granted:
                self.stats.leases += 1
                self._left = grant.granted
                self._lease_until = now + self.limits.lease_seconds
                return None
            self._left = 0
            if grant.paused_until > now:
                return None  # the loop waits out the pause
            return grant.free_at

    # In the database ----------------------------------------------------------------------

    def _ensure(self, session: Session) -> None:
        make = insert_for(self._dialect)
        row = {"name": self.name, "paused_until": 0.0, "revision": 0, "updated_at": _utcnow()}
        session.execute(make(THROTTLES).values(row).on_conflict_do_nothing())

    def _read_pause(self) -> float:
        with self.store.sessions() as session:
            value = session.execute(
                select(THROTTLES.c.paused_until).where(THROTTLES.c.name == self.name)
            ).scalar_one_or_none()
        return float(value or 0.0)

    def _store_pause(self, until: float) -> None:
        with self.store.write() as session:
            self._ensure(session)
            session.execute(
                update(THROTTLES)
                .where(THROTTLES.c.name == self.name)
                .where(THROTTLES.c.paused_until < until)
                .values(paused_until=until, updated_at=_utcnow())
            )

    def _take(self, now: float) -> _Grant:
        limits = self.limits
        horizon = now - limits.window_seconds
        with self.store.write() as session:
            self._ensure(session)
            # First statement writes: the row lock (PostgreSQL) or write lock (SQLite) is held
            # before the window is counted, so the count cannot change under us.
            session.execute(
                update(THROTTLES)
                .where(THROTTLES.c.name == self.name)
                .values(revision=THROTTLES.c.revision + 1, updated_at=_utcnow())
            )
            paused_until = float(
                session.execute(
                    select(THROTTLES.c.paused_until).where(THROTTLES.c.name == self.name)
                ).scalar_one()
            )
            session.execute(
                delete(GRANTS).where(GRANTS.c.name == self.name, GRANTS.c.granted_at <= horizon)
            )
            if paused_until > now:
                return _Grant(0, paused_until, None)
            grants = session.execute(
                select(GRANTS.c.granted_at, GRANTS.c.requests)
                .where(GRANTS.c.name == self.name)
                .order_by(GRANTS.c.granted_at)
            ).all()
            used = sum(int(grant.requests) for grant in grants)
            free = limits.max_requests - used
            if free <= 0:
                freed = 0
                for grant in grants:  # the window frees up as its oldest leases leave it
                    freed += int(grant.requests)
                    if freed > -free:
                        return _Grant(
                            0, paused_until, float(grant.granted_at) + limits.window_seconds
                        )
                return _Grant(0, paused_until, now + limits.window_seconds)
            granted = min(limits.lease_size, free)
            session.execute(insert(GRANTS).values(name=self.name, granted_at=now, requests=granted))
            return _Grant(granted, paused_until, None)

    def state(self) -> ThrottleState:
        """The pause and the requests counted in the current window (for operators)."""
        horizon = self._clock() - self.limits.window_seconds
        with self.store.sessions() as session:
            used = session.execute(
                select(func.coalesce(func.sum(GRANTS.c.requests), 0)).where(
                    GRANTS.c.name == self.name, GRANTS.c.granted_at > horizon
                )
            ).scalar_one()
        return ThrottleState(self.name, self._read_pause(), int(used))


def _utcnow() -> datetime:
    return datetime.now(UTC)

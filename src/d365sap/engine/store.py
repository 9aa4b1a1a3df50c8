"""The message store: every inbound message is persisted, numbered and queued in one transaction.

A message row holds the current payload (every version is kept beside it), its arrival number,
its routing and delivery state; its steps and optional payload snapshots are written with each
attempt's outcome. Methods are synchronous (SQLAlchemy sessions); async callers run them in a
worker thread.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy import (
    Connection,
    Engine,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from d365sap.engine import attempts
from d365sap.engine import store_sql as sql
from d365sap.engine.attempts import Started
from d365sap.engine.db import make_engine, migrate
from d365sap.engine.guard import mark_applied
from d365sap.engine.loop_engines import LoopEngines
from d365sap.engine.runtime import DbHandle, Enqueuer, JobRequest
from d365sap.engine.store_reads import StoreReads
from d365sap.engine.trace import Trace
from d365sap.engine.views import (
    DONE,
    FAILED,
    FINAL_STATUSES,
    QUEUED,
    RETRYING,
    SUPERSEDED,
    MessageView,
    view_of,
)

Masker = Callable[[str, str], str]
T = TypeVar("T")
# A repeat of the latest message of a record is a duplicate, unless that one ended like this:
REPEATABLE_STATUSES = frozenset({FAILED, SUPERSEDED})


def _now() -> datetime:
    return datetime.now(UTC)


def new_message_id() -> str:
    """A UUID whose leading bits are the time (the layout of RFC 9562's version 7).

    Message ids key the messages table and the job table; random ids scatter every insert over
    their indexes, time-ordered ones append, which keeps the pages a burst of messages touches
    few and hot however large the store grows.
    """
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (
        (millis & (2**48 - 1)) << 80
        | 0x7 << 76
        | ((rand >> 62) & 0xFFF) << 64
        | 0b10 << 62
        | (rand & (2**62 - 1))
    )
    return str(uuid.UUID(int=value))


def payload_hash(payload: bytes) -> str:
    """The deduplication hash of a payload without a source id."""
    return hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True)
class Arrival:
    """What the intake knows about a message before storing it."""

    flow: str
    payload: bytes
    content_type: str
    correlation_id: str
    source_id: str | None
    route: str | None
    business_key: str | None
    queue: str


@dataclass(frozen=True)
class Outcome:
    """One attempt's result as the store records it."""

    status: str
    outcome: str | None
    http_status: int | None
    result: dict[str, Any] | None
    error: str | None


@dataclass(frozen=True)
class Settlement:
    """One attempt to record: see :meth:`MessageStore.settle`."""

    message_id: str
    attempt: int
    outcome: Outcome
    trace: Trace
    next_attempt_at: datetime | None = None
    within: Callable[[DbHandle], None] | None = None


class MessageStore(StoreReads):
    """Persistence of messages, their versions, steps and outcomes."""

    def __init__(self, engine: Engine, *, masker: Masker | None = None) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # PostgreSQL through psycopg: async callers' transactions run on their event loop.
        self._loop_engines = LoopEngines.for_engine(engine)
        self._loop_sessions: weakref.WeakKeyDictionary[Engine, sessionmaker[Session]] = (
            weakref.WeakKeyDictionary()
        )
        self._masker = masker
        # SQLite has one writer at a time; queueing writers here is far cheaper than letting
        # them collide inside SQLite, whose busy handler sleeps. PostgreSQL needs no such lock.
        self._write_lock: threading.Lock | None = (
            threading.Lock() if engine.dialect.name == "sqlite" else None
        )
        self.inline = engine.dialect.name == "sqlite"
        self._conn: Connection | None = None

    @property
    def engine(self) -> Engine:
        """The engine for the caller: the event loop's inside :meth:`call` on PostgreSQL."""
        if self._loop_engines is not None:
            active = self._loop_engines.active()
            if active is not None:
                return active
        return self._engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        """ORM sessions on :attr:`engine`."""
        engine = self.engine
        if engine is self._engine:
            return self._sessions
        made = self._loop_sessions.get(engine)
        if made is None:
            made = self._loop_sessions[engine] = sessionmaker(engine, expire_on_commit=False)
        return made

    async def call(self, function: Callable[[], T]) -> T:
        """Run a store operation from async code.

        SQLite operations are local and take well under a millisecond: they run right on the
        event loop, which saves a thread hop each. PostgreSQL operations go over the network: with
        psycopg they run on the loop too, each round trip awaited (see
        :mod:`d365sap.engine.loop_engines`); another driver's run in a worker thread.
        """
        if self.inline:
            return function()
        if self._loop_engines is not None:
            return await self._loop_engines.run(function)
        return await anyio.to_thread.run_sync(function)

    @contextmanager
    def fast(self) -> Iterator[DbHandle]:
        """A write transaction on the hot path.

        A Core connection, no ORM session to build and tear down per transaction. On SQLite one
        connection stays open for the whole process and is used from the event loop (serialised
        like :meth:`write`); elsewhere a pooled connection in a transaction of its own.
        """
        if self._write_lock is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._write_lock:
            if self._conn is None:
                self._conn = self.engine.connect()
            with self._conn.begin():
                yield self._conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A short read on the hot path, without an ORM session.

        On SQLite it runs on :meth:`fast`'s connection (reads and writes share SQLite's one
        connection per process anyway); elsewhere on a pooled connection. Not to be nested in
        :meth:`fast` or another :meth:`read`.
        """
        if self._write_lock is None:
            with self.engine.connect() as conn:
                yield conn
            return
        with self.fast() as conn:
            assert isinstance(conn, Connection)
            yield conn

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction (serialised per process on SQLite)."""
        if self._write_lock is None:
            with self.sessions.begin() as session:
                yield session
            return
        with self._write_lock, self.sessions.begin() as session:
            yield session

    @classmethod
    def open(cls, url: str, *, masker: Masker | None = None) -> MessageStore:
        """Connect to ``url`` and migrate the schema to the newest revision."""
        engine = make_engine(url)
        migrate(engine)
        return cls(engine, masker=masker)

    def close(self) -> None:
        """Release the connection pools."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._loop_engines is not None:
            self._loop_engines.close()
        self._loop_sessions.clear()
        self._engine.dispose()

    async def aclose(self) -> None:
        """:meth:`close` from async code: the running loop's connections are closed cleanly."""
        if self._loop_engines is not None:
            await self._loop_engines.aclose()
        self.close()

    # -- intake -------------------------------------------------------------------------------

    def accept(self, arrival: Arrival, enqueuer: Enqueuer) -> tuple[MessageView, bool]:
        """Store and enqueue a new message in one transaction, unless it is a duplicate.

        A duplicate (same source id, or without one the same payload as the latest message of
        the same record) returns the first message and ``True``.
        """
        try:
            with self.fast() as session:
                return self._accept_in(session, arrival, enqueuer, None)
        except IntegrityError:
            if arrival.source_id is None:
                raise
            existing = self.find_by_source(arrival.flow, arrival.source_id)
            if existing is None:
                raise
            return existing, True

    def accept_many(
        self, arrivals: list[Arrival], enqueuer: Enqueuer
    ) -> list[tuple[MessageView, bool]]:
        """:meth:`accept` for several messages in one transaction (group commit).

        Each is checked for duplicates against the store and the messages before it in the
        list. If the transaction fails on a constraint (a source id seen twice in the batch, or
        accepted meanwhile by another process) it is rolled back whole and every message is
        accepted on its own, which sorts the duplicates out.
        """
        if len(arrivals) == 1:
            return [self.accept(arrivals[0], enqueuer)]
        results: list[tuple[MessageView, bool]] = []
        try:
            with self.fast() as session:
                seqs = iter(self._next_seqs(session, len(arrivals)))
                for arrival in arrivals:
                    results.append(self._accept_in(session, arrival, enqueuer, seqs))
        except IntegrityError:
            return [self.accept(arrival, enqueuer) for arrival in arrivals]
        return results

    def _accept_in(
        self,
        session: DbHandle,
        arrival: Arrival,
        enqueuer: Enqueuer,
        seqs: Iterator[int] | None,
    ) -> tuple[MessageView, bool]:
        """One message of :meth:`accept` or :meth:`accept_many`, in the caller's transaction.

        ``seqs`` holds arrival numbers reserved for a batch; without it the insert reserves one.
        """
        message_id = new_message_id()
        lock_key = self._lock_key(arrival, message_id)
        digest = payload_hash(arrival.payload)
        if arrival.source_id is None:
            first = self._same_as_latest(session, arrival.flow, lock_key, digest)
            if first is not None:
                return first, True
        seq = next(seqs) if seqs is not None else None
        values = self._insert(session, arrival, message_id, lock_key, digest, seq=seq)
        enqueuer.enqueue(
            session,
            JobRequest(message_id=message_id, queue=arrival.queue, lock_key=lock_key, new=True),
        )
        return view_of(values), False

    @staticmethod
    def _next_seqs(session: DbHandle, count: int) -> range:
        """Reserve ``count`` arrival numbers with one update (unused ones leave a gap)."""
        last = int(session.execute(sql.NEXT_SEQS, {"count": count}).scalar_one())
        return range(last - count + 1, last + 1)

    @staticmethod
    def _lock_key(arrival: Arrival, message_id: str) -> str:
        if arrival.business_key:
            return f"{arrival.flow}:{arrival.route}:{arrival.business_key}"[:300]
        return f"{arrival.flow}:message:{message_id}"

    @staticmethod
    def _same_as_latest(
        session: DbHandle, flow: str, lock_key: str, digest: str
    ) -> MessageView | None:
        latest = session.execute(sql.LATEST_OF_RECORD, {"flow": flow, "lock_key": lock_key}).first()
        if latest is None or latest.payload_hash != digest:
            return None
        if latest.status in REPEATABLE_STATUSES:
            return None
        return view_of(latest._mapping)

    @staticmethod
    def _insert(
        session: DbHandle,
        arrival: Arrival,
        message_id: str,
        lock_key: str,
        digest: str,
        *,
        seq: int | None = None,
    ) -> dict[str, Any]:
        now = _now()
        if seq is None:
            seq = int(session.execute(sql.NEXT_SEQS, {"count": 1}).scalar_one())
        values: dict[str, Any] = {
            "id": message_id,
            "flow": arrival.flow,
            "seq": seq,
            "source_id": arrival.source_id,
            "payload_hash": digest,
            "route": arrival.route,
            "business_key": arrival.business_key,
            "queue": arrival.queue,
            "lock_key": lock_key,
            "status": QUEUED,
            "outcome": None,
            "http_status": None,
            "error": None,
            "result": None,
            "content_type": arrival.content_type,
            "payload": arrival.payload,
            "version": 1,
            "correlation_id": arrival.correlation_id,
            "attempts": 0,
            "next_attempt_at": None,
            "created_at": now,
            "updated_at": now,
            "finished_at": None,
        }
        # Version 1 lives in the message row alone until a resubmission replaces it there
        # (keep_first_version): most messages are never edited, so their payload is written once.
        session.execute(sql.INSERT_MESSAGE, values)
        return values

    # -- processing ---------------------------------------------------------------------------

    def begin_attempt(self, message_id: str) -> Started:
        """Start an attempt: the message and attempt number, or why it must not run.

        Returns ``"final"`` when the message is already settled and ``"superseded"`` when a newer
        message of the same record was applied (the message is marked so).
        """
        with self.fast() as session:
            return attempts.begin_in(session, message_id)

    def settle(
        self,
        message_id: str,
        *,
        attempt: int,
        outcome: Outcome,
        trace: Trace,
        next_attempt_at: datetime | None = None,
        within: Callable[[DbHandle], None] | None = None,
    ) -> None:
        """Record one attempt: its steps, snapshots and outcome, final or waiting for a retry.

        ``within`` runs in the same transaction (the embedded runtime settles its job there).
        """
        attempt_ = Settlement(message_id, attempt, outcome, trace, next_attempt_at, within)
        with self.fast() as session:
            self._settle_in(session, attempt_)

    def settle_many(self, settlements: list[Settlement]) -> list[Exception | None]:
        """:meth:`settle` for several attempts in one transaction (group commit).

        If the transaction fails, each attempt is recorded on its own instead, so one bad
        attempt cannot keep the others from being recorded; the result says which failed.
        """
        if len(settlements) > 1:
            try:
                with self.fast() as session:
                    step_rows: list[dict[str, Any]] = []
                    for settlement in settlements:
                        self._settle_in(session, settlement, step_rows)
                    if step_rows:  # every attempt's steps in one statement
                        session.execute(sql.INSERT_STEPS, step_rows)
            except Exception:  # noqa: S110 - each is retried alone below, errors reported
                pass
            else:
                return [None] * len(settlements)
        failures: list[Exception | None] = []
        for settlement in settlements:
            try:
                with self.fast() as session:
                    self._settle_in(session, settlement)
            except Exception as exc:
                failures.append(exc)
            else:
                failures.append(None)
        return failures

    def _settle_in(
        self,
        session: DbHandle,
        settlement: Settlement,
        step_rows: list[dict[str, Any]] | None = None,
    ) -> None:
        """Record one attempt; its steps go to ``step_rows`` when given (the caller inserts)."""
        now = _now()
        outcome = settlement.outcome
        status = RETRYING if settlement.next_attempt_at is not None else outcome.status
        params: dict[str, Any] = {
            "mid": settlement.message_id,
            "status": status,
            "outcome": outcome.outcome,
            "http_status": outcome.http_status,
            "result": outcome.result,
            "error": outcome.error,
            "next_attempt_at": settlement.next_attempt_at,
            "now": now,
        }
        row = session.execute(sql.SETTLE[status in FINAL_STATUSES], params).one()
        if status == DONE and row.lock_key:
            mark_applied(session, row.lock_key, row.seq, settlement.message_id)
        rows = sql.step_rows(settlement.message_id, settlement.attempt, settlement.trace)
        if step_rows is not None:
            step_rows.extend(rows)
        elif rows:
            session.execute(sql.INSERT_STEPS, rows)
        self._add_snapshots(session, settlement.message_id, settlement.trace, now)
        if settlement.within is not None:
            settlement.within(session)

    def _add_snapshots(
        self, session: DbHandle, message_id: str, trace: Trace, now: datetime
    ) -> None:
        if trace.snapshots:
            session.execute(
                sql.INSERT_PAYLOADS,
                [
                    {
                        "message_id": message_id,
                        "stage": snap.stage,
                        "content_type": snap.content_type,
                        "body": self._masker(snap.body, snap.content_type)
                        if self._masker
                        else snap.body,
                        "created_at": now,
                    }
                    for snap in trace.snapshots
                ],
            )


def keep_first_version(session: DbHandle, message_id: str) -> None:
    """Copy the payload as received into the version table before a resubmission replaces it.

    Does nothing once the message has version rows (it was resubmitted before).
    """
    session.execute(sql.KEEP_FIRST_VERSION, {"mid": message_id})

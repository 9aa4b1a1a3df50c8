"""The message store: every inbound message is persisted, numbered and queued in one transaction.

A message row holds the current payload (every version is kept beside it), its arrival number,
its routing and delivery state; its steps and optional payload snapshots are written with each
attempt's outcome. Methods are synchronous (SQLAlchemy sessions); async callers go through
:meth:`MessageStore.call`. Accepting messages lives in ``store_intake``, reading in
``store_reads``.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy import (
    Connection,
    Engine,
)
from sqlalchemy.orm import Session, sessionmaker

from d365sap.engine import attempts
from d365sap.engine import store_sql as sql
from d365sap.engine.attempts import Started
from d365sap.engine.db import make_engine, migrate
from d365sap.engine.guard import mark_applied, mark_applied_many
from d365sap.engine.loop_engines import LoopEngines
from d365sap.engine.runtime import DbHandle
from d365sap.engine.store_intake import Arrival as Arrival
from d365sap.engine.store_intake import StoreIntake
from d365sap.engine.store_intake import payload_hash as payload_hash
from d365sap.engine.store_reads import StoreReads
from d365sap.engine.trace import Trace
from d365sap.engine.views import (
    DONE,
    FINAL_STATUSES,
    RETRYING,
)

Masker = Callable[[str, str], str]
T = TypeVar("T")


def _now() -> datetime:
    return datetime.now(UTC)


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
    lock_key: str | None = None
    """The message's record and arrival number when the caller knows them (saves reading)."""
    seq: int | None = None


BatchHook = Callable[[DbHandle, "list[Settlement]"], None]
"""Runs once in a settle transaction with every attempt it records (a runtime ends their jobs)."""


class MessageStore(StoreReads, StoreIntake):
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

    def settle_many(
        self, settlements: list[Settlement], also: Sequence[BatchHook] = ()
    ) -> list[Exception | None]:
        """:meth:`settle` for several attempts in one transaction (group commit).

        ``also`` run in the same transaction after the attempts are recorded. If the
        transaction fails, each attempt is recorded on its own instead (with ``also`` for it
        alone), so one bad attempt cannot keep the others from being recorded; the result says
        which failed.
        """
        if len(settlements) > 1:
            try:
                with self.fast() as session:
                    self._settle_batch(session, settlements)
                    for hook in also:
                        hook(session, settlements)
            except Exception:  # noqa: S110 - each is retried alone below, errors reported
                pass
            else:
                return [None] * len(settlements)
        failures: list[Exception | None] = []
        for settlement in settlements:
            try:
                with self.fast() as session:
                    self._settle_in(session, settlement)
                    for hook in also:
                        hook(session, [settlement])
            except Exception as exc:
                failures.append(exc)
            else:
                failures.append(None)
        return failures

    def _settle_batch(self, session: DbHandle, settlements: list[Settlement]) -> None:
        """Record several attempts with one statement per kind of row, whatever their number.

        Attempts whose record is known go into two pipelined updates (final or not) and one
        insert of applied records; the others are recorded one by one.
        """
        now = _now()
        updates: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
        applied: dict[str, tuple[str, int, str]] = {}
        steps: list[dict[str, Any]] = []
        for settlement in settlements:
            if settlement.lock_key is None or settlement.seq is None:
                self._settle_in(session, settlement, steps)
                continue
            params = self._settle_params(settlement, now)
            updates[params["status"] in FINAL_STATUSES].append(params)
            if params["status"] == DONE:
                newest = applied.get(settlement.lock_key)
                if newest is None or newest[1] < settlement.seq:
                    entry = (settlement.lock_key, settlement.seq, settlement.message_id)
                    applied[settlement.lock_key] = entry
            self._record_trace(session, settlement, now, steps)
        for final, rows in updates.items():
            if rows:
                result = session.execute(sql.SETTLE_ONE[final], rows)
                if result.rowcount != len(rows):  # type: ignore[attr-defined]
                    raise LookupError("a message to settle is not in the store")
        mark_applied_many(session, list(applied.values()))
        if steps:
            session.execute(sql.INSERT_STEPS, steps)

    @staticmethod
    def _settle_params(settlement: Settlement, now: datetime) -> dict[str, Any]:
        outcome = settlement.outcome
        return {
            "mid": settlement.message_id,
            "status": RETRYING if settlement.next_attempt_at is not None else outcome.status,
            "outcome": outcome.outcome,
            "http_status": outcome.http_status,
            "result": outcome.result,
            "error": outcome.error,
            "next_attempt_at": settlement.next_attempt_at,
            "now": now,
        }

    def _settle_in(
        self,
        session: DbHandle,
        settlement: Settlement,
        step_rows: list[dict[str, Any]] | None = None,
    ) -> None:
        """Record one attempt; its steps go to ``step_rows`` when given (the caller inserts)."""
        now = _now()
        params = self._settle_params(settlement, now)
        status = params["status"]
        row = session.execute(sql.SETTLE[status in FINAL_STATUSES], params).one()
        if status == DONE and row.lock_key:
            mark_applied(session, row.lock_key, row.seq, settlement.message_id)
        rows: list[dict[str, Any]] = [] if step_rows is None else step_rows
        self._record_trace(session, settlement, now, rows)
        if step_rows is None and rows:  # no caller to insert them with others
            session.execute(sql.INSERT_STEPS, rows)

    def _record_trace(
        self,
        session: DbHandle,
        settlement: Settlement,
        now: datetime,
        step_rows: list[dict[str, Any]],
    ) -> None:
        """An attempt's steps (added to ``step_rows``), its snapshots and its ``within`` hook."""
        step_rows.extend(sql.step_rows(settlement.message_id, settlement.attempt, settlement.trace))
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

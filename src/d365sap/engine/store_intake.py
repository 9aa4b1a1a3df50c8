"""Accepting messages into the store: numbered, deduplicated and queued in one transaction.

Messages that arrive together share one transaction (group commit). Their rows go to the
database in one multi-row insert and their jobs to the runtime in one call, so a batch costs a
few round trips whatever its size; the duplicate checks still see the messages before them in
the batch, as if each had been inserted on its own.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from d365sap.engine import store_sql as sql
from d365sap.engine.runtime import DbHandle, Enqueuer, JobRequest, enqueue_all
from d365sap.engine.views import FAILED, QUEUED, SUPERSEDED, MessageView, view_of

# A repeat of the latest message of a record is a duplicate, unless that one ended like this:
REPEATABLE_STATUSES = frozenset({FAILED, SUPERSEDED})


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


@dataclass
class _Pending:
    """A batch's messages not yet written: rows, jobs and each record's latest new message."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[JobRequest] = field(default_factory=list)
    latest: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def write(self, session: DbHandle, enqueuer: Enqueuer) -> None:
        if self.rows:
            # Version 1 lives in the message row alone until a resubmission replaces it there
            # (keep_first_version): most messages are never edited, so it is written once.
            session.execute(sql.INSERT_MESSAGE, self.rows)
            enqueue_all(enqueuer, session, self.jobs)


class StoreIntake:
    """The intake side of :class:`~d365sap.engine.store.MessageStore`."""

    def fast(self) -> AbstractContextManager[DbHandle]:
        raise NotImplementedError

    def find_by_source(self, flow: str, source_id: str) -> MessageView | None:
        raise NotImplementedError

    def accept(self, arrival: Arrival, enqueuer: Enqueuer) -> tuple[MessageView, bool]:
        """Store and enqueue a new message in one transaction, unless it is a duplicate.

        A duplicate (same source id, or without one the same payload as the latest message of
        the same record) returns the first message and ``True``.
        """
        try:
            with self.fast() as session:
                pending = _Pending()
                result = self._accept_in(session, arrival, pending, None)
                pending.write(session, enqueuer)
                return result
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
                pending = _Pending()
                for arrival in arrivals:
                    results.append(self._accept_in(session, arrival, pending, seqs))
                pending.write(session, enqueuer)
        except IntegrityError:
            return [self.accept(arrival, enqueuer) for arrival in arrivals]
        return results

    def _accept_in(
        self,
        session: DbHandle,
        arrival: Arrival,
        pending: _Pending,
        seqs: Iterator[int] | None,
    ) -> tuple[MessageView, bool]:
        """One message of :meth:`accept` or :meth:`accept_many`, added to ``pending``.

        ``seqs`` holds arrival numbers reserved for a batch; without it one is reserved here.
        """
        message_id = new_message_id()
        lock_key = self._lock_key(arrival, message_id)
        digest = payload_hash(arrival.payload)
        record = (arrival.flow, lock_key)
        if arrival.source_id is None:
            earlier = pending.latest.get(record)
            if earlier is not None:  # a new message of the same record earlier in the batch
                if earlier["payload_hash"] == digest:
                    return view_of(earlier), True
            else:
                first = self._same_as_latest(session, arrival.flow, lock_key, digest)
                if first is not None:
                    return first, True
        seq = next(seqs) if seqs is not None else self._next_seqs(session, 1)[0]
        values = self._row(arrival, message_id, lock_key, digest, seq)
        pending.rows.append(values)
        pending.jobs.append(
            JobRequest(message_id=message_id, queue=arrival.queue, lock_key=lock_key, new=True)
        )
        pending.latest[record] = values
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
    def _row(
        arrival: Arrival, message_id: str, lock_key: str, digest: str, seq: int
    ) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {
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

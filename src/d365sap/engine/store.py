"""The message store: every inbound message is persisted before it is processed.

A message row holds the payload (needed to process, retry and reprocess it), its routing, status
and final result; its steps and optional payload snapshots are written with the outcome. Methods
are synchronous (SQLAlchemy sessions); async callers run them in a worker thread.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from d365sap.engine.db import make_engine, migrate
from d365sap.engine.tables import MessageRow, PayloadRow, StepRow
from d365sap.engine.trace import Trace

Masker = Callable[[str, str], str]

RECEIVED = "received"
PROCESSING = "processing"
DONE = "done"
DISCARDED = "discarded"
FAILED = "failed"
FINAL_STATUSES = frozenset({DONE, DISCARDED, FAILED})


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class StepView:
    """A processing step as stored."""

    attempt: int
    seq: int
    name: str
    status: str
    started_at: datetime
    duration_ms: float
    detail: str | None
    backend_status: int | None
    backend_reply: str | None


@dataclass(frozen=True)
class PayloadView:
    """A payload snapshot as stored."""

    stage: str
    content_type: str
    body: str


@dataclass(frozen=True)
class MessageView:
    """A read-only copy of a message row (and, when asked for, its steps and snapshots)."""

    id: str
    flow: str
    source_id: str | None
    business_key: str | None
    route: str | None
    status: str
    outcome: str | None
    http_status: int | None
    error: str | None
    result: dict[str, Any] | None
    content_type: str
    payload: bytes
    correlation_id: str
    attempts: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    steps: tuple[StepView, ...] = field(default_factory=tuple)
    payloads: tuple[PayloadView, ...] = field(default_factory=tuple)


def _view(
    row: MessageRow, steps: Sequence[StepRow] = (), payloads: Sequence[PayloadRow] = ()
) -> MessageView:
    return MessageView(
        id=row.id,
        flow=row.flow,
        source_id=row.source_id,
        business_key=row.business_key,
        route=row.route,
        status=row.status,
        outcome=row.outcome,
        http_status=row.http_status,
        error=row.error,
        result=dict(row.result) if row.result is not None else None,
        content_type=row.content_type,
        payload=row.payload,
        correlation_id=row.correlation_id,
        attempts=row.attempts,
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
        steps=tuple(
            StepView(
                attempt=s.attempt,
                seq=s.seq,
                name=s.name,
                status=s.status,
                started_at=s.started_at,
                duration_ms=s.duration_ms,
                detail=s.detail,
                backend_status=s.backend_status,
                backend_reply=s.backend_reply,
            )
            for s in steps
        ),
        payloads=tuple(
            PayloadView(stage=p.stage, content_type=p.content_type, body=p.body) for p in payloads
        ),
    )


class MessageStore:
    """Persistence of messages, their steps and outcomes."""

    def __init__(self, engine: Engine, *, masker: Masker | None = None) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._masker = masker

    @classmethod
    def open(cls, url: str, *, masker: Masker | None = None) -> MessageStore:
        """Connect to ``url`` and migrate the schema to the newest revision."""
        engine = make_engine(url)
        migrate(engine)
        return cls(engine, masker=masker)

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    def accept(
        self,
        *,
        flow: str,
        payload: bytes,
        content_type: str,
        correlation_id: str,
        source_id: str | None = None,
    ) -> tuple[MessageView, bool]:
        """Persist a new inbound message; with a known ``source_id`` return the first one instead.

        Returns the message and whether it was a duplicate.
        """
        now = _now()
        row = MessageRow(
            id=str(uuid.uuid4()),
            flow=flow,
            source_id=source_id,
            status=RECEIVED,
            content_type=content_type,
            payload=payload,
            correlation_id=correlation_id,
            attempts=0,
            created_at=now,
            updated_at=now,
        )
        try:
            with self._sessions.begin() as session:
                session.add(row)
        except IntegrityError:
            if source_id is None:
                raise
            existing = self.find_by_source(flow, source_id)
            if existing is None:
                raise
            return existing, True
        return _view(row), False

    def find_by_source(self, flow: str, source_id: str) -> MessageView | None:
        """The message accepted earlier with this source id, if any."""
        with self._sessions() as session:
            row = session.scalars(
                select(MessageRow).where(MessageRow.flow == flow, MessageRow.source_id == source_id)
            ).first()
            return _view(row) if row else None

    def start_attempt(self, message_id: str, *, route: str | None, business_key: str | None) -> int:
        """Mark the message as being processed; returns the attempt number (1, 2, …)."""
        with self._sessions.begin() as session:
            row = session.get_one(MessageRow, message_id)
            row.attempts += 1
            row.status = PROCESSING
            row.route = route
            row.business_key = business_key
            row.updated_at = _now()
            return row.attempts

    def complete(
        self,
        message_id: str,
        *,
        attempt: int,
        status: str,
        outcome: str | None,
        http_status: int | None,
        result: dict[str, Any] | None,
        error: str | None,
        trace: Trace,
    ) -> None:
        """Write the outcome, the steps and the snapshots of one attempt in one transaction."""
        now = _now()
        with self._sessions.begin() as session:
            row = session.get_one(MessageRow, message_id)
            row.status = status
            row.outcome = outcome
            row.http_status = http_status
            row.result = result
            row.error = error
            row.updated_at = now
            if status in FINAL_STATUSES:
                row.finished_at = now
            self._add_trace(session, message_id, attempt, trace, now)

    def _add_trace(
        self, session: Session, message_id: str, attempt: int, trace: Trace, now: datetime
    ) -> None:
        for seq, step in enumerate(trace.steps, start=1):
            session.add(
                StepRow(
                    message_id=message_id,
                    attempt=attempt,
                    seq=seq,
                    name=step.name,
                    status=step.status,
                    started_at=step.started_at,
                    duration_ms=step.duration_ms,
                    detail=step.detail,
                    backend_status=step.backend_status,
                    backend_reply=step.backend_reply,
                )
            )
        for snap in trace.snapshots:
            body = self._masker(snap.body, snap.content_type) if self._masker else snap.body
            session.add(
                PayloadRow(
                    message_id=message_id,
                    stage=snap.stage,
                    content_type=snap.content_type,
                    body=body,
                    created_at=now,
                )
            )

    def get(self, message_id: str) -> MessageView | None:
        """One message with its steps and payload snapshots."""
        with self._sessions() as session:
            row = session.get(MessageRow, message_id)
            if row is None:
                return None
            steps = session.scalars(
                select(StepRow)
                .where(StepRow.message_id == message_id)
                .order_by(StepRow.attempt, StepRow.seq)
            ).all()
            payloads = session.scalars(
                select(PayloadRow)
                .where(PayloadRow.message_id == message_id)
                .order_by(PayloadRow.id)
            ).all()
            return _view(row, steps, payloads)

    def list(
        self,
        *,
        flow: str | None = None,
        status: str | None = None,
        business_key: str | None = None,
        limit: int = 50,
    ) -> list[MessageView]:
        """Newest messages first, optionally filtered."""
        query = select(MessageRow).order_by(MessageRow.created_at.desc()).limit(limit)
        if flow:
            query = query.where(MessageRow.flow == flow)
        if status:
            query = query.where(MessageRow.status == status)
        if business_key:
            query = query.where(MessageRow.business_key == business_key)
        with self._sessions() as session:
            return [_view(row) for row in session.scalars(query).all()]

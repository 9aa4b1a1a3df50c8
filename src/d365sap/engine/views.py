"""Read-only views of stored messages, handed to the web layer, the CLI and the runtimes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from d365sap.engine.tables import MessageRow, MessageVersionRow, PayloadRow, StepRow

RECEIVED = "received"
QUEUED = "queued"
PROCESSING = "processing"
RETRYING = "retrying"
DONE = "done"
DISCARDED = "discarded"
FAILED = "failed"
SUPERSEDED = "superseded"
FINAL_STATUSES = frozenset({DONE, DISCARDED, FAILED, SUPERSEDED})
OPEN_STATUSES = frozenset({RECEIVED, QUEUED, PROCESSING, RETRYING})


def aware(moment: datetime) -> datetime:
    """SQLite hands datetimes back without a zone; every stored time is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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
class VersionView:
    """One payload version of a message."""

    version: int
    content_type: str
    payload: bytes
    comment: str | None
    created_at: datetime


@dataclass(frozen=True)
class MessageView:
    """A read-only copy of a message row (and, when asked for, its history)."""

    id: str
    flow: str
    seq: int
    source_id: str | None
    business_key: str | None
    route: str | None
    queue: str
    lock_key: str | None
    status: str
    outcome: str | None
    http_status: int | None
    error: str | None
    result: dict[str, Any] | None
    content_type: str
    payload: bytes
    version: int
    correlation_id: str
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    steps: tuple[StepView, ...] = field(default_factory=tuple)
    payloads: tuple[PayloadView, ...] = field(default_factory=tuple)
    versions: tuple[VersionView, ...] = field(default_factory=tuple)

    @property
    def final(self) -> bool:
        """Whether nothing more will happen to the message without an operator."""
        return self.status in FINAL_STATUSES


def message_view(
    row: MessageRow,
    steps: Sequence[StepRow] = (),
    payloads: Sequence[PayloadRow] = (),
    versions: Sequence[MessageVersionRow] = (),
) -> MessageView:
    """Copy ``row`` and its history into an immutable view."""
    columns = {column.key: getattr(row, column.key) for column in row.__table__.columns}
    return replace(
        view_of(columns),
        steps=tuple(
            StepView(
                attempt=s.attempt,
                seq=s.seq,
                name=s.name,
                status=s.status,
                started_at=aware(s.started_at),
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
        versions=tuple(
            VersionView(
                version=v.version,
                content_type=v.content_type,
                payload=v.payload,
                comment=v.comment,
                created_at=aware(v.created_at),
            )
            for v in versions
        ),
    )


def view_of(values: Mapping[Any, Any]) -> MessageView:
    """A view from the message table's columns (a Core row mapping or a dict)."""

    def moment(name: str) -> datetime | None:
        value = values.get(name)
        return aware(value) if value is not None else None

    result = values.get("result")
    return MessageView(
        id=values["id"],
        flow=values["flow"],
        seq=values["seq"],
        source_id=values.get("source_id"),
        business_key=values.get("business_key"),
        route=values.get("route"),
        queue=values["queue"],
        lock_key=values.get("lock_key"),
        status=values["status"],
        outcome=values.get("outcome"),
        http_status=values.get("http_status"),
        error=values.get("error"),
        result=dict(result) if result is not None else None,
        content_type=values["content_type"],
        payload=values["payload"],
        version=values["version"],
        correlation_id=values["correlation_id"],
        attempts=values["attempts"],
        next_attempt_at=moment("next_attempt_at"),
        created_at=aware(values["created_at"]),
        updated_at=aware(values["updated_at"]),
        finished_at=moment("finished_at"),
    )

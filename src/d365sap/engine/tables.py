"""The message store's tables.

One row per inbound message (its current payload, arrival number and delivery state), every
payload version, one row per processing step with timings and the back end's reply, optional
payload snapshots, the embedded runtime's job queue, and the last-applied message per record.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with deterministic constraint names (needed by Alembic on SQLite)."""

    metadata = MetaData(naming_convention=NAMING)


class MessageRow(Base):
    """An inbound business message and its current outcome."""

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("flow", "source_id", name="uq_messages_flow_source_id"),
        Index("ix_messages_status_created", "status", "created_at"),
        Index("ix_messages_flow_lock_key_seq", "flow", "lock_key", "seq"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    flow: Mapped[str] = mapped_column(String(64))
    source_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    business_key: Mapped[str | None] = mapped_column(String(200), nullable=True, index=True)
    route: Mapped[str | None] = mapped_column(String(32), nullable=True)
    status: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)
    content_type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    correlation_id: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    seq: Mapped[int] = mapped_column(BigInteger, default=0, index=True)
    payload_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    queue: Mapped[str] = mapped_column(String(32), default="default")
    lock_key: Mapped[str | None] = mapped_column(String(300), nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class StepRow(Base):
    """One step of processing a message: what was done, how long it took, what the back end said."""

    __tablename__ = "message_steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    seq: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_ms: Mapped[float] = mapped_column(Float)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    backend_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    backend_reply: Mapped[str | None] = mapped_column(Text, nullable=True)


class PayloadRow(Base):
    """A copy of the payload at one stage (only with payload logging on; PII masked by default)."""

    __tablename__ = "message_payloads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    stage: Mapped[str] = mapped_column(String(32))
    content_type: Mapped[str] = mapped_column(String(100))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MessageVersionRow(Base):
    """Every payload a message has had: version 1 as received, later ones edited by an operator."""

    __tablename__ = "message_versions"
    __table_args__ = (
        UniqueConstraint("message_id", "version", name="uq_message_versions_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class JobRow(Base):
    """The embedded runtime's queue: one row per message waiting or running.

    The autoincrement id is the order of enqueueing; a job runs only when no earlier job of the
    same lock key is still queued or running (per-key ordering). Finished jobs are deleted.
    """

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(ForeignKey("messages.id"), unique=True)
    queue: Mapped[str] = mapped_column(String(32))
    lock_key: Mapped[str] = mapped_column(String(300), index=True)
    status: Mapped[str] = mapped_column(String(8))
    run_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    locked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    blocked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """An earlier job of the same lock key is still in the table (see engine.queue)."""

    __table_args__ = (Index("ix_jobs_ready", "blocked", "status", "id"),)


class RecordVersionRow(Base):
    """The newest message applied to one target record: older messages are superseded."""

    __tablename__ = "record_versions"

    record_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    message_seq: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[str] = mapped_column(String(36))
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CounterRow(Base):
    """Named counters; ``message_seq`` numbers messages in arrival order across processes."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class CheckpointRow(Base):
    """Where a paged or change-tracked read of a remote system stands (``engine/checkpoints``).

    ``delta_link`` is where the next pass starts (the last complete delta link); ``next_link``
    the page to continue with inside the current pass. ``revision`` grows with every save, so two
    loaders of one name cannot both advance it.
    """

    __tablename__ = "sync_checkpoints"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    phase: Mapped[str] = mapped_column(String(16))
    next_link: Mapped[str | None] = mapped_column(Text, nullable=True)
    delta_link: Mapped[str | None] = mapped_column(Text, nullable=True)
    pass_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    pages: Mapped[int] = mapped_column(BigInteger, default=0)
    rows: Mapped[int] = mapped_column(BigInteger, default=0)
    emitted: Mapped[int] = mapped_column(BigInteger, default=0)
    emitted_total: Mapped[int] = mapped_column(BigInteger, default=0)
    passes: Mapped[int] = mapped_column(BigInteger, default=0)
    alarm: Mapped[str | None] = mapped_column(Text, nullable=True)
    revision: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SourceVersionRow(Base):
    """The version of a source row last handed on, per checkpoint: what a re-baseline compares."""

    __tablename__ = "source_versions"
    __table_args__ = (Index("ix_source_versions_source_pass", "source", "pass_id"),)

    source: Mapped[str] = mapped_column(String(200), primary_key=True)
    row_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[str] = mapped_column(String(64))
    pass_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ThrottleRow(Base):
    """One remote's shared throttle: the pause every caller honours (Unix time, seconds)."""

    __tablename__ = "throttles"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    paused_until: Mapped[float] = mapped_column(Float, default=0.0)
    revision: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ThrottleGrantRow(Base):
    """Requests granted to one process at one time, counted against the sliding window."""

    __tablename__ = "throttle_grants"
    __table_args__ = (Index("ix_throttle_grants_name_granted", "name", "granted_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    granted_at: Mapped[float] = mapped_column(Float)
    requests: Mapped[int] = mapped_column(Integer)


class KeyRegistryRow(Base):
    """Which SAP customer a Dataverse record became, reserved before the write (``engine/xref``).

    One row per target system and Dataverse account: the customer itself (empty sales area, no
    detail) and each sales area (with the ERP account detail it came from). The unique
    constraints keep two messages from reserving one record and two records from claiming one
    SAP customer and sales area.
    """

    __tablename__ = "key_registry"
    __table_args__ = (
        UniqueConstraint(
            "target_system",
            "account_id",
            "sales_org",
            "distribution_channel",
            "division",
            name="uq_key_registry_record",
        ),
        UniqueConstraint("target_system", "detail_id", name="uq_key_registry_detail"),
        UniqueConstraint(
            "target_system",
            "customer",
            "sales_org",
            "distribution_channel",
            "division",
            name="uq_key_registry_customer",
        ),
        Index("ix_key_registry_partner", "target_system", "business_partner"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target_system: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str] = mapped_column(String(64))
    detail_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    sales_org: Mapped[str] = mapped_column(String(10), default="")
    distribution_channel: Mapped[str] = mapped_column(String(10), default="")
    division: Mapped[str] = mapped_column(String(10), default="")
    business_partner: Mapped[str | None] = mapped_column(String(20), nullable=True)
    customer: Mapped[str | None] = mapped_column(String(20), nullable=True)
    state: Mapped[str] = mapped_column(String(16))
    reserved_by: Mapped[str] = mapped_column(String(64))
    reserved_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    confirmed_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

"""The outbox's tables (``engine/outbox``): requests packed from several messages, and their items.

Kept beside ``tables`` on the same declarative base (same naming convention, same metadata once
imported); created by migration 0005.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from d365sap.engine.tables import Base


class OutboxBatchRow(Base):
    """One request carrying the items of several messages, written before it is sent.

    ``id`` is the request's own id (the bulk message's ``MessageHeader/ID``): sending the same
    row again sends the same request with the same id, which the receiver recognises.
    """

    __tablename__ = "outbox_batches"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    channel: Mapped[str] = mapped_column(String(64))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16))
    item_count: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class OutboxItemRow(Base):
    """One message's part of a batch, and what the receiver later made of it."""

    __tablename__ = "outbox_items"
    __table_args__ = (
        UniqueConstraint("batch_id", "position", name="uq_outbox_items_position"),
        Index("ix_outbox_items_state_sent", "state", "sent_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("outbox_batches.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    message_id: Mapped[str] = mapped_column(String(36), index=True)
    reference: Mapped[str] = mapped_column(String(100), index=True)
    state: Mapped[str] = mapped_column(String(16))
    target_ref: Mapped[str | None] = mapped_column(String(40), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    settled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

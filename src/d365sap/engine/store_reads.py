"""Reading the message store: one message with its history, lists, counts.

Kept apart from the writing side (``store``), which owns transactions and the hot path; these
run on short read sessions and never write.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from d365sap.engine.store_sql import FIRST_VERSION_COMMENT
from d365sap.engine.tables import MessageRow, MessageVersionRow, PayloadRow, StepRow
from d365sap.engine.views import MessageView, VersionView, message_view


class StoreReads:
    """The read side of :class:`~d365sap.engine.store.MessageStore`."""

    @property
    def sessions(self) -> sessionmaker[Session]:
        """ORM sessions on the store's database (given by the store)."""
        raise NotImplementedError

    def find_by_source(self, flow: str, source_id: str) -> MessageView | None:
        """The message accepted earlier with this source id, if any."""
        with self.sessions() as session:
            row = session.scalars(
                select(MessageRow).where(MessageRow.flow == flow, MessageRow.source_id == source_id)
            ).first()
            return message_view(row) if row else None

    # -- reading ------------------------------------------------------------------------------

    def get(self, message_id: str) -> MessageView | None:
        """One message with its steps, payload snapshots and versions."""
        with self.sessions() as session:
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
            versions = session.scalars(
                select(MessageVersionRow)
                .where(MessageVersionRow.message_id == message_id)
                .order_by(MessageVersionRow.version)
            ).all()
            view = message_view(row, steps, payloads, versions)
        if not view.versions:  # never resubmitted: the row holds the one version
            first = VersionView(
                version=view.version,
                content_type=view.content_type,
                payload=view.payload,
                comment=FIRST_VERSION_COMMENT,
                created_at=view.created_at,
            )
            view = replace(view, versions=(first,))
        return view

    def status_of(self, message_id: str) -> MessageView | None:
        """The message row alone (cheap, for polling)."""
        with self.sessions() as session:
            row = session.get(MessageRow, message_id)
            return message_view(row) if row else None

    def list(
        self,
        *,
        flow: str | None = None,
        status: str | None = None,
        business_key: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = 50,
        oldest_first: bool = False,
    ) -> list[MessageView]:
        """Messages, newest first (or oldest first), optionally filtered."""
        order = MessageRow.seq.asc() if oldest_first else MessageRow.seq.desc()
        query = select(MessageRow).order_by(order)
        if limit is not None:
            query = query.limit(limit)
        if flow:
            query = query.where(MessageRow.flow == flow)
        if status:
            query = query.where(MessageRow.status == status)
        if business_key:
            query = query.where(MessageRow.business_key == business_key)
        if since:
            query = query.where(MessageRow.created_at >= since)
        if until:
            query = query.where(MessageRow.created_at <= until)
        with self.sessions() as session:
            return [message_view(row) for row in session.scalars(query).all()]

    def counts(self) -> dict[str, int]:
        """How many messages are in each status."""
        with self.sessions() as session:
            rows = session.execute(
                select(MessageRow.status, func.count()).group_by(MessageRow.status)
            ).all()
        return {str(status): int(count) for status, count in rows}

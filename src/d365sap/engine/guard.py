"""The last-applied guard: an older message never overwrites what a newer one wrote.

Each target record (flow, route and business key) remembers the arrival number of the newest
message applied to it. A message that arrived before that one and is processed later (a retry, a
resubmission, a slow worker) is marked superseded instead of being sent.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from d365sap.engine.tables import RecordVersionRow


def newer_applied(session: Session, record_key: str, seq: int) -> str | None:
    """The id of a newer message already applied to ``record_key``, if any."""
    row = session.get(RecordVersionRow, record_key)
    if row is not None and row.message_seq > seq:
        return row.message_id
    return None


def mark_applied(session: Session, record_key: str, seq: int, message_id: str) -> None:
    """Remember that message ``seq`` was applied to ``record_key`` (keeps the newest)."""
    row = session.get(RecordVersionRow, record_key, with_for_update=True)
    now = datetime.now(UTC)
    if row is None:
        session.add(
            RecordVersionRow(
                record_key=record_key, message_seq=seq, message_id=message_id, applied_at=now
            )
        )
    elif seq >= row.message_seq:
        row.message_seq = seq
        row.message_id = message_id
        row.applied_at = now

"""The last-applied guard: an older message never overwrites what a newer one wrote.

Each target record (flow, route and business key) remembers the arrival number of the newest
message applied to it. A message that arrived before that one and is processed later (a retry, a
resubmission, a slow worker) is marked superseded instead of being sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Table, bindparam, insert, select, update

from d365sap.engine.runtime import DbHandle
from d365sap.engine.tables import RecordVersionRow

RECORDS = cast(Table, RecordVersionRow.__table__)
_APPLIED = select(RECORDS.c.message_seq, RECORDS.c.message_id).where(
    RECORDS.c.record_key == bindparam("key")
)
_ADVANCE = (
    update(RECORDS)
    .where(RECORDS.c.record_key == bindparam("key"), RECORDS.c.message_seq <= bindparam("seq"))
    .values(message_seq=bindparam("seq"), message_id=bindparam("mid"), applied_at=bindparam("now"))
)
_ADD = insert(RECORDS).values(
    record_key=bindparam("key"),
    message_seq=bindparam("seq"),
    message_id=bindparam("mid"),
    applied_at=bindparam("now"),
)


def newer_applied(session: DbHandle, record_key: str, seq: int) -> str | None:
    """The id of a newer message already applied to ``record_key``, if any."""
    row = session.execute(_APPLIED, {"key": record_key}).first()
    if row is not None and row.message_seq > seq:
        return str(row.message_id)
    return None


def mark_applied(session: DbHandle, record_key: str, seq: int, message_id: str) -> None:
    """Remember that message ``seq`` was applied to ``record_key`` (keeps the newest)."""
    params = {"key": record_key, "seq": seq, "mid": message_id, "now": datetime.now(UTC)}
    if session.execute(_ADVANCE, params).rowcount:  # type: ignore[attr-defined]
        return
    if session.execute(_APPLIED, {"key": record_key}).first() is None:
        session.execute(_ADD, params)

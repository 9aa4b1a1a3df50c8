"""The last-applied guard: an older message never overwrites what a newer one wrote.

Each target record (flow, route and business key) remembers the arrival number of the newest
message applied to it. A message that arrived before that one and is processed later (a retry, a
resubmission, a slow worker) is marked superseded instead of being sent.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import cast

from sqlalchemy import Connection, Table, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite

from d365sap.engine.runtime import DbHandle
from d365sap.engine.tables import RecordVersionRow

RECORDS = cast(Table, RecordVersionRow.__table__)
_APPLIED = select(RECORDS.c.message_seq, RECORDS.c.message_id).where(
    RECORDS.c.record_key == bindparam("key")
)


def _advance(
    insert: type[sqlite.Insert] | type[postgresql.Insert],
) -> sqlite.Insert | postgresql.Insert:
    """One statement: add the record, or move it to a newer message (never to an older one)."""
    statement = insert(RECORDS).values(
        record_key=bindparam("key"),
        message_seq=bindparam("seq"),
        message_id=bindparam("mid"),
        applied_at=bindparam("now"),
    )
    return statement.on_conflict_do_update(
        index_elements=[RECORDS.c.record_key],
        set_={
            "message_seq": statement.excluded.message_seq,
            "message_id": statement.excluded.message_id,
            "applied_at": statement.excluded.applied_at,
        },
        where=RECORDS.c.message_seq <= statement.excluded.message_seq,
    )


_ADVANCE = {"sqlite": _advance(sqlite.Insert), "postgresql": _advance(postgresql.Insert)}


def newer_applied(session: DbHandle, record_key: str, seq: int) -> str | None:
    """The id of a newer message already applied to ``record_key``, if any."""
    row = session.execute(_APPLIED, {"key": record_key}).first()
    if row is not None and row.message_seq > seq:
        return str(row.message_id)
    return None


def mark_applied(session: DbHandle, record_key: str, seq: int, message_id: str) -> None:
    """Remember that message ``seq`` was applied to ``record_key`` (keeps the newest)."""
    mark_applied_many(session, [(record_key, seq, message_id)])


def mark_applied_many(session: DbHandle, applied: list[tuple[str, int, str]]) -> None:
    """:func:`mark_applied` for several ``(record_key, seq, message_id)`` in one executemany."""
    if not applied:
        return
    dialect = session.dialect if isinstance(session, Connection) else session.get_bind().dialect
    now = datetime.now(UTC)
    rows = [{"key": key, "seq": seq, "mid": mid, "now": now} for key, seq, mid in applied]
    session.execute(_ADVANCE[dialect.name], rows if len(rows) > 1 else rows[0])

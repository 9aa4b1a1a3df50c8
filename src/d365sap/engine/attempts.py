"""Starting attempts: a queued message becomes ``processing`` with its next attempt number.

A message is not started when it is already settled (``"final"``) or when a message of the same
record that arrived later was applied meanwhile (``"superseded"``, and marked so). Runtimes start
attempts while claiming jobs, inside the claim's transaction: the embedded one one message at a
time, the procrastinate one for every job of a fetch together, with one read and one update for
all of them instead of a transaction each.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row

from d365sap.engine import store_sql as sql
from d365sap.engine.runtime import DbHandle
from d365sap.engine.views import FINAL_STATUSES, PROCESSING, SUPERSEDED, MessageView, view_of

Started = tuple[MessageView, int] | str
"""An attempt begun (the message and its attempt number), or why not (``final``, ``superseded``)."""


def begin_in(session: DbHandle, message_id: str) -> Started:
    """Start an attempt of one message inside the caller's transaction."""
    row = session.execute(sql.MESSAGE_FOR_UPDATE, {"mid": message_id}).first()
    now = datetime.now(UTC)
    started, changes = _start(session, row, now)
    if changes is not None:
        session.execute(sql.START_ATTEMPT, changes)
    return started


def begin_many(session: DbHandle, message_ids: Sequence[str]) -> dict[str, Started]:
    """:func:`begin_in` for several messages: one locking read, one batched update."""
    if not message_ids:
        return {}
    rows = {
        row.id: row for row in session.execute(sql.MESSAGES_FOR_UPDATE, {"mids": list(message_ids)})
    }
    now = datetime.now(UTC)
    results: dict[str, Started] = {}
    updates: list[dict[str, Any]] = []
    for message_id in message_ids:
        started, changes = _start(session, rows.get(message_id), now)
        results[message_id] = started
        if changes is not None:
            updates.append(changes)
    if updates:
        session.execute(sql.START_ATTEMPT, updates)
    return results


def _start(
    session: DbHandle, row: Row[Any] | None, now: datetime
) -> tuple[Started, dict[str, Any] | None]:
    """Decide about one locked message row: the result and the start's update, if any."""
    if row is None or row.status in FINAL_STATUSES:
        return "final", None
    newer = row.applied_id if row.applied_seq is not None and row.applied_seq > row.seq else None
    if newer is not None:
        session.execute(
            sql.UPDATE_MESSAGE.values(
                status=SUPERSEDED,
                outcome=SUPERSEDED,
                error=f"superseded by message {newer}, which arrived later",
                finished_at=now,
                updated_at=now,
                next_attempt_at=None,
            ),
            {"mid": row.id},
        )
        return SUPERSEDED, None
    attempt = row.attempts + 1
    changes = {
        "attempts": attempt,
        "status": PROCESSING,
        "next_attempt_at": None,
        "updated_at": now,
    }
    return (view_of({**row._mapping, **changes}), attempt), {"mid": row.id, **changes}

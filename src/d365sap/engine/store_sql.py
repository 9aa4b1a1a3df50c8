"""The message store's statements (built once, so SQLAlchemy reuses their compiled form) and rows.

Every message goes through these on its way in, into processing and out; building a statement
per call (``update(...).values(...)``) cost more CPU than executing it.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, exists, insert, literal, select, update

from d365sap.engine.guard import RECORDS
from d365sap.engine.tables import CounterRow, MessageRow, MessageVersionRow, PayloadRow, StepRow
from d365sap.engine.trace import Trace

MESSAGE_SEQ = "message_seq"
MESSAGES = cast(Table, MessageRow.__table__)
VERSIONS = cast(Table, MessageVersionRow.__table__)
STEPS = cast(Table, StepRow.__table__)
COUNTERS = cast(Table, CounterRow.__table__)

# Hot-path statements, built once so SQLAlchemy reuses their compiled form.
LATEST_OF_RECORD = (
    select(MESSAGES)
    .where(MESSAGES.c.flow == bindparam("flow"), MESSAGES.c.lock_key == bindparam("lock_key"))
    .order_by(MESSAGES.c.seq.desc())
    .limit(1)
)
NEXT_SEQS = (
    update(COUNTERS)
    .where(COUNTERS.c.name == MESSAGE_SEQ)
    .values(value=COUNTERS.c.value + bindparam("count"))
    .returning(COUNTERS.c.value)
)
INSERT_MESSAGE = insert(MESSAGES)
FIRST_VERSION_COMMENT = "as received"
KEEP_FIRST_VERSION = insert(VERSIONS).from_select(
    ["message_id", "version", "content_type", "payload", "comment", "created_at"],
    select(
        MESSAGES.c.id,
        MESSAGES.c.version,
        MESSAGES.c.content_type,
        MESSAGES.c.payload,
        literal(FIRST_VERSION_COMMENT),
        MESSAGES.c.created_at,
    )
    .where(MESSAGES.c.id == bindparam("mid"))
    .where(~exists().where(VERSIONS.c.message_id == MESSAGES.c.id)),
)
INSERT_STEPS = insert(STEPS)
INSERT_PAYLOADS = insert(cast(Table, PayloadRow.__table__))
# A message with the newest message applied to its record, read in one statement and locked.
_WITH_APPLIED = select(
    MESSAGES,
    RECORDS.c.message_seq.label("applied_seq"),
    RECORDS.c.message_id.label("applied_id"),
).outerjoin(RECORDS, RECORDS.c.record_key == MESSAGES.c.lock_key)
MESSAGE_FOR_UPDATE = _WITH_APPLIED.where(MESSAGES.c.id == bindparam("mid")).with_for_update(
    of=MESSAGES
)
# The same for several messages, locked in id order (two claims never lock in opposite orders).
MESSAGES_FOR_UPDATE = (
    _WITH_APPLIED.where(MESSAGES.c.id.in_(bindparam("mids", expanding=True)))
    .order_by(MESSAGES.c.id)
    .with_for_update(of=MESSAGES)
)
UPDATE_MESSAGE = update(MESSAGES).where(MESSAGES.c.id == bindparam("mid"))
START_ATTEMPT = UPDATE_MESSAGE.values(
    attempts=bindparam("attempts"),
    status=bindparam("status"),
    next_attempt_at=bindparam("next_attempt_at"),
    updated_at=bindparam("updated_at"),
)
SETTLE_COLUMNS = ("status", "outcome", "http_status", "result", "error", "next_attempt_at")
# Recording an attempt, final or not: with RETURNING for one message whose record is not known,
# without for a batch of messages whose records are (one pipelined executemany).
SETTLE_ONE = {
    final: UPDATE_MESSAGE.values(
        {
            **{name: bindparam(name) for name in SETTLE_COLUMNS},
            "updated_at": bindparam("now"),
            **({"finished_at": bindparam("now")} if final else {}),
        }
    )
    for final in (False, True)
}
SETTLE = {
    final: statement.returning(MESSAGES.c.lock_key, MESSAGES.c.seq)
    for final, statement in SETTLE_ONE.items()
}


def step_rows(message_id: str, attempt: int, trace: Trace) -> list[dict[str, Any]]:
    """The rows of an attempt's steps, in order."""
    return [
        {
            "message_id": message_id,
            "attempt": attempt,
            "seq": seq,
            "name": step.name,
            "status": step.status,
            "started_at": step.started_at,
            "duration_ms": step.duration_ms,
            "detail": step.detail,
            "backend_status": step.backend_status,
            "backend_reply": step.backend_reply,
        }
        for seq, step in enumerate(trace.steps, start=1)
    ]

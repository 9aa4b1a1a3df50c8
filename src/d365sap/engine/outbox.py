"""The outbox: requests that carry the items of several messages, written before they are sent.

Some back ends take many business documents in one request (S/4's bulk message with several
sales orders). Each message still settles on its own, so the engine must remember, across
retries and restarts, which request a message's item went out in, and send exactly that request
again (same id, same body) when its fate is unknown:

1. :meth:`Outbox.record` writes the batch (``sending``) and one ``pending`` item per message in
   one transaction, **before** the request is sent;
2. the request: :meth:`mark_sent` on an acknowledgement (batch ``sent``, items ``sent``),
   :meth:`mark_refused` when the receiver refused it for good (nothing was taken: items
   ``refused``, free to go out again in another batch), :meth:`note_attempt` when the outcome
   is unknown (timeout, dropped connection, 5xx): the batch stays ``sending`` and is sent again
   as it is;
3. later the receiver says what became of each item: :meth:`settle_item` (``confirmed`` with the
   receiver's reference, ``rejected`` with its text, or ``overdue`` when it never said).

The engine knows nothing of what the bodies mean: ``reference`` is the business reference a
confirmation names (a Dynamics order id), ``target_ref`` the receiver's number for it. Methods
are synchronous like the store; async callers use ``MessageStore.call``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Table, func, select, update

from d365sap.engine.outbox_tables import OutboxBatchRow, OutboxItemRow
from d365sap.engine.store import MessageStore

BATCHES = cast(Table, OutboxBatchRow.__table__)
ITEMS = cast(Table, OutboxItemRow.__table__)

SENDING = "sending"
SENT = "sent"
REFUSED = "refused"
PENDING = "pending"
CONFIRMED = "confirmed"
REJECTED = "rejected"
OVERDUE = "overdue"
ITEM_STATES = frozenset({PENDING, SENT, REFUSED, CONFIRMED, REJECTED, OVERDUE})
OPEN_ITEM_STATES = frozenset({PENDING, SENT, OVERDUE})
"""The receiver may still hold (or create) the item: it must not go out in another batch."""
_ERROR_LIMIT = 4000


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class NewItem:
    """A message's part of a batch about to be recorded (``position`` from 1)."""

    message_id: str
    reference: str
    position: int


@dataclass(frozen=True)
class BatchView:
    """A recorded batch, with its body."""

    id: str
    channel: str
    body: bytes
    state: str
    item_count: int
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True)
class ItemView:
    """A recorded item."""

    id: int
    batch_id: str
    position: int
    message_id: str
    reference: str
    state: str
    target_ref: str | None
    detail: str | None
    created_at: datetime
    sent_at: datetime | None
    settled_at: datetime | None
    batch_items: int = 0

    @property
    def open(self) -> bool:
        """The receiver may hold the item (it must not be sent in another batch)."""
        return self.state in OPEN_ITEM_STATES


def _batch(row: Any) -> BatchView:
    return BatchView(
        id=row.id,
        channel=row.channel,
        body=bytes(row.body),
        state=row.state,
        item_count=row._mapping["item_count"],
        attempts=row.attempts,
        last_error=row.last_error,
        created_at=cast(datetime, _aware(row.created_at)),
        sent_at=_aware(row.sent_at),
    )


def _item(row: Any, batch_items: int = 0) -> ItemView:
    return ItemView(
        id=row.id,
        batch_id=row.batch_id,
        position=row.position,
        message_id=row.message_id,
        reference=row.reference,
        state=row.state,
        target_ref=row.target_ref,
        detail=row.detail,
        created_at=cast(datetime, _aware(row.created_at)),
        sent_at=_aware(row.sent_at),
        settled_at=_aware(row.settled_at),
        batch_items=batch_items,
    )


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


class Outbox:
    """The outbox in the message store's database."""

    def __init__(self, store: MessageStore) -> None:
        self.store = store

    # writing ---------------------------------------------------------------------------------

    def record(self, batch_id: str, channel: str, body: bytes, items: Sequence[NewItem]) -> None:
        """Write a batch about to be sent, with its items, in one transaction."""
        if not items:
            raise ValueError("a batch needs at least one item")
        now = _now()
        with self.store.write() as session:
            session.execute(
                BATCHES.insert().values(
                    id=batch_id,
                    channel=channel,
                    body=body,
                    state=SENDING,
                    item_count=len(items),
                    attempts=0,
                    last_error=None,
                    created_at=now,
                    updated_at=now,
                    sent_at=None,
                )
            )
            session.execute(
                ITEMS.insert(),
                [
                    {
                        "batch_id": batch_id,
                        "position": item.position,
                        "message_id": item.message_id,
                        "reference": item.reference,
                        "state": PENDING,
                        "target_ref": None,
                        "detail": None,
                        "created_at": now,
                        "updated_at": now,
                        "sent_at": None,
                        "settled_at": None,
                    }
                    for item in items
                ],
            )

    def mark_sent(self, batch_id: str) -> None:
        """The receiver took the batch: it and its pending items are ``sent``."""
        now = _now()
        with self.store.write() as session:
            session.execute(
                update(BATCHES)
                .where(BATCHES.c.id == batch_id, BATCHES.c.state != SENT)
                .values(
                    state=SENT,
                    attempts=BATCHES.c.attempts + 1,
                    last_error=None,
                    sent_at=now,
                    updated_at=now,
                )
            )
            session.execute(
                update(ITEMS)
                .where(ITEMS.c.batch_id == batch_id, ITEMS.c.state == PENDING)
                .values(state=SENT, sent_at=now, updated_at=now)
            )

    def mark_refused(self, batch_id: str, error: str) -> None:
        """The receiver refused the batch for good: nothing of it was taken."""
        now = _now()
        text = error[:_ERROR_LIMIT]
        with self.store.write() as session:
            session.execute(
                update(BATCHES)
                .where(BATCHES.c.id == batch_id, BATCHES.c.state == SENDING)
                .values(
                    state=REFUSED,
                    attempts=BATCHES.c.attempts + 1,
                    last_error=text,
                    updated_at=now,
                )
            )
            session.execute(
                update(ITEMS)
                .where(ITEMS.c.batch_id == batch_id, ITEMS.c.state == PENDING)
                .values(state=REFUSED, detail=text, settled_at=now, updated_at=now)
            )

    def note_attempt(self, batch_id: str, error: str) -> None:
        """A send whose outcome is unknown: the batch stays ``sending``, to be sent again."""
        with self.store.write() as session:
            session.execute(
                update(BATCHES)
                .where(BATCHES.c.id == batch_id, BATCHES.c.state == SENDING)
                .values(
                    attempts=BATCHES.c.attempts + 1,
                    last_error=error[:_ERROR_LIMIT],
                    updated_at=_now(),
                )
            )

    def settle_item(
        self,
        item_id: int,
        state: str,
        *,
        target_ref: str | None = None,
        detail: str | None = None,
    ) -> ItemView | None:
        """Record what the receiver made of an item; ``None`` when there is no such item.

        ``confirmed`` and ``rejected`` are final (a later word changes the reference and text
        only if it says the same); ``overdue`` applies to an item still ``sent``.
        """
        if state not in (CONFIRMED, REJECTED, OVERDUE):
            raise ValueError(f"an item cannot be settled as {state!r}")
        now = _now()
        allowed = (SENT, PENDING) if state == OVERDUE else (SENT, PENDING, OVERDUE, state)
        values: dict[str, Any] = {"state": state, "updated_at": now, "settled_at": now}
        if target_ref is not None:
            values["target_ref"] = target_ref[:40]
        if detail is not None:
            values["detail"] = detail[:_ERROR_LIMIT]
        with self.store.write() as session:
            session.execute(
                update(ITEMS)
                .where(ITEMS.c.id == item_id, ITEMS.c.state.in_(allowed))
                .values(values)
            )
        return self.item(item_id)

    # reading ---------------------------------------------------------------------------------

    def batch(self, batch_id: str) -> BatchView | None:
        """One batch with its body."""
        with self.store.sessions() as session:
            row = session.execute(select(BATCHES).where(BATCHES.c.id == batch_id)).first()
        return _batch(row) if row is not None else None

    def item(self, item_id: int) -> ItemView | None:
        """One item."""
        with self.store.sessions() as session:
            row = session.execute(select(ITEMS).where(ITEMS.c.id == item_id)).first()
        return _item(row) if row is not None else None

    def _items(
        self, condition: Any, *, limit: int | None = None, newest: bool = True
    ) -> list[ItemView]:
        query = (
            select(ITEMS, BATCHES.c.item_count.label("batch_items"))
            .join(BATCHES, BATCHES.c.id == ITEMS.c.batch_id)
            .where(condition)
            .order_by(ITEMS.c.id.desc() if newest else ITEMS.c.id.asc())
        )
        if limit is not None:
            query = query.limit(limit)
        with self.store.sessions() as session:
            rows = session.execute(query).all()
        return [_item(row, row.batch_items) for row in rows]

    def latest_for(self, reference: str) -> ItemView | None:
        """The newest item of a business reference (the last time it went out)."""
        found = self._items(ITEMS.c.reference == reference, limit=1)
        return found[0] if found else None

    def of_message(self, message_id: str) -> list[ItemView]:
        """Every item of one message, newest first."""
        return self._items(ITEMS.c.message_id == message_id)

    def in_batch(self, batch_id: str, reference: str | None = None) -> list[ItemView]:
        """The items of a batch (of one reference when given), by position."""
        condition = ITEMS.c.batch_id == batch_id
        if reference is not None:
            condition = condition & (ITEMS.c.reference == reference)
        return sorted(self._items(condition), key=lambda item: item.position)

    def awaiting(self, sent_before: datetime, *, limit: int = 500) -> list[ItemView]:
        """Items ``sent`` no later than ``sent_before`` and not settled yet, oldest first."""
        return self._items(
            (ITEMS.c.state == SENT) & (ITEMS.c.sent_at <= sent_before), limit=limit, newest=False
        )

    def counts(self) -> dict[str, int]:
        """Items per state."""
        with self.store.sessions() as session:
            rows = session.execute(
                select(ITEMS.c.state, func.count()).group_by(ITEMS.c.state)
            ).all()
        return {str(state): int(count) for state, count in rows}

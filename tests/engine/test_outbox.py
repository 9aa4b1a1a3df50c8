"""The outbox on SQLite and PostgreSQL: batches written before sending, items settled later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from d365sap.engine.outbox import (
    CONFIRMED,
    OVERDUE,
    PENDING,
    REFUSED,
    REJECTED,
    SENDING,
    SENT,
    NewItem,
    Outbox,
)
from d365sap.engine.store import MessageStore


def _record(outbox: Outbox, batch: str, *members: tuple[str, str]) -> None:
    items = [NewItem(message, reference, n) for n, (message, reference) in enumerate(members, 1)]
    outbox.record(batch, "test:channel", f"<bulk id='{batch}'/>".encode(), items)


def test_a_batch_is_recorded_with_its_items_before_sending(store: MessageStore) -> None:
    outbox = Outbox(store)
    _record(outbox, "B1", ("m1", "order-1"), ("m2", "order-2"))
    batch = outbox.batch("B1")
    assert batch is not None
    assert (batch.state, batch.item_count, batch.attempts, batch.sent_at) == (SENDING, 2, 0, None)
    assert batch.body == b"<bulk id='B1'/>"
    items = outbox.in_batch("B1")
    assert [(i.position, i.message_id, i.reference, i.state) for i in items] == [
        (1, "m1", "order-1", PENDING),
        (2, "m2", "order-2", PENDING),
    ]
    assert all(i.batch_items == 2 and i.open for i in items)


def test_sent_refused_and_unknown_outcomes(store: MessageStore) -> None:
    outbox = Outbox(store)
    _record(outbox, "B1", ("m1", "order-1"))
    _record(outbox, "B2", ("m2", "order-2"))
    outbox.note_attempt("B1", "timed out")
    first = outbox.batch("B1")
    assert first is not None and (first.state, first.attempts) == (SENDING, 1)
    assert first.last_error == "timed out"
    outbox.mark_sent("B1")
    sent = outbox.batch("B1")
    assert sent is not None and (sent.state, sent.attempts, sent.last_error) == (SENT, 2, None)
    assert sent.sent_at is not None
    [item] = outbox.in_batch("B1")
    assert item.state == SENT and item.sent_at is not None
    outbox.mark_refused("B2", "schema violation")
    refused = outbox.batch("B2")
    assert refused is not None and refused.state == REFUSED
    [gone] = outbox.in_batch("B2")
    assert (gone.state, gone.detail, gone.open) == (REFUSED, "schema violation", False)
    # a late "sent" does not revive what was refused, nor a refusal what was sent
    outbox.mark_refused("B1", "too late")
    assert outbox.in_batch("B1")[0].state == SENT


def test_latest_item_of_a_reference_and_of_a_message(store: MessageStore) -> None:
    outbox = Outbox(store)
    _record(outbox, "B1", ("m1", "order-1"))
    outbox.mark_refused("B1", "refused")
    _record(outbox, "B2", ("m1", "order-1"), ("m3", "order-3"))
    latest = outbox.latest_for("order-1")
    assert latest is not None and (latest.batch_id, latest.state) == ("B2", PENDING)
    assert [i.batch_id for i in outbox.of_message("m1")] == ["B2", "B1"]
    assert outbox.latest_for("order-9") is None
    assert [i.message_id for i in outbox.in_batch("B2", "order-3")] == ["m3"]


def test_settling_items(store: MessageStore) -> None:
    outbox = Outbox(store)
    _record(outbox, "B1", ("m1", "order-1"), ("m2", "order-2"), ("m3", "order-3"))
    outbox.mark_sent("B1")
    one, two, three = outbox.in_batch("B1")
    confirmed = outbox.settle_item(one.id, CONFIRMED, target_ref="4711", detail="saved")
    assert confirmed is not None
    assert (confirmed.state, confirmed.target_ref, confirmed.open) == (CONFIRMED, "4711", False)
    again = outbox.settle_item(one.id, CONFIRMED, target_ref="4711")
    assert again is not None and again.state == CONFIRMED
    # a confirmed order is not rejected or overdue afterwards
    assert outbox.settle_item(one.id, REJECTED, detail="no")
    still = outbox.item(one.id)
    assert still is not None and (still.state, still.detail) == (CONFIRMED, "saved")
    rejected = outbox.settle_item(two.id, REJECTED, detail="810(V1) product unknown")
    assert rejected is not None and rejected.state == REJECTED
    overdue = outbox.settle_item(three.id, OVERDUE, detail="no word")
    assert overdue is not None and (overdue.state, overdue.open) == (OVERDUE, True)
    late = outbox.settle_item(three.id, CONFIRMED, target_ref="4712")
    assert late is not None and (late.state, late.target_ref) == (CONFIRMED, "4712")
    assert outbox.counts() == {CONFIRMED: 2, REJECTED: 1}
    with pytest.raises(ValueError, match="cannot be settled"):
        outbox.settle_item(one.id, SENT)


def test_items_awaiting_word_oldest_first(store: MessageStore) -> None:
    outbox = Outbox(store)
    _record(outbox, "B1", ("m1", "order-1"))
    _record(outbox, "B2", ("m2", "order-2"))
    _record(outbox, "B3", ("m3", "order-3"))
    outbox.mark_sent("B1")
    outbox.mark_sent("B2")
    now = datetime.now(UTC)
    waiting = outbox.awaiting(now + timedelta(seconds=1))
    assert [i.reference for i in waiting] == ["order-1", "order-2"]  # B3 is not sent yet
    assert outbox.awaiting(now - timedelta(hours=1)) == []
    [first, second] = waiting
    outbox.settle_item(first.id, CONFIRMED, target_ref="1")
    assert [i.reference for i in outbox.awaiting(now + timedelta(seconds=1))] == ["order-2"]
    assert outbox.awaiting(now + timedelta(seconds=1), limit=0) == []
    assert second.sent_at is not None and second.sent_at.tzinfo is not None


def test_an_empty_batch_is_refused(store: MessageStore) -> None:
    with pytest.raises(ValueError, match="at least one item"):
        Outbox(store).record("B0", "c", b"", [])

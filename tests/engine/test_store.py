"""The message store on SQLite and PostgreSQL: persist with its job, dedupe, attempts, versions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from d365sap.engine.guard import newer_applied
from d365sap.engine.operations import MessageOperations
from d365sap.engine.queue import add_job
from d365sap.engine.runtime import JobRequest
from d365sap.engine.store import Arrival, MessageStore, Outcome, Settlement
from d365sap.engine.tables import JobRow
from d365sap.engine.trace import Trace
from d365sap.engine.views import DONE, FAILED, PROCESSING, QUEUED, RETRYING, SUPERSEDED


class TableEnqueuer:
    """Enqueues into the embedded job table, like the embedded runtime."""

    def enqueue(self, session: Session, job: JobRequest) -> None:
        add_job(session, job)


class FailingEnqueuer:
    def enqueue(self, session: Session, job: JobRequest) -> None:
        raise RuntimeError("queue down")


def arrival(
    payload: bytes = b"<x/>",
    *,
    key: str | None = "K1",
    source_id: str | None = None,
    flow: str = "customer",
) -> Arrival:
    return Arrival(
        flow=flow,
        payload=payload,
        content_type="application/xml",
        correlation_id="corr-1",
        source_id=source_id,
        route="s4hc" if key else None,
        business_key=key,
        queue="s4hc",
    )


def accept(store: MessageStore, *args: object, **kwargs: object) -> str:
    message, duplicate = store.accept(arrival(*args, **kwargs), TableEnqueuer())  # type: ignore[arg-type]
    assert not duplicate
    return message.id


def jobs(store: MessageStore) -> list[JobRow]:
    with store.sessions() as session:
        return list(session.scalars(select(JobRow).order_by(JobRow.id)).all())


def settle(
    store: MessageStore, message_id: str, status: str = DONE, *, retry: bool = False
) -> None:
    started = store.begin_attempt(message_id)
    assert not isinstance(started, str)
    _, attempt = started
    next_at = datetime.now(UTC) + timedelta(seconds=30) if retry else None
    store.settle(
        message_id,
        attempt=attempt,
        outcome=Outcome(
            status=status, outcome="created", http_status=201, result={"a": 1}, error=None
        ),
        trace=Trace(),
        next_attempt_at=next_at,
    )


def test_schema_is_migrated(store: MessageStore) -> None:
    tables = set(inspect(store.engine).get_table_names())
    assert {
        "messages",
        "message_steps",
        "message_payloads",
        "message_versions",
        "jobs",
        "record_versions",
        "counters",
        "alembic_version",
    } <= tables


def test_message_and_job_are_stored_together(store: MessageStore) -> None:
    message_id = accept(store, b"<erpaccounts/>")
    stored = store.get(message_id)
    assert stored is not None
    assert (stored.status, stored.payload, stored.attempts, stored.version) == (
        QUEUED,
        b"<erpaccounts/>",
        0,
        1,
    )
    assert stored.versions[0].comment == "as received"
    assert [j.message_id for j in jobs(store)] == [message_id]
    assert stored.lock_key == "customer:s4hc:K1"


def test_nothing_is_stored_when_enqueueing_fails(store: MessageStore) -> None:
    with pytest.raises(RuntimeError, match="queue down"):
        store.accept(arrival(), FailingEnqueuer())
    assert store.list() == []
    assert jobs(store) == []


def test_arrival_numbers_increase(store: MessageStore) -> None:
    ids = [accept(store, f"<x n='{n}'/>".encode()) for n in range(5)]
    seqs = [store.get(i).seq for i in ids]  # type: ignore[union-attr]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5


def test_duplicate_source_id_returns_first_message(store: MessageStore) -> None:
    first = accept(store, source_id="MSG-1")
    again, duplicate = store.accept(arrival(b"<other/>", source_id="MSG-1"), TableEnqueuer())
    assert duplicate and again.id == first
    assert len(store.list()) == 1 and len(jobs(store)) == 1
    _, other_flow = store.accept(arrival(source_id="MSG-1", flow="sales_order"), TableEnqueuer())
    assert not other_flow


def test_repeat_of_the_latest_payload_is_a_duplicate(store: MessageStore) -> None:
    first = accept(store, b"<a/>")
    again, duplicate = store.accept(arrival(b"<a/>"), TableEnqueuer())
    assert duplicate and again.id == first
    # A -> B -> A: the third one is a real change back, not a duplicate
    accept(store, b"<b/>")
    third, duplicate = store.accept(arrival(b"<a/>"), TableEnqueuer())
    assert not duplicate and third.id != first
    # same payload for another record is not a duplicate either
    accept(store, b"<a/>", key="K2")


def test_repeat_of_a_failed_message_is_processed_again(store: MessageStore) -> None:
    first = accept(store, b"<a/>")
    settle(store, first, FAILED)
    again, duplicate = store.accept(arrival(b"<a/>"), TableEnqueuer())
    assert not duplicate and again.id != first


def test_attempts_retry_and_outcome(store: MessageStore) -> None:
    message_id = accept(store)
    settle(store, message_id, FAILED, retry=True)
    waiting = store.get(message_id)
    assert waiting is not None
    assert waiting.status == RETRYING and waiting.next_attempt_at is not None
    started = store.begin_attempt(message_id)
    assert not isinstance(started, str)
    _, attempt = started
    assert attempt == 2 and store.status_of(message_id).status == PROCESSING  # type: ignore[union-attr]
    trace = Trace(log_payloads=True)
    with trace.step("s4.create_sales_area") as step:
        step.reply(201, b'{"d":{}}')
    trace.snapshot("mapped.create", "application/json", '{"Customer":"17100001"}')
    store.settle(
        message_id,
        attempt=attempt,
        outcome=Outcome(
            status=DONE, outcome="created", http_status=201, result={"o": 1}, error=None
        ),
        trace=trace,
    )
    done = store.get(message_id)
    assert done is not None and done.final
    assert (done.status, done.outcome, done.attempts) == (DONE, "created", 2)
    assert [s.attempt for s in done.steps] == [2]
    assert done.payloads[0].stage == "mapped.create"
    assert store.begin_attempt(message_id) == "final"


def test_older_message_is_superseded_by_a_newer_applied_one(store: MessageStore) -> None:
    older = accept(store, b"<v1/>")
    newer = accept(store, b"<v2/>")
    settle(store, newer, DONE)
    assert store.begin_attempt(older) == SUPERSEDED
    view = store.get(older)
    assert view is not None and view.status == SUPERSEDED and newer in (view.error or "")
    # a message of another record is not affected
    other = accept(store, b"<v1/>", key="K2")
    assert not isinstance(store.begin_attempt(other), str)


def test_requeue_with_a_new_version(store: MessageStore) -> None:
    message_id = accept(store, b"<bad/>")
    settle(store, message_id, FAILED)
    with store.sessions.begin() as session:
        session.query(JobRow).delete()
    operations = MessageOperations(store, TableEnqueuer())
    assert operations.resubmit(message_id, b"<good/>", comment="fixed sales org").applied
    full = store.get(message_id)
    assert full is not None
    assert (full.status, full.version, full.payload) == (QUEUED, 2, b"<good/>")
    assert [(v.version, v.payload, v.comment) for v in full.versions] == [
        (1, b"<bad/>", "as received"),
        (2, b"<good/>", "fixed sales org"),
    ]
    assert [j.message_id for j in jobs(store)] == [message_id]


def test_masker_applies_to_snapshots(tmp_path: Path) -> None:
    masked = MessageStore.open(
        f"sqlite:///{tmp_path / 'm.db'}", masker=lambda body, _ct: body.replace("secret", "***")
    )
    message_id = accept(masked)
    started = masked.begin_attempt(message_id)
    assert not isinstance(started, str)
    trace = Trace(log_payloads=True)
    trace.snapshot("inbound", "application/xml", "<name>secret</name>")
    masked.settle(
        message_id,
        attempt=started[1],
        outcome=Outcome(status=FAILED, outcome="error", http_status=400, result=None, error="bad"),
        trace=trace,
    )
    stored = masked.get(message_id)
    assert stored is not None and stored.payloads[0].body == "<name>***</name>"
    masked.close()


def test_list_filters_and_counts(store: MessageStore) -> None:
    a = accept(store, b"<a/>")
    b = accept(store, b"<b/>", key="K2")
    settle(store, b, FAILED)
    assert [m.id for m in store.list(status=FAILED)] == [b]
    assert [m.id for m in store.list(oldest_first=True)] == [a, b]
    assert [m.id for m in store.list(business_key="K2")] == [b]
    assert store.list(flow="nothing") == []
    assert store.counts() == {QUEUED: 1, FAILED: 1}


# -- group commit -------------------------------------------------------------------------------


def test_accept_many_stores_each_message_with_its_job_in_arrival_order(
    store: MessageStore,
) -> None:
    arrivals = [arrival(f"<m{n}/>".encode(), key=f"K{n}", source_id=f"S{n}") for n in range(5)]

    results = store.accept_many(arrivals, TableEnqueuer())

    assert [duplicate for _, duplicate in results] == [False] * 5
    seqs = [message.seq for message, _ in results]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 5
    assert [j.message_id for j in jobs(store)] == [message.id for message, _ in results]
    for message, _ in results:
        stored = store.get(message.id)
        assert stored is not None
        assert (stored.status, stored.payload) == (QUEUED, message.payload)


def test_accept_many_answers_a_source_id_repeated_within_the_batch_with_the_first(
    store: MessageStore,
) -> None:
    first, again, other = store.accept_many(
        [
            arrival(b"<a/>", source_id="MSG-1"),
            arrival(b"<a-again/>", source_id="MSG-1"),
            arrival(b"<b/>", key="K2", source_id="MSG-2"),
        ],
        TableEnqueuer(),
    )

    assert (first[1], again[1], other[1]) == (False, True, False)
    assert again[0].id == first[0].id
    assert len(jobs(store)) == 2


def test_accept_many_finds_an_unsourced_repeat_of_a_message_earlier_in_the_batch(
    store: MessageStore,
) -> None:
    (first, dup1), (second, dup2) = store.accept_many(
        [arrival(b"<same/>"), arrival(b"<same/>")], TableEnqueuer()
    )

    assert (dup1, dup2) == (False, True)
    assert second.id == first.id
    assert len(jobs(store)) == 1


def test_accept_many_compares_a_repeat_with_the_latest_message_of_its_record(
    store: MessageStore,
) -> None:
    """v1, v2, v2 of one record in one batch: v2 is new, its repeat is not; v1 again is new."""
    results = store.accept_many(
        [arrival(b"<v1/>"), arrival(b"<v2/>"), arrival(b"<v2/>"), arrival(b"<v1/>")],
        TableEnqueuer(),
    )

    assert [duplicate for _, duplicate in results] == [False, False, True, False]
    assert results[2][0].id == results[1][0].id
    assert len(jobs(store)) == 3
    # the next batch sees the stored latest (the second v1)
    (message, duplicate), _ = store.accept_many(
        [arrival(b"<v1/>"), arrival(b"<x/>", key="K2")], TableEnqueuer()
    )
    assert duplicate and message.id == results[3][0].id


def test_accept_many_stores_nothing_when_enqueueing_fails(store: MessageStore) -> None:
    with pytest.raises(RuntimeError, match="queue down"):
        store.accept_many([arrival(b"<a/>"), arrival(b"<b/>", key="K2")], FailingEnqueuer())
    assert store.counts() == {}


def test_settle_many_with_known_records_marks_each_record_applied(store: MessageStore) -> None:
    first, second = accept(store, b"<a/>", key="K1"), accept(store, b"<b/>", key="K2")
    retried = accept(store, b"<c/>", key="K3")
    settlements = []
    for message_id, status, retry in (
        (first, DONE, False),
        (second, FAILED, False),
        (retried, FAILED, True),
    ):
        started = store.begin_attempt(message_id)
        assert not isinstance(started, str)
        view, attempt = started
        trace = Trace()
        with trace.step("send"):
            pass
        settlements.append(
            Settlement(
                message_id,
                attempt,
                Outcome(status=status, outcome="x", http_status=200, result=None, error=None),
                trace,
                datetime.now(UTC) + timedelta(seconds=30) if retry else None,
                lock_key=view.lock_key,
                seq=view.seq,
            )
        )
    seen: list[list[str]] = []
    failures = store.settle_many(
        settlements, [lambda _session, batch: seen.append([s.message_id for s in batch])]
    )
    assert failures == [None, None, None]
    assert seen == [[first, second, retried]]  # the hook ran once, with the whole batch
    statuses = {mid: store.get(mid) for mid in (first, second, retried)}
    assert {mid: v.status for mid, v in statuses.items() if v} == {
        first: DONE,
        second: FAILED,
        retried: RETRYING,
    }
    assert all(len(v.steps) == 1 for v in statuses.values() if v)
    # the applied record of K1 now makes an older message of K1 superseded
    older_view = store.get(first)
    assert older_view is not None and older_view.finished_at is not None
    with store.fast() as session:
        assert newer_applied(session, older_view.lock_key or "", older_view.seq - 1) == first


def test_settle_many_records_the_good_attempts_beside_a_bad_one(store: MessageStore) -> None:
    ids = [accept(store, f"<m{n}/>".encode(), key=f"K{n}") for n in range(3)]
    settlements = []
    for message_id in ids:
        started = store.begin_attempt(message_id)
        assert not isinstance(started, str)
        settlements.append(
            Settlement(
                message_id,
                started[1],
                Outcome(status=DONE, outcome="created", http_status=201, result={}, error=None),
                Trace(),
            )
        )
    missing = replace(settlements[1], message_id="no-such-message")

    failures = store.settle_many([settlements[0], missing, settlements[2]])

    assert failures[0] is None
    assert failures[2] is None
    assert failures[1] is not None
    assert [store.status_of(i).status for i in ids] == [DONE, PROCESSING, DONE]  # type: ignore[union-attr]


def test_message_ids_are_time_ordered_uuids() -> None:
    import time
    import uuid

    from d365sap.engine.store_intake import new_message_id

    earlier = [new_message_id() for _ in range(200)]
    time.sleep(0.002)
    later = new_message_id()

    assert len(set(earlier)) == 200
    assert all(uuid.UUID(i).version == 7 for i in [*earlier, later])
    assert all(i < later for i in earlier)  # ids of a later millisecond sort after

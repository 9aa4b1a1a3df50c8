"""Operator actions over the store and the embedded job table: retry, resubmit, discard, select."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from d365sap.engine.dry_run import UNSUPPORTED, DryRunReport
from d365sap.engine.operations import (
    IN_PROGRESS,
    NOT_ALLOWED,
    NOT_FOUND,
    MessageOperations,
    Selection,
    UnknownMessageError,
    lock_key_for,
)
from d365sap.engine.queue import DOING, TODO, add_job
from d365sap.engine.runtime import JobRequest
from d365sap.engine.store import Arrival, MessageStore, Outcome
from d365sap.engine.tables import JobRow, MessageRow, MessageVersionRow
from d365sap.engine.trace import Trace
from d365sap.engine.types import Description
from d365sap.engine.views import (
    DISCARDED,
    DONE,
    FAILED,
    PROCESSING,
    QUEUED,
    RETRYING,
    SUPERSEDED,
)


class TableEnqueuer:
    """Enqueues into the embedded job table, as the embedded runtime does."""

    def enqueue(self, session: Session, job: JobRequest) -> None:
        add_job(session, job)


class KeyFlow:
    """A flow whose business key is the payload text; it can dry-run."""

    def __init__(self) -> None:
        self.dry_runs: list[bytes] = []

    def describe(self, payload: bytes) -> Description:
        text = payload.decode()
        if text == "unreadable":
            return Description()
        return Description(route="s4hc", business_key=text, queue="s4hc")

    async def dry_run(self, payload: bytes) -> DryRunReport:
        self.dry_runs.append(payload)
        return DryRunReport(outcome="would_create", summary="fine", flow="customer")


def accept(store: MessageStore, key: str = "K1", payload: bytes | None = None) -> str:
    arrival = Arrival(
        flow="customer",
        payload=payload or key.encode(),
        content_type="application/xml",
        correlation_id="corr",
        source_id=None,
        route="s4hc",
        business_key=key,
        queue="s4hc",
    )
    message, duplicate = store.accept(arrival, TableEnqueuer())
    assert not duplicate
    return message.id


def settle(store: MessageStore, message_id: str, status: str, *, retry: bool = False) -> None:
    started = store.begin_attempt(message_id)
    assert not isinstance(started, str)
    _, attempt = started
    outcome = Outcome(
        status=status,
        outcome="error" if status == FAILED else "created",
        http_status=422 if status == FAILED else 201,
        result={"outcome": "error"},
        error="S/4HANA Cloud answered 400: Customer 17199999 does not exist"
        if status == FAILED
        else None,
    )
    next_at = datetime.now(UTC) + timedelta(hours=1) if retry else None
    store.settle(
        message_id, attempt=attempt, outcome=outcome, trace=Trace(), next_attempt_at=next_at
    )
    with store.sessions.begin() as session:
        if retry:
            session.execute(
                update(JobRow).where(JobRow.message_id == message_id).values(run_at=next_at)
            )
        else:  # what the runtime does with the job of a settled message
            session.query(JobRow).filter(JobRow.message_id == message_id).delete()


def jobs(store: MessageStore) -> dict[str, JobRow]:
    with store.sessions() as session:
        return {job.message_id: job for job in session.scalars(select(JobRow)).all()}


def status(store: MessageStore, message_id: str) -> str:
    view = store.status_of(message_id)
    assert view is not None
    return view.status


@pytest.fixture
def flow() -> KeyFlow:
    return KeyFlow()


@pytest.fixture
def ops(store: MessageStore, flow: KeyFlow) -> MessageOperations:
    return MessageOperations(store, TableEnqueuer(), {"customer": flow})


def test_retry_queues_a_failed_message_with_the_same_version(
    store: MessageStore, ops: MessageOperations
) -> None:
    message_id = accept(store)
    settle(store, message_id, FAILED)
    assert message_id not in jobs(store)

    [result] = ops.retry([message_id])

    assert result.applied
    assert (result.before, result.after, result.version) == (FAILED, QUEUED, 1)
    view = store.get(message_id)
    assert view is not None
    assert view.status == QUEUED
    assert view.finished_at is None
    assert len(view.versions) == 1
    job = jobs(store)[message_id]
    assert job.status == TODO
    assert job.lock_key == "customer:s4hc:K1"


def test_retry_of_a_waiting_retry_runs_it_now_and_keeps_its_place(
    store: MessageStore, ops: MessageOperations
) -> None:
    message_id = accept(store)
    settle(store, message_id, FAILED, retry=True)
    assert status(store, message_id) == RETRYING
    job_id = jobs(store)[message_id].id

    [result] = ops.retry([message_id])

    assert result.applied
    assert result.before == RETRYING
    job = jobs(store)[message_id]
    assert job.id == job_id
    run_at = job.run_at if job.run_at.tzinfo else job.run_at.replace(tzinfo=UTC)
    assert run_at <= datetime.now(UTC)
    view = store.status_of(message_id)
    assert view is not None
    assert view.next_attempt_at is None


def test_done_and_discarded_are_retried_only_with_force(
    store: MessageStore, ops: MessageOperations
) -> None:
    done = accept(store, "K1")
    settle(store, done, DONE)
    discarded = accept(store, "K2")
    settle(store, discarded, DISCARDED)

    refused = ops.retry([done, discarded])

    assert [r.applied for r in refused] == [False, False]
    assert {r.refusal for r in refused} == {NOT_ALLOWED}
    assert "force" in refused[0].detail
    assert status(store, done) == DONE
    forced = ops.retry([done, discarded], force=True)
    assert [r.applied for r in forced] == [True, True]
    assert status(store, done) == QUEUED


def test_queued_processing_and_unknown_are_refused(
    store: MessageStore, ops: MessageOperations
) -> None:
    queued = accept(store, "K1")
    processing = accept(store, "K2")
    assert not isinstance(store.begin_attempt(processing), str)

    results = ops.retry([queued, processing, "no-such-id"], force=True)

    assert [r.refusal for r in results] == [NOT_ALLOWED, NOT_ALLOWED, NOT_FOUND]
    assert "already queued" in results[0].detail
    assert "processing" in results[1].detail
    assert results[2].before is None
    assert status(store, processing) == PROCESSING


def test_a_job_claimed_by_a_worker_is_not_queued_twice(
    store: MessageStore, ops: MessageOperations
) -> None:
    message_id = accept(store)
    settle(store, message_id, FAILED, retry=True)
    with store.sessions.begin() as session:  # a worker claimed it, begin_attempt not yet run
        session.execute(update(JobRow).where(JobRow.message_id == message_id).values(status=DOING))

    [retried] = ops.retry([message_id])
    [discarded] = ops.discard([message_id], "wrong customer")

    assert retried.refusal == discarded.refusal == IN_PROGRESS
    assert status(store, message_id) == RETRYING  # rolled back
    assert jobs(store)[message_id].status == DOING


def test_each_id_is_acted_on_once_and_progress_is_reported(
    store: MessageStore, ops: MessageOperations
) -> None:
    first, second = accept(store, "K1"), accept(store, "K2")
    settle(store, first, FAILED)
    settle(store, second, FAILED)
    seen: list[str] = []

    results = ops.retry([first, second, first], progress=lambda r: seen.append(r.message_id))

    assert [r.message_id for r in results] == [first, second]
    assert seen == [first, second]


def test_superseded_retry_warns_that_a_newer_message_was_applied(
    store: MessageStore, ops: MessageOperations
) -> None:
    older = accept(store, "K1", b"old")
    newer = accept(store, "K1", b"new")
    settle(store, older, FAILED)
    settle(store, newer, DONE)
    ops.retry([older])
    assert store.begin_attempt(older) == SUPERSEDED  # what the worker finds

    [result] = ops.retry([older])

    assert result.applied
    assert result.before == SUPERSEDED
    assert newer in result.detail
    assert "superseded" in result.detail


def test_resubmit_keeps_every_version(store: MessageStore, ops: MessageOperations) -> None:
    message_id = accept(store, "K1")
    settle(store, message_id, FAILED)

    result = ops.resubmit(message_id, b"K1", comment="customer number fixed")

    assert result.applied
    assert result.version == 2
    view = store.get(message_id)
    assert view is not None
    assert view.status == QUEUED
    assert view.version == 2
    assert [(v.version, v.comment) for v in view.versions] == [
        (1, "as received"),
        (2, "customer number fixed"),
    ]
    assert message_id in jobs(store)


def test_a_second_resubmission_keeps_the_payload_as_received_once(
    store: MessageStore, ops: MessageOperations
) -> None:
    message_id = accept(store, "K1", b"<original/>")
    settle(store, message_id, FAILED)
    assert ops.resubmit(message_id, b"K1", comment="first fix").applied
    settle(store, message_id, FAILED)
    assert ops.resubmit(message_id, b"K1", comment="second fix").applied

    view = store.get(message_id)
    assert view is not None
    assert [(v.version, v.payload, v.comment) for v in view.versions] == [
        (1, b"<original/>", "as received"),
        (2, b"K1", "first fix"),
        (3, b"K1", "second fix"),
    ]


def test_a_refused_resubmission_writes_no_version(
    store: MessageStore, ops: MessageOperations
) -> None:
    message_id = accept(store, "K1", b"<original/>")
    settle(store, message_id, DONE)

    assert not ops.resubmit(message_id, b"K1").applied

    with store.sessions() as session:
        rows = session.scalars(
            select(MessageVersionRow).where(MessageVersionRow.message_id == message_id)
        ).all()
    assert rows == []
    view = store.get(message_id)
    assert view is not None
    assert [(v.version, v.payload) for v in view.versions] == [(1, b"<original/>")]


def test_resubmit_follows_a_corrected_business_key(
    store: MessageStore, ops: MessageOperations
) -> None:
    message_id = accept(store, "WRONG")
    settle(store, message_id, FAILED, retry=True)

    ops.resubmit(message_id, b"RIGHT")

    view = store.status_of(message_id)
    assert view is not None
    assert view.business_key == "RIGHT"
    assert view.lock_key == "customer:s4hc:RIGHT"
    assert jobs(store)[message_id].lock_key == "customer:s4hc:RIGHT"
    assert [m.id for m in ops.select(Selection(business_key="RIGHT", statuses=(QUEUED,)))] == [
        message_id
    ]


def test_resubmit_of_an_unreadable_payload_keeps_the_key(
    store: MessageStore, ops: MessageOperations
) -> None:
    message_id = accept(store, "K1")
    settle(store, message_id, FAILED)

    ops.resubmit(message_id, b"unreadable")

    view = store.status_of(message_id)
    assert view is not None
    assert (view.business_key, view.payload) == ("K1", b"unreadable")


def test_resubmit_refuses_an_empty_payload_and_a_done_message(
    store: MessageStore, ops: MessageOperations
) -> None:
    message_id = accept(store, "K1")
    settle(store, message_id, DONE)

    assert ops.resubmit(message_id, b"  ").refusal == NOT_ALLOWED
    assert ops.resubmit(message_id, b"K1").refusal == NOT_ALLOWED
    view = store.get(message_id)
    assert view is not None
    assert len(view.versions) == 1
    assert ops.resubmit(message_id, b"K1", force=True).applied


def test_discard_settles_with_the_reason_and_drops_the_job(
    store: MessageStore, ops: MessageOperations
) -> None:
    waiting = accept(store, "K1")
    settle(store, waiting, FAILED, retry=True)
    queued = accept(store, "K2")

    results = ops.discard([waiting, queued], "customer deleted in Dynamics")

    assert [(r.before, r.after) for r in results] == [(RETRYING, DISCARDED), (QUEUED, DISCARDED)]
    assert jobs(store) == {}
    view = store.status_of(waiting)
    assert view is not None
    assert view.final
    assert view.error == "discarded by an operator: customer deleted in Dynamics"
    assert store.begin_attempt(waiting) == "final"


def test_discard_refuses_settled_messages_and_needs_a_reason(
    store: MessageStore, ops: MessageOperations
) -> None:
    done = accept(store)
    settle(store, done, DONE)

    [result] = ops.discard([done], "no longer needed")

    assert result.refusal == NOT_ALLOWED
    assert "already settled as done" in result.detail
    with pytest.raises(ValueError, match="reason"):
        ops.discard_one(done, "   ")


def test_select_filters_and_orders_oldest_first(
    store: MessageStore, ops: MessageOperations
) -> None:
    a, b, c, d = (accept(store, key) for key in ("A", "B", "C", "D"))
    settle(store, a, FAILED)
    settle(store, b, FAILED, retry=True)
    settle(store, c, DONE)
    now = datetime.now(UTC)

    assert [m.id for m in ops.select(Selection(statuses=(FAILED, RETRYING)))] == [a, b]
    assert [m.id for m in ops.select(Selection(statuses=(FAILED, RETRYING), limit=1))] == [a]
    assert [m.id for m in ops.select(Selection(business_key="C"))] == [c]
    assert [m.id for m in ops.select(Selection())] == [a, b, c, d]
    assert ops.select(Selection(since=now + timedelta(minutes=1))) == []
    assert len(ops.select(Selection(until=now + timedelta(minutes=1)))) == 4
    assert ops.select(Selection(flow="other")) == []


def test_lock_key_matches_the_store(store: MessageStore) -> None:
    keyed = store.status_of(accept(store, "K9"))
    assert keyed is not None
    assert keyed.lock_key == lock_key_for("customer", "s4hc", "K9", keyed.id)
    arrival = Arrival(
        flow="customer",
        payload=b"x",
        content_type="application/xml",
        correlation_id="c",
        source_id="s",
        route=None,
        business_key=None,
        queue="default",
    )
    unkeyed, _ = store.accept(arrival, TableEnqueuer())
    assert unkeyed.lock_key == lock_key_for("customer", None, None, unkeyed.id)


@pytest.mark.anyio
async def test_dry_run_uses_the_current_version_or_the_given_payload(
    store: MessageStore, ops: MessageOperations, flow: KeyFlow
) -> None:
    message_id = accept(store, "K1")
    settle(store, message_id, FAILED)
    ops.resubmit(message_id, b"K2")

    current = await ops.dry_run(message_id)
    given = await ops.dry_run(message_id, b"K3")

    assert flow.dry_runs == [b"K2", b"K3"]
    assert current.tested == "version 2"
    assert given.tested == "submitted payload"
    assert current.to_dict()["ok"] is True
    with store.sessions() as session:  # nothing was written by the dry runs
        row = session.get_one(MessageRow, message_id)
        assert (row.version, row.status) == (2, QUEUED)
    with pytest.raises(UnknownMessageError):
        await ops.dry_run("no-such-id")


@pytest.mark.anyio
async def test_dry_run_of_a_flow_without_one(store: MessageStore) -> None:
    ops = MessageOperations(store, TableEnqueuer(), {})
    message_id = accept(store)

    result = await ops.dry_run(message_id)

    assert result.report.outcome == UNSUPPORTED
    assert not result.report.ok

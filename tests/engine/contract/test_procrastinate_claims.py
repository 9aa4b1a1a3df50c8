"""Claiming procrastinate jobs in batches and ending them in the store's settle transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from d365sap.engine.procrastinate_jobs import (
    TASK_NAME,
    claim_in_session,
    defer_in_session,
    defer_many_in_session,
    end_in_session,
)
from d365sap.engine.procrastinate_runtime import ProcrastinateRuntime
from d365sap.engine.runtime import FINISHED, Decision, JobRequest
from d365sap.engine.store import MessageStore
from d365sap.engine.views import DONE
from engine.contract.conftest import Harness

pytestmark = pytest.mark.anyio


def defer(
    store: MessageStore,
    message_id: str,
    lock: str,
    queue: str = "q",
    run_at: datetime | None = None,
) -> int:
    job = JobRequest(message_id=message_id, lock_key=lock, queue=queue, run_at=run_at, new=True)
    with store.fast() as session:
        new_id = defer_in_session(session, job)
    assert new_id is not None
    return new_id


def worker_id(store: MessageStore) -> int:
    with store.fast() as session:
        return int(
            session.execute(
                text("INSERT INTO procrastinate_workers DEFAULT VALUES RETURNING id")
            ).scalar_one()
        )


def claim(store: MessageStore, worker: int, limit: int = 10, queues: tuple[str, ...] = ("q",)):
    with store.fast() as session:
        return claim_in_session(session, list(queues), worker, limit)


def job_status(store: MessageStore, job_id: int) -> tuple[str, int, datetime | None] | None:
    with store.read() as conn:
        row = conn.execute(
            text(
                "SELECT status::text, attempts, scheduled_at FROM procrastinate_jobs WHERE id = :i"
            ),
            {"i": job_id},
        ).first()
    return None if row is None else (str(row[0]), int(row[1]), row[2])


def test_a_claim_takes_the_first_ready_job_of_each_lock(store: MessageStore) -> None:
    a1 = defer(store, "m1", "A")
    a2 = defer(store, "m2", "A")
    b1 = defer(store, "m3", "B")
    defer(store, "m4", "C", queue="other")
    defer(store, "m5", "D", run_at=datetime.now(UTC) + timedelta(hours=1))
    worker = worker_id(store)

    first = claim(store, worker)
    assert [job.id for job in first] == [a1, b1]  # m2 waits behind m1; m4, m5 are not ready
    assert all(job.status == "doing" and job.worker_id == worker for job in first)
    assert first[0].task_name == TASK_NAME and first[0].task_kwargs == {"message_id": "m1"}
    assert claim(store, worker) == []  # m2 stays behind the running m1

    with store.fast() as session:
        end_in_session(session, [(a1, FINISHED)])
    assert job_status(store, a1) is None  # a finished job is deleted, as procrastinate does
    assert [job.id for job in claim(store, worker)] == [a2]


def test_new_jobs_are_deferred_together_in_their_order(store: MessageStore) -> None:
    waiting = defer(store, "m0", "A")
    due = datetime.now(UTC) + timedelta(minutes=5)
    with store.fast() as session:
        defer_many_in_session(
            session,
            [
                JobRequest("m1", "q", "B", new=True),
                JobRequest("m0", "q", "A", run_at=due),  # not new: its waiting job moves
                JobRequest("m2", "other", "C", run_at=due, new=True),
                JobRequest("m3", "q", "B", new=True),
            ],
        )
    with store.read() as conn:
        rows = conn.execute(
            text(
                "SELECT id, queue_name, lock, queueing_lock, args, scheduled_at, task_name "
                "FROM procrastinate_jobs ORDER BY id"
            )
        ).all()
    assert [(r.queueing_lock, r.queue_name, r.lock) for r in rows] == [
        ("m0", "q", "A"),
        ("m1", "q", "B"),
        ("m2", "other", "C"),
        ("m3", "q", "B"),
    ]
    assert rows[0].id == waiting and rows[0].scheduled_at == due
    assert rows[1].args == {"message_id": "m1"} and rows[1].scheduled_at is None
    assert rows[2].scheduled_at == due
    assert {r.task_name for r in rows} == {TASK_NAME}
    # m0 is not due, m2 is in another queue, m3 waits behind m1 (same key)
    claimed = claim(store, worker_id(store))
    assert [job.task_kwargs["message_id"] for job in claimed] == ["m1"]


def test_a_claim_takes_no_more_than_its_limit(store: MessageStore) -> None:
    ids = [defer(store, f"m{n}", f"K{n}") for n in range(5)]
    worker = worker_id(store)
    assert [job.id for job in claim(store, worker, limit=2)] == ids[:2]
    assert [job.id for job in claim(store, worker, limit=10)] == ids[2:]


def test_a_retry_puts_the_same_job_back_in_its_place(store: MessageStore) -> None:
    job_id = defer(store, "m1", "A")
    later = defer(store, "m2", "A")
    worker = worker_id(store)
    claim(store, worker)
    run_at = datetime.now(UTC) + timedelta(seconds=30)
    with store.fast() as session:
        end_in_session(session, [(job_id, Decision("retry", run_at))])
    status, attempts, scheduled = job_status(store, job_id) or ("", 0, None)
    assert (status, attempts) == ("todo", 1)
    assert scheduled is not None and abs((scheduled - run_at).total_seconds()) < 0.01
    assert claim(store, worker) == []  # the retry is not due, and m2 still waits behind it
    assert job_status(store, later) is not None


def test_several_jobs_end_in_one_call(store: MessageStore) -> None:
    ids = [defer(store, f"m{n}", f"K{n}") for n in range(4)]
    claim(store, worker_id(store))
    run_at = datetime.now(UTC) + timedelta(minutes=1)
    retry = Decision("retry", run_at)
    with store.fast() as session:
        end_in_session(session, [(ids[0], FINISHED), (ids[1], retry), (ids[2], FINISHED)])
    assert job_status(store, ids[0]) is None
    assert job_status(store, ids[2]) is None
    status, attempts, scheduled = job_status(store, ids[1]) or ("", 0, None)
    assert (status, attempts, scheduled) == ("todo", 1, run_at)
    assert job_status(store, ids[3]) == ("doing", 0, None)  # not named: untouched


def test_ending_a_job_that_is_no_longer_running_fails_the_transaction(
    store: MessageStore,
) -> None:
    job_id = defer(store, "m1", "A")
    claim(store, worker_id(store))
    with store.fast() as session:
        end_in_session(session, [(job_id, FINISHED)])
    with pytest.raises(DBAPIError, match="not found"), store.fast() as session:
        end_in_session(session, [(job_id, FINISHED)])  # ended already (by a recovered run, say)
    waiting = defer(store, "m2", "B")
    retry = Decision("retry", datetime.now(UTC))
    with pytest.raises(DBAPIError, match="invalid status"), store.fast() as session:
        end_in_session(session, [(waiting, retry)])  # put back already, not running
    assert job_status(store, waiting) == ("todo", 0, None)


async def test_waiting_jobs_are_claimed_together(procrastinate: Harness) -> None:
    await procrastinate.stop()
    ids = [await procrastinate.submit(f"b{n}", f"K{n}") for n in range(12)]
    await procrastinate.restart()
    for message_id in ids:
        assert (await procrastinate.settled(message_id)).status == DONE
    runtime = procrastinate.runtime
    assert isinstance(runtime, ProcrastinateRuntime)
    batches = sum(each.worker.claimed_batches for each in runtime._workers.values())
    # Four slots: twelve jobs in a handful of claims, not one round trip each.
    assert batches <= 8
    await procrastinate.no_pending_jobs()
    assert runtime._settled == set()  # every job ended in its settle transaction was let go

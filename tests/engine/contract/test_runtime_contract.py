"""What every runtime promises, checked on the embedded runtime and on procrastinate alike.

Messages are stored and queued in one transaction; one business key is processed one message at a
time in arrival order (a retrying message holds back the newer ones), different keys in parallel;
transient failures are retried with back-off that honours Retry-After, and parked once attempts
are used up or the failure is permanent; duplicates are not queued; a job of a worker that died
runs again and the message is applied once; operators can requeue, with or without a corrected
payload; and an older message never overwrites a newer one.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time

import anyio.to_thread
import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from d365sap.engine.operations import MessageOperations
from d365sap.engine.runtime import JobRequest, Runtime
from d365sap.engine.store import Arrival
from d365sap.engine.views import DONE, FAILED, RETRYING, SUPERSEDED
from engine.contract.conftest import Harness
from engine.contract.scripted import FLOW, QUEUE, payload

pytestmark = pytest.mark.anyio


def arrival(label: str, key: str) -> Arrival:
    return Arrival(
        flow=FLOW,
        payload=payload(label, key),
        content_type="application/json",
        correlation_id=f"corr-{label}",
        source_id=None,
        route="scripted",
        business_key=key,
        queue=QUEUE,
    )


class GatedEnqueuer:
    """Enqueues through the runtime, then holds the transaction open for a while.

    While it is open another thread looks at what workers and readers can see. (The event loop
    may be stuck meanwhile: on SQLite the embedded dispatcher waits for the store's write lock.)
    """

    def __init__(self, harness: Harness, hold: float = 0.5) -> None:
        self.harness = harness
        self.hold = hold
        self.seen: dict[str, object] = {}

    def enqueue(self, session: Session, job: JobRequest) -> None:
        self.harness.runtime.enqueue(session, job)
        looker = threading.Thread(target=self._look)
        looker.start()
        looker.join(10)

    def _look(self) -> None:
        time.sleep(self.hold)  # several polling rounds of the workers
        self.seen["journal"] = self.harness.journal.events()
        self.seen["visible"] = self.harness.store.list(business_key="T")


class FailingAfterEnqueue:
    """Enqueues through the runtime, then fails: the whole transaction must roll back."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def enqueue(self, session: Session, job: JobRequest) -> None:
        self.runtime.enqueue(session, job)
        raise RuntimeError("the transaction fails after the job was written")


async def test_job_is_committed_with_its_message(harness: Harness) -> None:
    gated = GatedEnqueuer(harness)
    view, duplicate = await anyio.to_thread.run_sync(
        lambda: harness.store.accept(arrival("t1", "T"), gated)
    )
    assert gated.seen == {"journal": [], "visible": []}  # nothing ran or showed before the commit
    assert not duplicate
    harness.runtime.notify()
    assert (await harness.settled(view.id)).status == DONE
    assert len(harness.journal.of("t1", "start")) == 1


async def test_failed_transaction_leaves_neither_message_nor_job(harness: Harness) -> None:
    failing = FailingAfterEnqueue(harness.runtime)
    with pytest.raises(RuntimeError):
        await anyio.to_thread.run_sync(lambda: harness.store.accept(arrival("r1", "R"), failing))
    assert harness.store.list(business_key="R") == []
    assert harness.pending_jobs() == 0
    await asyncio.sleep(0.3)
    assert harness.journal.events() == []


async def test_one_key_in_arrival_order_even_while_retrying(harness: Harness) -> None:
    first = await harness.submit("a1", "A", ["transient", "transient", "ok"], retry_after=0.2)
    second = await harness.submit("a2", "A", delay=0.05)
    third = await harness.submit("a3", "A", delay=0.05)
    for message_id in (first, second, third):
        assert (await harness.settled(message_id)).status == DONE
    trail = [(e["label"], e["event"]) for e in harness.journal.events()]
    assert trail == [
        ("a1", "start"),
        ("a1", "end"),
        ("a1", "start"),
        ("a1", "end"),
        ("a1", "start"),
        ("a1", "end"),
        ("a2", "start"),
        ("a2", "end"),
        ("a3", "start"),
        ("a3", "end"),
    ]
    await harness.no_pending_jobs()


async def test_different_keys_run_in_parallel(harness: Harness) -> None:
    b = await harness.submit("b1", "B", delay=0.6)
    c = await harness.submit("c1", "C", delay=0.6)
    for message_id in (b, c):
        assert (await harness.settled(message_id)).status == DONE
    (b_start,), (b_end,) = harness.journal.of("b1", "start"), harness.journal.of("b1", "end")
    (c_start,), (c_end,) = harness.journal.of("c1", "start"), harness.journal.of("c1", "end")
    assert b_start["t"] < c_end["t"] and c_start["t"] < b_end["t"]


async def test_retry_honours_retry_after_then_succeeds(harness: Harness) -> None:
    message_id = await harness.submit("w1", "W", ["transient", "ok"], retry_after=0.8)
    waiting = await harness.status(message_id, RETRYING)
    assert waiting.next_attempt_at is not None
    view = await harness.settled(message_id)
    assert view.status == DONE and view.attempts == 2
    first_end = harness.journal.of("w1", "end")[0]["t"]
    second_start = harness.journal.of("w1", "start")[1]["t"]
    assert second_start - first_end >= 0.75  # the base delay alone would be 0.05 s
    await harness.no_pending_jobs()


async def test_parked_when_attempts_are_used_up(harness: Harness) -> None:
    message_id = await harness.submit("p1", "P", ["transient"])
    view = await harness.settled(message_id)
    assert view.status == FAILED and view.attempts == 3
    assert len(harness.journal.of("p1", "start")) == 3
    await harness.no_pending_jobs()


async def test_permanent_error_is_parked_at_once(harness: Harness) -> None:
    message_id = await harness.submit("q1", "Q", ["permanent"])
    view = await harness.settled(message_id)
    assert view.status == FAILED and view.attempts == 1
    assert view.error == "rejected for good"
    await harness.no_pending_jobs()


async def test_duplicates_are_queued_once(harness: Harness) -> None:
    first = await harness.submit("d1", "D", source_id="src-1")
    again = await harness.intake.submit(
        FLOW,
        payload("d1-changed", "D"),
        content_type="application/json",
        correlation_id="corr-again",
        source_id="src-1",
    )
    assert again.duplicate and again.message.id == first
    body = payload("e1", "E")
    same = [
        await harness.intake.submit(
            FLOW, body, content_type="application/json", correlation_id="corr-e"
        )
        for _ in range(2)
    ]
    assert [s.duplicate for s in same] == [False, True]
    assert same[1].message.id == same[0].message.id
    for message_id in (first, same[0].message.id):
        assert (await harness.settled(message_id)).status == DONE
    await harness.no_pending_jobs()
    assert len(harness.journal.of("d1", "start")) == 1
    assert len(harness.journal.of("e1", "start")) == 1
    assert harness.journal.of("d1-changed") == []


async def test_job_of_a_dead_worker_runs_again_and_applies_once(harness: Harness) -> None:
    if harness.kind == "embedded":
        message_id = await harness.submit("k1", "K", ["hang", "ok"])
        await harness.journal.wait_started("k1")
        await harness.stop()  # the process dies mid-job: the job stays claimed
        assert harness.pending_jobs() == 1
        await harness.restart()
    else:
        await harness.stop()  # no in-process workers: the doomed process takes the job
        doomed = harness.spawn_worker()
        message_id = await harness.submit("k1", "K", ["hang", "ok"])
        await harness.journal.wait_started("k1", timeout=30)
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(10)
        with harness.store.sessions() as session:
            doing = session.execute(
                text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'")
            ).scalar_one()
        assert doing == 1
        harness.spawn_worker()
    view = await harness.settled(message_id, timeout=30)
    assert view.status == DONE and view.attempts == 2
    applied = [e for e in harness.journal.of("k1", "end") if e["step"] == "ok"]
    assert len(applied) == 1
    await harness.no_pending_jobs(timeout=10)


def retry(harness: Harness, message_id: str) -> None:
    """Queue the message again the way an operator does."""
    result = MessageOperations(harness.store, harness.runtime).retry_one(message_id)
    assert result.applied, result


async def test_requeue_of_a_failed_message(harness: Harness) -> None:
    message_id = await harness.submit("f1", "F", ["permanent", "ok"])
    assert (await harness.settled(message_id)).status == FAILED
    await anyio.to_thread.run_sync(lambda: retry(harness, message_id))
    harness.runtime.notify()
    view = await harness.settled(message_id)
    assert view.status == DONE and view.attempts == 2
    assert len(view.versions) == 1
    await harness.no_pending_jobs()


async def test_requeue_with_a_corrected_payload(harness: Harness) -> None:
    message_id = await harness.submit("g1", "G", ["permanent"])
    assert (await harness.settled(message_id)).status == FAILED
    corrected = payload("g1-v2", "G", ["ok"])
    await anyio.to_thread.run_sync(
        lambda: MessageOperations(harness.store, harness.runtime).resubmit(
            message_id, corrected, comment="fixed"
        )
    )
    harness.runtime.notify()
    view = await harness.settled(message_id)
    assert view.status == DONE
    assert [v.version for v in view.versions] == [1, 2]
    assert len(harness.journal.of("g1-v2", "end")) == 1


async def test_requeue_during_back_off_runs_the_waiting_job_now(harness: Harness) -> None:
    message_id = await harness.submit("h1", "H", ["transient", "ok"], retry_after=2.0)
    await harness.status(message_id, RETRYING)
    started = time.monotonic()
    await anyio.to_thread.run_sync(lambda: retry(harness, message_id))
    harness.runtime.notify()
    view = await harness.settled(message_id)
    assert time.monotonic() - started < 1.2  # the 2 s back-off was not waited for
    assert view.status == DONE and view.attempts == 2
    assert len(harness.journal.of("h1", "start")) == 2
    await harness.no_pending_jobs()


async def test_older_message_after_a_newer_one_is_superseded(harness: Harness) -> None:
    older = await harness.submit("s1", "S", ["permanent", "ok"])
    assert (await harness.settled(older)).status == FAILED
    newer = await harness.submit("s2", "S")
    assert (await harness.settled(newer)).status == DONE
    await anyio.to_thread.run_sync(lambda: retry(harness, older))
    harness.runtime.notify()
    view = await harness.settled(older)
    assert view.status == SUPERSEDED
    assert len(harness.journal.of("s1", "start")) == 1  # never sent again
    await harness.no_pending_jobs()

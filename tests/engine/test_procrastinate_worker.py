"""d365sap's procrastinate worker: what it changes in procrastinate's own worker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence

import pytest
from procrastinate import App, testing

from d365sap.engine.procrastinate_worker import ClaimingWorker


async def _no_jobs(_queues: object, _worker_id: int, _limit: int) -> list[object]:
    return []


def worker() -> ClaimingWorker:
    app = App(connector=testing.InMemoryConnector())
    return ClaimingWorker(app, claimer=_no_jobs, settled=set(), queues=["q"], name="test")


def test_log_fields_are_built_only_when_procrastinate_logs_info() -> None:
    subject = worker()
    try:
        subject.logger.setLevel(logging.WARNING)
        assert subject._log_extra("start_job", None, None) == {"action": "start_job"}
        subject.logger.setLevel(logging.INFO)
        full = subject._log_extra("start_job", None, None)
    finally:
        subject.logger.setLevel(logging.NOTSET)
    assert full["action"] == "start_job"
    assert full["worker"]["name"] == "test"


class _Recorder:
    """A claimer that hands out ``limit`` jobs (or ``short`` fewer) and records each limit."""

    def __init__(self) -> None:
        self.limits: list[int] = []
        self.short = 0

    async def __call__(self, _queues: object, _worker_id: int, limit: int) -> list[object]:
        self.limits.append(limit)
        return [object() for _ in range(max(0, limit - self.short))]


class _Holding(ClaimingWorker):
    """Keeps each claimed job's slot until the test ends the job (releases the slot)."""

    def _start(self, job: object) -> None:  # type: ignore[override]
        pass

    def end_jobs(self, count: int) -> None:
        self._give_back(count)


class _Looks:
    """A ready check that answers ``answer`` and counts the looks."""

    def __init__(self, answer: bool) -> None:
        self.answer = answer
        self.looks: list[list[str]] = []

    async def __call__(self, queues: Sequence[str]) -> bool:
        self.looks.append(list(queues))
        return self.answer


def holding(
    claimer: _Recorder, *, concurrency: int, claim_wait: float, ready: _Looks | None = None
) -> _Holding:
    app = App(connector=testing.InMemoryConnector())
    subject = _Holding(
        app,
        claimer=claimer,  # type: ignore[arg-type]
        settled=set(),
        ready=ready,
        queues=["q"],
        name="test",
        concurrency=concurrency,
        claim_wait=claim_wait,
    )
    subject.worker_id = 1
    return subject


@contextlib.asynccontextmanager
async def claiming(subject: _Holding) -> AsyncIterator[None]:
    """Run the worker's claim loop while the block runs; stop it after."""
    loop = asyncio.create_task(subject._fetch_and_process_jobs())
    try:
        yield
    finally:
        subject._stop_event.set()
        await asyncio.wait_for(loop, 5)


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not met")


@pytest.mark.anyio
async def test_with_a_backlog_a_claim_waits_for_a_quarter_of_the_slots() -> None:
    claimer = _Recorder()
    subject = holding(claimer, concurrency=8, claim_wait=30.0)
    async with claiming(subject):
        await _until(lambda: claimer.limits == [8])  # every slot filled: a backlog waits
        subject.end_jobs(1)
        await asyncio.sleep(0.05)
        assert claimer.limits == [8]  # one free slot of eight: not claimed for alone
        subject.end_jobs(1)
        await _until(lambda: claimer.limits == [8, 2])


@pytest.mark.anyio
async def test_with_a_backlog_a_claim_waits_no_longer_than_claim_wait() -> None:
    claimer = _Recorder()
    subject = holding(claimer, concurrency=8, claim_wait=0.05)
    async with claiming(subject):
        await _until(lambda: claimer.limits == [8])
        subject.end_jobs(1)
        await _until(lambda: claimer.limits == [8, 1])


@pytest.mark.anyio
async def test_without_a_backlog_a_free_slot_is_claimed_for_at_once() -> None:
    claimer = _Recorder()
    claimer.short = 1  # fewer jobs than slots: nothing else is waiting
    subject = holding(claimer, concurrency=8, claim_wait=30.0)
    await asyncio.wait_for(subject._fetch_and_process_jobs(), 5)
    assert claimer.limits == [8]
    claimer.short = 0
    async with claiming(subject):
        await _until(lambda: claimer.limits == [8, 1])


@pytest.mark.anyio
async def test_stopping_while_a_claim_waits_claims_nothing_and_frees_the_slots() -> None:
    claimer = _Recorder()
    subject = holding(claimer, concurrency=8, claim_wait=30.0)
    loop = asyncio.create_task(subject._fetch_and_process_jobs())
    await _until(lambda: claimer.limits == [8])
    subject.end_jobs(1)
    await asyncio.sleep(0.05)
    subject._stop_event.set()
    await asyncio.wait_for(loop, 5)
    assert claimer.limits == [8]
    subject.end_jobs(7)
    assert subject._job_semaphore._value == 8  # the waiting claim's slot was given back


@pytest.mark.anyio
async def test_a_poll_with_nothing_ready_looks_and_does_not_claim() -> None:
    claimer, looks = _Recorder(), _Looks(False)
    subject = holding(claimer, concurrency=8, claim_wait=0.0, ready=looks)
    await asyncio.wait_for(subject._fetch_and_process_jobs(), 5)
    assert looks.looks == [["q"]]
    assert claimer.limits == []
    assert subject._job_semaphore._value == 8  # no slot taken


@pytest.mark.anyio
async def test_a_poll_that_finds_a_job_ready_claims() -> None:
    claimer, looks = _Recorder(), _Looks(True)
    claimer.short = 7
    subject = holding(claimer, concurrency=8, claim_wait=0.0, ready=looks)
    await asyncio.wait_for(subject._fetch_and_process_jobs(), 5)
    assert looks.looks == [["q"]]
    assert claimer.limits == [8]


@pytest.mark.anyio
async def test_news_of_a_job_is_claimed_for_without_a_look() -> None:
    claimer, looks = _Recorder(), _Looks(False)
    claimer.short = 7
    subject = holding(claimer, concurrency=8, claim_wait=0.0, ready=looks)
    subject._new_job_event.set()  # a job was announced, or one ended
    await asyncio.wait_for(subject._fetch_and_process_jobs(), 5)
    assert looks.looks == []
    assert claimer.limits == [8]
    assert not subject._new_job_event.is_set()  # cleared by the claim

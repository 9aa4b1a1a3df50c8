"""The embedded runtime: a job table in the store's database and asyncio workers in the service.

One dispatcher loop claims due jobs per queue (one queue per target system, each with its own
concurrency) and runs them as tasks; a heartbeat renews the leases of running jobs and returns
jobs whose lease ran out. At start every job left running by a previous process (killed, crashed)
goes back to the queue, so nothing accepted is ever lost. One service process serves one
database; scale-out beyond that is the procrastinate runtime's job.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import uuid
from datetime import UTC, datetime

import structlog

from d365sap.engine.attempts import Started, begin_in
from d365sap.engine.processor import Processor
from d365sap.engine.queue import JobQueue, add_job, finish_job, retry_job
from d365sap.engine.runtime import DbHandle, Decision, JobRequest

log = structlog.get_logger("d365sap.engine.embedded")

GATHER_SECONDS = 0.01
"""How long a claim may wait for more free slots while jobs queue (never with an idle queue)."""


class EmbeddedRuntime:
    """Queue and workers inside the service process."""

    kind = "embedded"

    def __init__(
        self,
        processor: Processor,
        *,
        concurrency: dict[str, int],
        default_concurrency: int = 4,
        poll_interval: float = 1.0,
        lease_seconds: float = 60.0,
        grace_seconds: float = 5.0,
    ) -> None:
        self.processor = processor
        self.concurrency = dict(concurrency)
        self.default_concurrency = default_concurrency
        self.poll_interval = poll_interval
        self.grace_seconds = grace_seconds
        worker_id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.jobs = JobQueue(
            processor.store.sessions,
            worker_id=worker_id,
            lease=lease_seconds,
            write=processor.store.fast,
        )
        self._lease_seconds = lease_seconds
        self._running: dict[str, dict[str, asyncio.Task[None]]] = {}
        self._wake: asyncio.Event | None = None
        # Claiming while a backlog waits (see _dispatch): at least this many free slots, or
        # GATHER_SECONDS since the last claim.
        self._gather = max(2, (sum(self.concurrency.values()) or default_concurrency) // 8)
        self._last_claim = 0.0
        self._backlog = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # -- the runtime port ---------------------------------------------------------------------

    def enqueue(self, session: DbHandle, job: JobRequest) -> None:
        """Add the job row in the caller's transaction."""
        add_job(session, job)

    def notify(self) -> None:
        """Wake the dispatcher (safe from any thread)."""
        if self._wake is None or self._loop is None:
            return
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def start(self) -> None:
        """Recover jobs of a previous process, then start dispatching."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        recovered = await self.processor.store.call(lambda: self.jobs.recover(all_running=True))
        if recovered:
            log.warning("recovered jobs left running by a previous process", count=recovered)
        self._tasks = [
            asyncio.create_task(self._dispatch(), name="d365sap-dispatcher"),
            asyncio.create_task(self._heartbeat(), name="d365sap-heartbeat"),
        ]

    async def stop(self) -> None:
        """Stop claiming; give running jobs a grace period, then cancel (they are recovered)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        running = [t for per_queue in self._running.values() for t in per_queue.values()]
        if running:
            _, pending = await asyncio.wait(running, timeout=self.grace_seconds)
            for task in pending:
                task.cancel()
            for task in pending:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._running.clear()

    # -- dispatching --------------------------------------------------------------------------

    def limit(self, queue: str) -> int:
        """How many jobs of ``queue`` may run at once."""
        return self.concurrency.get(queue, self.default_concurrency)

    def _free(self) -> dict[str, int]:
        queues = set(self.concurrency) | set(self._running)
        return {q: self.limit(q) - len(self._running.get(q, {})) for q in queues}

    async def _dispatch(self) -> None:
        """Claim jobs whenever a slot is free and jobs are due.

        A finishing job wakes the dispatcher. While every queue is busy it does not ask the
        database at all (it claims anyway once ``poll_interval`` passes without a wake, which
        also serves queues without settings); while due jobs wait for a slot it waits for the
        next wake instead of asking when the next job is due. With a backlog waiting it claims
        once several slots are free or :data:`GATHER_SECONDS` after its last claim, so jobs
        finishing one by one are not claimed for one by one.
        """
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        woken = True
        while True:
            self._wake.clear()
            free = self._free()
            if woken and self._backlog:
                # Jobs wait and only a slot or two came free: let a few more jobs finish
                # first (briefly), so one claim starts several jobs instead of one each.
                hold = self._last_claim + GATHER_SECONDS - loop.time()
                if hold > 0 and sum(max(0, n) for n in free.values()) < self._gather:
                    await asyncio.sleep(hold)
                    self._wake.clear()
                    free = self._free()
            sleep = self.poll_interval
            # With every slot taken, a finishing job wakes us; claim only on the poll then.
            if not woken or any(n > 0 for n in free.values()):
                try:
                    sleep = await self._claim(free)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("dispatcher error; retrying")
            woken = True
            if sleep > 0:
                try:
                    async with asyncio.timeout(sleep):
                        await self._wake.wait()
                except TimeoutError:
                    woken = False

    async def _claim(self, free: dict[str, int]) -> float:
        """Claim and start due jobs; how long to wait before claiming again (unless woken)."""
        self._last_claim = asyncio.get_running_loop().time()
        claim = await self.processor.store.call(
            functools.partial(self.jobs.claim, free, self.default_concurrency, begin_in)
        )
        self._backlog = claim.due_left
        for queue, message_id, started in claim.jobs:
            running = self._running.setdefault(queue, {})
            running[message_id] = asyncio.create_task(
                self._run(queue, message_id, started), name=f"d365sap-job-{message_id}"
            )
        if claim.due_left:
            # Jobs wait for a slot: having taken some, claim again while slots are free;
            # otherwise the next finishing job wakes us.
            room = any(n > 0 for n in self._free().values())
            return 0.0 if claim.jobs and room else self.poll_interval
        return await self._idle_time()

    async def _idle_time(self) -> float:
        due = await self.processor.store.call(self.jobs.next_run_at)
        if due is None:
            return self.poll_interval
        wait = (due - datetime.now(UTC)).total_seconds()
        return max(0.01, min(self.poll_interval, wait))

    async def _run(self, queue: str, message_id: str, started: Started | None) -> None:
        settled: list[bool] = []
        lock_key = started[0].lock_key if isinstance(started, tuple) else None

        def settle_job(session: DbHandle, decision: Decision) -> None:
            if decision.kind == "retry" and decision.run_at is not None:
                retry_job(session, message_id, decision.run_at)
            else:
                finish_job(session, message_id, lock_key)
            settled.append(True)

        try:
            await self.processor.process(message_id, on_settle=settle_job, started=started)
            if not settled:  # skipped (already final or superseded): no attempt was recorded
                await self.processor.store.call(lambda: self.jobs.finish(message_id))
        except asyncio.CancelledError:
            raise
        except Exception:
            # The job stays claimed; its lease runs out and it is tried again.
            log.exception("job failed outside the flow", message_id=message_id)
        finally:
            self._running.get(queue, {}).pop(message_id, None)
            if self._wake is not None:
                self._wake.set()

    async def _heartbeat(self) -> None:
        interval = max(0.5, self._lease_seconds / 3)
        while True:
            await asyncio.sleep(interval)
            try:
                ids = [mid for per_queue in self._running.values() for mid in per_queue]
                await self.processor.store.call(functools.partial(self.jobs.extend, ids))
                recovered = await self.processor.store.call(self.jobs.recover)
                if recovered:
                    log.warning("recovered jobs with an expired lease", count=recovered)
                    self.notify()
            except Exception:
                log.exception("heartbeat error")

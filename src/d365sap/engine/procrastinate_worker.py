"""d365sap's procrastinate worker: claims jobs in batches and leaves settled jobs to the store.

procrastinate's own worker fetches one job per round trip and, after the task, finishes it with
another: with PostgreSQL on the same two cores, those round trips and the store's own per-message
transactions were most of a worker's CPU. This worker keeps procrastinate's machinery (its
registration and heartbeat, LISTEN/NOTIFY, aborts, graceful shutdown, retries) and changes two
steps:

* **Claiming.** When slots are free it asks a :data:`Claimer` for up to that many jobs at once;
  d365sap's claimer fetches them with procrastinate's fetch conditions and starts their
  messages' attempts in the same transaction (see :mod:`d365sap.engine.procrastinate_runtime`).
* **Finishing.** A job whose outcome was recorded in the store's settle transaction (finished
  or put back for a retry there, together with its message) is in :attr:`settled`; for those
  the worker skips its own finishing round trip.

It also looks for work again as soon as a job ends: ending a job may unblock the next job of
the same lock key, which procrastinate does not announce (its notifications are for inserts).

While a backlog waits (the last claim got every job it asked for), a claim waits up to
:data:`CLAIM_WAIT_SECONDS` for a quarter of the slots to be free instead of claiming for each
job that ends: jobs finishing one by one were claimed for one by one, and with several worker
processes on a machine a claim and a settle transaction per job or two were a large share of
the CPU per message. Without a backlog a free slot is filled at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from procrastinate import App, job_context
from procrastinate.jobs import Job
from procrastinate.worker import Worker

CLAIM_WAIT_SECONDS = 0.01
"""How long a claim waits for more free slots while a backlog waits (see the module)."""

Claimer = Callable[[Sequence[str], int, int], Awaitable[list[Job]]]
"""``claimer(queues, worker_id, limit)``: up to ``limit`` jobs, now ``doing`` for the worker."""
ReadyCheck = Callable[[Sequence[str]], Awaitable[bool]]
"""``ready(queues)``: whether a job may be ready to claim; much cheaper than a claim."""


class ClaimingWorker(Worker):
    """A procrastinate worker that claims jobs in batches (see the module's docstring)."""

    def __init__(
        self,
        app: App,
        *,
        claimer: Claimer,
        settled: set[int],
        ready: ReadyCheck | None = None,
        queues: Sequence[str],
        concurrency: int = 1,
        claim_wait: float = CLAIM_WAIT_SECONDS,
        **options: Any,
    ) -> None:
        super().__init__(app, queues=list(queues), concurrency=concurrency, **options)
        self.claimer = claimer
        self.ready = ready
        self.settled = settled
        self.claimed_batches = 0
        self.claim_wait = claim_wait
        self.claim_batch = max(1, concurrency // 4)
        """Free slots a claim waits for while a backlog waits (at most ``claim_wait``)."""
        self._backlog = False

    async def run(self) -> None:
        """Serve jobs until :meth:`stop`."""
        await super().run()  # type: ignore[no-untyped-call]

    def stop(self) -> None:
        """Stop claiming; running jobs get the graceful timeout, then are retried."""
        super().stop()  # type: ignore[no-untyped-call]

    async def _fetch_and_process_jobs(self) -> None:
        """Claim jobs for every free slot until none is ready or the worker stops."""
        if not await self._worth_claiming():
            return
        while not self._stop_event.is_set():
            if not await self._acquire_slot():
                break
            slots = 1
            while not self._job_semaphore.locked():  # every other free slot, without waiting
                await self._job_semaphore.acquire()
                slots += 1
            if self._backlog and slots < self.claim_batch:
                slots += await self._more_slots(self.claim_batch - slots)
            if self._stop_event.is_set():
                self._give_back(slots)
                break
            # Cleared before claiming: a job announced meanwhile sets it again and is claimed
            # on the next round instead of waiting for the polling interval.
            self._new_job_event.clear()
            assert self.worker_id is not None
            try:
                jobs = await self.claimer(list(self.queues or ()), self.worker_id, slots)
            except BaseException:
                self._give_back(slots)
                raise
            self.claimed_batches += 1
            self._backlog = len(jobs) == slots
            self._give_back(slots - len(jobs))
            for job in jobs:
                self._start(job)
            if len(jobs) < slots:
                break  # nothing more is ready now

    async def _worth_claiming(self) -> bool:
        """Whether to claim now: always when woken by news, after a cheap look when polling.

        A new job announced, or a job ended, sets the new-job event: that is worth a claim.
        Otherwise the worker woke for its polling interval, which on an idle queue is nearly
        always in vain; the look costs one read instead of a claim's transaction. The event
        stays set meanwhile, so news arriving during the look is not lost.
        """
        if self.ready is None or self._new_job_event.is_set() or self._backlog:
            return True
        return await self.ready(list(self.queues or ()))

    async def _more_slots(self, wanted: int) -> int:
        """Acquire up to ``wanted`` more slots as jobs end, for at most :attr:`claim_wait`."""
        deadline = time.monotonic() + self.claim_wait
        got = 0
        while got < wanted:
            left = deadline - time.monotonic()
            if left <= 0 or not await self._acquire_slot(left):
                break
            got += 1
        return got

    async def _acquire_slot(self, timeout: float | None = None) -> bool:
        """Take one slot as soon as one is free; ``False`` if the worker stops or time runs out.

        A slot taken in the same moment the worker stops is still taken (``True``): the caller
        checks the stop event and gives its slots back.
        """
        acquiring = asyncio.ensure_future(self._job_semaphore.acquire())
        stopping = asyncio.ensure_future(self._stop_event.wait())
        await asyncio.wait((acquiring, stopping), timeout=timeout, return_when=FIRST_COMPLETED)
        stopping.cancel()
        if not acquiring.done():
            acquiring.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await acquiring
        return not acquiring.cancelled()

    def _give_back(self, slots: int) -> None:
        for _ in range(slots):
            self._job_semaphore.release()

    def _start(self, job: Job) -> None:
        """Run a claimed job the way procrastinate runs a fetched one."""
        job_id = job.id
        context = job_context.JobContext(
            app=self.app,
            worker_name=self.worker_name,
            worker_queues=self.queues,
            additional_context=dict(self.additional_context or {}),
            job=job,
            abort_reason=lambda: self._job_ids_to_abort.get(job_id) if job_id else None,
            start_timestamp=time.time(),
        )
        task = asyncio.create_task(
            self._process_job(context),
            name=f"process job {job.task_name}[{job_id}]",
        )
        self._running_jobs[task] = context
        task.add_done_callback(self._job_done)

    def _job_done(self, task: asyncio.Task[Any]) -> None:
        del self._running_jobs[task]
        self._job_semaphore.release()

    def _log_extra(self, action: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """procrastinate's structured log fields, built only when its info lines are written.

        It builds them (the job as a dict, twice per job) for every line it may log, written
        or not; with its logger above INFO its warnings and errors still name the job.
        """
        if not self.logger.isEnabledFor(logging.INFO):
            return {"action": action}
        extra: dict[str, Any] = super()._log_extra(action, *args, **kwargs)
        return extra

    async def _persist_job_status(self, job: Job, *args: Any, **kwargs: Any) -> None:
        if job.id is not None and job.id in self.settled:
            # Finished or put back for a retry in the store's settle transaction already.
            self.settled.discard(job.id)
            self._job_ids_to_abort.pop(job.id, None)
        else:
            await super()._persist_job_status(job, *args, **kwargs)
        self._new_job_event.set()

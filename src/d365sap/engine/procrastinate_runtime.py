"""The procrastinate runtime: jobs in PostgreSQL, processed by ``d365sap worker`` processes.

The service process only defers: the job is written by procrastinate's SQL function in the same
transaction as the message (see :mod:`d365sap.engine.procrastinate_jobs`), and nothing needs to
be woken because procrastinate's workers LISTEN for new jobs. Workers run wherever
``d365sap worker`` is started, any number of processes on any number of machines; with
``runtime.workers_in_service`` the service runs them too (a single-process PostgreSQL setup).

Each queue (one per target system) gets its own procrastinate worker with its own concurrency,
so a slow S/4HANA Cloud cannot take the slots of SAP ERP. Workers heartbeat; every worker process
also looks for jobs of dead workers and runs them again, so a job claimed by a process killed with
SIGKILL is retried once ``runtime.stalled_seconds`` have passed without its heartbeat.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import structlog
from procrastinate import App
from procrastinate.jobs import Job
from sqlalchemy import text
from sqlalchemy.orm import Session

from d365sap.engine import queue_statistics
from d365sap.engine.attempts import Started, begin_many
from d365sap.engine.processor import Processor
from d365sap.engine.procrastinate_jobs import (
    TASK_NAME,
    DecisionRetry,
    RetryAt,
    claim_in_session,
    defer_in_session,
    defer_many_in_session,
    end_in_session,
    jobs_ready,
    recover_stalled,
)
from d365sap.engine.procrastinate_pool import worker_connector
from d365sap.engine.procrastinate_schema import conninfo_from_url, install_schema
from d365sap.engine.procrastinate_worker import ClaimingWorker
from d365sap.engine.runtime import FINISHED, DbHandle, Decision, JobRequest
from d365sap.engine.store import Settlement

log = structlog.get_logger("d365sap.engine.procrastinate")

_WAITING_QUEUES = "SELECT DISTINCT queue_name FROM procrastinate_jobs WHERE status = 'todo'"


@dataclass(frozen=True)
class WorkerPlan:
    """One procrastinate worker: the queue it serves and how many jobs it runs at once."""

    queue: str
    concurrency: int


def plan_workers(
    concurrency: Mapping[str, int],
    *,
    default: int,
    queues: Sequence[str] | None = None,
    override: int | None = None,
) -> list[WorkerPlan]:
    """One worker per queue: the named ``queues``, else every queue of the settings.

    ``override`` (``--concurrency``) applies to each queue; otherwise a queue's own setting,
    else ``default``.
    """
    names = list(dict.fromkeys(queues)) if queues else sorted(concurrency)
    return [WorkerPlan(name, override or concurrency.get(name, default)) for name in names]


@dataclass(frozen=True)
class _Running:
    plan: WorkerPlan
    worker: ClaimingWorker
    task: asyncio.Task[None]


@dataclass(frozen=True)
class _Claimed:
    """A claimed job whose message's attempt was started in the claim's transaction."""

    job_id: int
    started: Started

    @property
    def attempt(self) -> int | None:
        return self.started[1] if isinstance(self.started, tuple) else None


class ProcrastinateRuntime:
    """The runtime port on procrastinate: defer in the store's transaction, serve in workers."""

    kind = "procrastinate"

    def __init__(
        self,
        processor: Processor,
        *,
        store_url: str,
        concurrency: Mapping[str, int],
        default_concurrency: int | None = None,
        poll_interval: float = 1.0,
        heartbeat_seconds: float = 10.0,
        stalled_seconds: float = 30.0,
        shutdown_grace_seconds: float = 10.0,
        workers_in_process: bool = False,
    ) -> None:
        self.processor = processor
        self.conninfo = conninfo_from_url(store_url)
        self.concurrency = dict(concurrency)
        self.default_concurrency = default_concurrency or self.concurrency.get("default", 4)
        self.poll_interval = poll_interval
        self.heartbeat_seconds = heartbeat_seconds
        self.stalled_seconds = stalled_seconds
        self.shutdown_grace_seconds = shutdown_grace_seconds
        self.workers_in_process = workers_in_process
        # Workers hold a connection only for short statements (claims and settles use the
        # store's own pool), so a small pool serves every queue of the process.
        self.connector = worker_connector(self.conninfo)
        self.app = App(connector=self.connector)
        self.app.task(name=TASK_NAME, retry=DecisionRetry(), pass_context=False)(self._run)
        self._stop: asyncio.Event | None = None
        self._stop_requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._serving: asyncio.Task[None] | None = None
        self._workers: dict[str, _Running] = {}
        self._claimed: dict[str, _Claimed] = {}
        # Jobs ended in the store's settle transaction; their workers skip ending them again.
        self._settled: set[int] = set()
        processor.on_settle_batch(self._end_jobs)

    # -- the runtime port ---------------------------------------------------------------------

    def enqueue(self, session: DbHandle, job: JobRequest) -> None:
        """Defer the job with procrastinate's SQL function, in the caller's transaction."""
        defer_in_session(session, job)

    def enqueue_many(self, session: DbHandle, jobs: list[JobRequest]) -> None:
        """Defer several jobs in the caller's transaction, new messages' in one statement."""
        defer_many_in_session(session, jobs)

    def notify(self) -> None:
        """Nothing to do: workers LISTEN for inserted jobs."""

    async def start(self) -> None:
        """Make sure the schema exists; start in-process workers if configured."""
        await install_schema(self.conninfo)
        if self.workers_in_process:
            self._stop_requested = False
            self._serving = asyncio.create_task(self.serve(), name="d365sap-procrastinate")

    async def stop(self) -> None:
        """Stop in-process workers, if any (running jobs get the grace period)."""
        if self._serving is None:
            return
        self.request_stop()
        try:
            await self._serving
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("in-process procrastinate workers failed")
        finally:
            self._serving = None

    # -- serving ------------------------------------------------------------------------------

    @property
    def serving_queues(self) -> list[str]:
        """The queues with a running worker in this process."""
        return sorted(self._workers)

    def request_stop(self) -> None:
        """Ask :meth:`serve` to stop, even before it got going (safe from other threads)."""
        self._stop_requested = True
        if self._stop is None or self._loop is None:
            return
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stop.set)

    async def serve(
        self, queues: Sequence[str] | None = None, concurrency: int | None = None
    ) -> None:
        """Run workers until :meth:`request_stop`: one per named queue, or one per queue seen.

        Without ``queues`` the configured queues are served from the start and any other queue
        as soon as a job waits in it, each with its configured (else the default) concurrency.
        """
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self._stop_requested:
            self._stop.set()
        await install_schema(self.conninfo)
        plans = plan_workers(
            self.concurrency, default=self.default_concurrency, queues=queues, override=concurrency
        )
        async with self.app.open_async():
            for plan in plans:
                self._start_worker(plan)
            side = [
                asyncio.create_task(self._recover_loop(), name="d365sap-recover"),
                asyncio.create_task(self._statistics_loop(), name="d365sap-statistics"),
                asyncio.create_task(
                    self._supervise_loop(discover=not queues, concurrency=concurrency),
                    name="d365sap-supervise",
                ),
            ]
            log.info(
                "procrastinate workers started",
                queues={plan.queue: plan.concurrency for plan in plans},
                pid=os.getpid(),
            )
            try:
                await self._stop.wait()
            finally:
                for task in side:
                    task.cancel()
                await asyncio.gather(*side, return_exceptions=True)
                await self._stop_workers()
        self._stop_requested = False
        log.info("procrastinate workers stopped", pid=os.getpid())

    def _start_worker(self, plan: WorkerPlan) -> None:
        worker = ClaimingWorker(
            self.app,
            claimer=self._claim,
            ready=self._ready,
            settled=self._settled,
            queues=[plan.queue],
            name=f"d365sap-{plan.queue}",
            concurrency=plan.concurrency,
            fetch_job_polling_interval=self.poll_interval,
            shutdown_graceful_timeout=self.shutdown_grace_seconds,
            delete_jobs="successful",
            install_signal_handlers=False,
            update_heartbeat_interval=self.heartbeat_seconds,
            stalled_worker_timeout=self.stalled_seconds,
        )
        task = asyncio.create_task(worker.run(), name=f"d365sap-worker-{plan.queue}")
        self._workers[plan.queue] = _Running(plan, worker, task)

    async def _stop_workers(self) -> None:
        running = list(self._workers.values())
        for each in running:
            each.worker.stop()
        results = await asyncio.gather(*(each.task for each in running), return_exceptions=True)
        for each, result in zip(running, results, strict=True):
            if isinstance(result, Exception):
                log.error("worker ended with an error", queue=each.plan.queue, error=repr(result))
        self._workers.clear()

    async def _recover_loop(self) -> None:
        """Return jobs of workers without a heartbeat to the queue, as retries of the same job."""
        interval = max(0.2, min(self.stalled_seconds / 2, self.heartbeat_seconds))
        while True:
            try:
                recovered = await recover_stalled(self.connector, seconds=self.stalled_seconds)
                if recovered:
                    log.warning("jobs of a dead worker queued again", job_ids=recovered)
                await self.app.job_manager.prune_stalled_workers(self.stalled_seconds)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("stalled job recovery failed; trying again")
            await asyncio.sleep(interval)

    async def _statistics_loop(self) -> None:
        """Keep the job table's planner statistics fresh (see engine.queue_statistics)."""
        store = self.processor.store
        while True:
            await asyncio.sleep(queue_statistics.CHECK_SECONDS)
            try:
                if await store.call(self._refresh_statistics):
                    log.debug("job table statistics refreshed")
            except asyncio.CancelledError:
                raise
            except Exception as error:
                # Not fatal: autovacuum analyses the table too, only later.
                log.warning("refreshing the job table's statistics failed", error=repr(error))
                await asyncio.sleep(60)

    def _refresh_statistics(self) -> bool:
        with self.processor.store.fast() as session:
            return queue_statistics.refresh_if_stale(session)

    async def _supervise_loop(self, *, discover: bool, concurrency: int | None) -> None:
        """Restart a worker that ended by itself (its database connection broke, say) and,
        serving all queues, start a worker for a queue without settings once a job waits in it.
        """
        while True:
            await asyncio.sleep(max(self.poll_interval, 1.0))
            for each in list(self._workers.values()):
                if each.task.done():
                    error = None if each.task.cancelled() else each.task.exception()
                    log.error(
                        "worker ended unexpectedly; restarting",
                        queue=each.plan.queue,
                        error=repr(error),
                    )
                    self._start_worker(each.plan)
            if not discover:
                continue
            try:
                rows = await self.connector.execute_query_all_async(_WAITING_QUEUES)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("looking for new queues failed")
                continue
            for row in rows:
                queue = str(row["queue_name"])
                if queue not in self._workers:
                    plan = WorkerPlan(queue, concurrency or self.default_concurrency)
                    log.info("serving a new queue", queue=queue, concurrency=plan.concurrency)
                    self._start_worker(plan)

    async def _ready(self, queues: Sequence[str]) -> bool:
        return await jobs_ready(self.connector, queues)

    async def _claim(self, queues: Sequence[str], worker_id: int, limit: int) -> list[Job]:
        """Claim up to ``limit`` jobs and start their messages' attempts, in one transaction."""
        store = self.processor.store

        def claim() -> tuple[list[Job], dict[str, tuple[int, Started]]]:
            with store.fast() as session:
                jobs = claim_in_session(session, queues, worker_id, limit)
                ours = {
                    mid: job.id
                    for job in jobs
                    if (mid := _message_id(job)) is not None and job.id is not None
                }
                started = begin_many(session, list(ours))
                return jobs, {mid: (ours[mid], result) for mid, result in started.items()}

        jobs, started = await store.call(claim)
        for message_id, (job_id, result) in started.items():
            self._claimed[message_id] = _Claimed(job_id, result)
        return jobs

    def _end_jobs(self, session: DbHandle, settlements: list[Settlement]) -> None:
        """End the jobs of claimed messages whose attempts this transaction records."""
        ended: list[tuple[int, Decision]] = []
        for settlement in settlements:
            claimed = self._claimed.get(settlement.message_id)
            if claimed is None or claimed.attempt != settlement.attempt:
                continue
            retry_at = settlement.next_attempt_at
            ended.append((claimed.job_id, Decision("retry", retry_at) if retry_at else FINISHED))
        if ended:
            end_in_session(session, ended)
            self._settled.update(job_id for job_id, _ in ended)

    async def _run(self, message_id: str) -> None:
        """The task: process the message once; a planned retry goes back as the same job.

        A job claimed by this process is ended in the transaction that records the attempt
        (:meth:`_end_jobs`), so message and job settle together; otherwise (a skipped message,
        or a job fetched some other way) procrastinate's worker ends it.
        """
        claimed = self._claimed.get(message_id)
        job_id = claimed.job_id if claimed is not None else None
        try:
            decision = await self.processor.process(
                message_id, started=claimed.started if claimed is not None else None
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            if job_id is not None:
                self._settled.discard(job_id)  # its settle transaction did not commit
            # Procrastinate retries it (DecisionRetry); say why here, its own log is quieter.
            log.exception("job failed outside the flow; retrying", message_id=message_id)
            raise
        finally:
            self._claimed.pop(message_id, None)
        if job_id is not None and job_id in self._settled:
            return
        if decision.kind == "retry":
            raise RetryAt(decision.run_at)

    # -- inspection (operators, tests) --------------------------------------------------------

    def pending_jobs(self, session: Session) -> dict[str, int]:
        """How many of d365sap's jobs wait (``todo``) or run (``doing``)."""
        rows = session.execute(
            text(
                "SELECT status::text, count(*) FROM procrastinate_jobs "
                "WHERE task_name = :task AND status IN ('todo', 'doing') GROUP BY status"
            ),
            {"task": TASK_NAME},
        ).all()
        return {str(status): int(count) for status, count in rows}


def _message_id(job: Job) -> str | None:
    """The message a d365sap job processes (``None`` for another task's job)."""
    if job.task_name != TASK_NAME:
        return None
    value = job.task_kwargs.get("message_id")
    return value if isinstance(value, str) else None

"""Procrastinate jobs of d365sap: deferring in the store's transaction, retrying, recovering.

* Deferring goes through procrastinate's own SQL function inside the caller's SQLAlchemy
  transaction, so the message row and its job commit (or roll back) together. The job's ``lock``
  is the message's lock key: procrastinate's fetch never starts a job while an earlier job of the
  same lock is waiting or running, which is the per-key order. Its ``queueing_lock`` is the
  message id, so a message never has two waiting jobs and a requeue finds the waiting one.
* Workers claim jobs with procrastinate's fetch conditions, several at once
  (:func:`claim_in_session`), and end a job in the transaction that records its message's
  attempt (:func:`end_in_session`): deleted when done, or procrastinate's retry of the *same*
  job, back to ``todo`` with its original id, so it keeps its place ahead of newer jobs of its
  key. Where the attempt was not recorded that way the task raises :class:`RetryAt`, which
  :class:`DecisionRetry` turns into the same retry.
* Jobs left ``doing`` by a worker whose heartbeat stopped (killed, machine lost) are put back to
  ``todo`` by :func:`recover_stalled`, again as retries of the same job.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from procrastinate import exceptions as procrastinate_exceptions
from procrastinate.connector import BaseAsyncConnector
from procrastinate.jobs import Job
from procrastinate.retry import BaseRetryStrategy, RetryDecision
from sqlalchemy import text

from d365sap.engine.runtime import DbHandle, Decision, JobRequest

TASK_NAME = "d365sap.process_message"
# Unexpected errors (the store unreachable, say) are retried with a capped back-off.
INFRA_RETRY_CAP_SECONDS = 60.0

_RESCHEDULE = text(
    """
    UPDATE procrastinate_jobs SET scheduled_at = :run_at
     WHERE queueing_lock = :message_id AND status = 'todo' AND task_name = :task_name
    RETURNING id
    """
)
# Procrastinate's workers LISTEN on this channel; its trigger notifies inserts only, so a job
# moved forward by a requeue is announced the same way (delivered when the transaction commits).
_ANNOUNCE = text(
    """
    SELECT pg_notify(
        'procrastinate_queue_v1#' || :queue,
        json_build_object('type', 'job_inserted', 'job_id', CAST(:job_id AS bigint))::text
    )
    """
)
_RUNNING = text(
    """
    SELECT id FROM procrastinate_jobs
     WHERE lock = :lock AND status = 'doing' AND queueing_lock = :message_id
    """
)
_DEFER = text(
    """
    SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW(
        CAST(:queue AS varchar), CAST(:task_name AS varchar), 0,
        CAST(:lock AS text), CAST(:message_id AS text),
        CAST(:args AS jsonb), CAST(:run_at AS timestamptz)
    )]::procrastinate_job_to_defer_v1[]))
    """
)
# procrastinate's fetch (procrastinate_fetch_job_v2) for up to :limit jobs at once: waiting,
# due, in the worker's queues, and the first waiting job of their lock with none of it running.
# Skipped when locked by another claim; in priority, then queueing order.
_CLAIM = text(
    """
    WITH candidate AS (
        SELECT jobs.id
          FROM procrastinate_jobs AS jobs
         WHERE NOT EXISTS (
                   SELECT 1
                     FROM procrastinate_jobs AS other_jobs
                    WHERE jobs.lock IS NOT NULL
                      AND other_jobs.lock = jobs.lock
                      AND (other_jobs.status = 'doing'
                           OR (other_jobs.status = 'todo'
                               AND (other_jobs.priority > jobs.priority
                                    OR (other_jobs.priority = jobs.priority
                                        AND other_jobs.id < jobs.id))))
               )
           AND jobs.status = 'todo'
           AND jobs.queue_name = ANY(CAST(:queues AS varchar[]))
           AND (jobs.scheduled_at IS NULL OR jobs.scheduled_at <= now())
         ORDER BY jobs.priority DESC, jobs.id ASC
         LIMIT :limit
           FOR UPDATE OF jobs SKIP LOCKED
    )
    UPDATE procrastinate_jobs
       SET status = 'doing', worker_id = :worker_id
      FROM candidate
     WHERE procrastinate_jobs.id = candidate.id
    RETURNING procrastinate_jobs.*
    """
)
# Ending jobs in the store's settle transaction, as procrastinate's worker would end each.
_FINISH = text(
    """
    SELECT procrastinate_finish_job_v1(job.id, 'succeeded', true)
      FROM unnest(CAST(:job_ids AS bigint[])) AS job(id)
    """
)
_RETRY = text(
    """
    SELECT procrastinate_retry_job_v2(job.id, job.run_at, NULL, NULL, NULL)
      FROM unnest(CAST(:job_ids AS bigint[]), CAST(:run_ats AS timestamptz[])) AS job(id, run_at)
    """
)
# New jobs, several in one call: parallel arrays zipped into procrastinate's job type.
_DEFER_MANY = text(
    """
    SELECT unnest(procrastinate_defer_jobs_v1(ARRAY(
        SELECT ROW(job.queue, CAST(:task_name AS varchar), 0, job.lock, job.message_id,
                   CAST(job.args AS jsonb), job.run_at)::procrastinate_job_to_defer_v1
          FROM unnest(CAST(:queues AS varchar[]), CAST(:locks AS text[]),
                      CAST(:message_ids AS text[]), CAST(:args AS text[]),
                      CAST(:run_ats AS timestamptz[]))
               WITH ORDINALITY AS job(queue, lock, message_id, args, run_at, position)
         ORDER BY job.position
    )))
    """
)
# Jobs of this task whose worker is gone or silent; locked so two recoverers never both act.
_RECOVER_STALLED = """
WITH stalled AS (
    SELECT job.id
      FROM procrastinate_jobs AS job
      LEFT JOIN procrastinate_workers AS worker ON worker.id = job.worker_id
     WHERE job.status = 'doing'
       AND job.task_name = %(task_name)s
       AND (worker.id IS NULL
            OR worker.last_heartbeat < NOW() - make_interval(secs => %(seconds)s))
     ORDER BY job.id
       FOR UPDATE OF job SKIP LOCKED
)
SELECT stalled.id, procrastinate_retry_job_v2(stalled.id, NOW(), NULL, NULL, NULL)::text AS done
  FROM stalled
"""

# Whether a claim could find anything: a job waiting and due in one of the queues (its lock may
# still hold it back; the claim decides). One read, no transaction: what a poll costs when idle.
_READY = """
SELECT EXISTS (
    SELECT 1 FROM procrastinate_jobs
     WHERE status = 'todo'
       AND queue_name = ANY(%(queues)s)
       AND (scheduled_at IS NULL OR scheduled_at <= now())
) AS ready
"""


def defer_in_session(session: DbHandle, job: JobRequest) -> int | None:
    """Queue ``job`` in the session's transaction; the new job id, or ``None`` if not needed.

    A message whose job is already waiting (a requeue during a retry back-off) has that job
    moved to ``job.run_at`` instead, keeping its place; one whose job is running gets none:
    the running attempt settles the message, and a retry it asks for reuses the same job.
    """
    params: dict[str, Any] = {"message_id": job.message_id, "task_name": TASK_NAME}
    if not job.new:  # a message stored in this transaction has no job to look for
        waiting = session.execute(_RESCHEDULE, {**params, "run_at": job.run_at}).first()
        if waiting is not None:
            session.execute(_ANNOUNCE, {"queue": job.queue, "job_id": int(waiting[0])})
            return None
        if session.execute(_RUNNING, {**params, "lock": job.lock_key}).first() is not None:
            return None
    new_id = session.execute(
        _DEFER,
        {
            **params,
            "queue": job.queue,
            "lock": job.lock_key,
            "args": json.dumps({"message_id": job.message_id}),
            "run_at": job.run_at,
        },
    ).scalar_one()
    return int(new_id)


def defer_many_in_session(session: DbHandle, jobs: Sequence[JobRequest]) -> None:
    """:func:`defer_in_session` for several jobs; new messages' jobs in one statement."""
    new = [job for job in jobs if job.new]
    if new:
        session.execute(
            _DEFER_MANY,
            {
                "task_name": TASK_NAME,
                "queues": [job.queue for job in new],
                "locks": [job.lock_key for job in new],
                "message_ids": [job.message_id for job in new],
                "args": [json.dumps({"message_id": job.message_id}) for job in new],
                "run_ats": [job.run_at for job in new],
            },
        )
    for job in jobs:
        if not job.new:
            defer_in_session(session, job)


class RetryAt(Exception):  # noqa: N818 - a signal to the worker, not an error
    """Raised by the task to have procrastinate retry the same job at ``run_at``."""

    def __init__(self, run_at: datetime | None) -> None:
        super().__init__(f"retry at {run_at.isoformat() if run_at else 'once'}")
        self.run_at = run_at


class DecisionRetry(BaseRetryStrategy):
    """Every failure of the task is retried: the message store decides when to give up.

    The processor parks messages itself (attempts used up, permanent errors), so a job only
    fails here for reasons outside the flow: a planned retry (:class:`RetryAt`), a worker shut
    down mid-job (run again at once), or an unexpected error (back off, up to a minute).
    """

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, procrastinate_exceptions.TaskNotFound):
            return None
        if isinstance(exception, RetryAt):
            return RetryDecision(retry_at=exception.run_at)
        if isinstance(exception, asyncio.CancelledError):
            return RetryDecision()
        delay = min(INFRA_RETRY_CAP_SECONDS, float(2 ** min(job.attempts, 6)))
        return RetryDecision(retry_at=datetime.now(UTC) + timedelta(seconds=delay))


def claim_in_session(
    session: DbHandle, queues: Sequence[str], worker_id: int, limit: int
) -> list[Job]:
    """Mark up to ``limit`` ready jobs of ``queues`` as run by ``worker_id``; in queue order."""
    rows = session.execute(
        _CLAIM, {"queues": list(queues), "worker_id": worker_id, "limit": limit}
    ).mappings()
    jobs = [Job.from_row(dict(row)) for row in rows]
    jobs.sort(key=lambda job: (-job.priority, job.id or 0))
    return jobs


def end_in_session(session: DbHandle, ended: Sequence[tuple[int, Decision]]) -> None:
    """End running jobs in the caller's transaction: delete them, or put them back for a retry.

    Raises (and so rolls the transaction back) if a job is no longer this worker's to end.
    """
    finished = [job_id for job_id, decision in ended if decision.kind != "retry"]
    retried = [(job_id, decision.run_at) for job_id, decision in ended if decision.kind == "retry"]
    if finished:
        session.execute(_FINISH, {"job_ids": finished})
    if retried:
        session.execute(
            _RETRY,
            {"job_ids": [job_id for job_id, _ in retried], "run_ats": [at for _, at in retried]},
        )


async def recover_stalled(connector: BaseAsyncConnector, *, seconds: float) -> list[int]:
    """Put jobs of dead workers back to ``todo`` (same job, same place); their ids."""
    rows = await connector.execute_query_all_async(
        _RECOVER_STALLED, task_name=TASK_NAME, seconds=float(seconds)
    )
    return [int(row["id"]) for row in rows]


async def jobs_ready(connector: BaseAsyncConnector, queues: Sequence[str]) -> bool:
    """Whether a job of ``queues`` waits and is due (a claim may still find it locked)."""
    row = await connector.execute_query_one_async(_READY, queues=list(queues))
    return bool(row["ready"])

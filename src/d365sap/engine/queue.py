"""The embedded runtime's job table: enqueue, claim in per-key order, finish, retry, recover.

A job may start when its time has come and no earlier job of the same lock key is still in the
table (queued, waiting for a retry, or running): messages of one business key are processed one at
a time in arrival order, a waiting retry holds back the newer ones, different keys run in parallel.
A running job holds a lease; a job whose lease ran out (its worker died) goes back to the queue.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, delete, exists, select, update
from sqlalchemy.orm import Session, aliased, sessionmaker

from d365sap.engine.runtime import JobRequest
from d365sap.engine.tables import JobRow

TODO = "todo"
DOING = "doing"


def _now() -> datetime:
    return datetime.now(UTC)


def add_job(session: Session, job: JobRequest) -> None:
    """Insert ``job`` in the caller's transaction (or re-queue it if the message has one)."""
    existing = session.scalars(select(JobRow).where(JobRow.message_id == job.message_id)).first()
    run_at = job.run_at or _now()
    if existing is not None:
        existing.status = TODO
        existing.run_at = run_at
        existing.locked_by = None
        existing.lease_until = None
        return
    session.add(
        JobRow(
            message_id=job.message_id,
            queue=job.queue,
            lock_key=job.lock_key,
            status=TODO,
            run_at=run_at,
            created_at=_now(),
        )
    )


class JobQueue:
    """Claims and settles jobs for one process of workers."""

    def __init__(self, sessions: sessionmaker[Session], *, worker_id: str, lease: float) -> None:
        self._sessions = sessions
        self.worker_id = worker_id
        self.lease = timedelta(seconds=lease)

    def claim(self, queue: str, limit: int) -> list[str]:
        """Take up to ``limit`` runnable jobs of ``queue``; returns their message ids."""
        if limit <= 0:
            return []
        now = _now()
        earlier = aliased(JobRow)
        blocked = exists().where(and_(earlier.lock_key == JobRow.lock_key, earlier.id < JobRow.id))
        running = aliased(JobRow)
        busy = exists().where(and_(running.lock_key == JobRow.lock_key, running.status == DOING))
        query = (
            select(JobRow.id, JobRow.message_id)
            .where(JobRow.queue == queue, JobRow.status == TODO, JobRow.run_at <= now)
            .where(~blocked, ~busy)
            .order_by(JobRow.id)
            .limit(limit)
        )
        claimed: list[str] = []
        with self._sessions.begin() as session:
            for job_id, message_id in session.execute(query).all():
                result = session.execute(
                    update(JobRow)
                    .where(JobRow.id == job_id, JobRow.status == TODO)
                    .values(status=DOING, locked_by=self.worker_id, lease_until=now + self.lease)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    claimed.append(message_id)
        return claimed

    def finish(self, message_id: str) -> None:
        """The message is settled: remove its job."""
        with self._sessions.begin() as session:
            session.execute(delete(JobRow).where(JobRow.message_id == message_id))

    def retry_at(self, message_id: str, run_at: datetime) -> None:
        """Put the job back to wait until ``run_at`` (it keeps its place in its key's order)."""
        with self._sessions.begin() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.message_id == message_id)
                .values(status=TODO, run_at=run_at, locked_by=None, lease_until=None)
            )

    def extend(self, message_ids: list[str]) -> None:
        """Renew the lease of jobs still running here."""
        if not message_ids:
            return
        with self._sessions.begin() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.message_id.in_(message_ids), JobRow.locked_by == self.worker_id)
                .values(lease_until=_now() + self.lease)
            )

    def recover(self, *, all_running: bool = False) -> int:
        """Return jobs of dead workers (expired lease, or every running job) to the queue."""
        condition = JobRow.status == DOING
        if not all_running:
            condition = and_(condition, JobRow.lease_until < _now())
        with self._sessions.begin() as session:
            result = session.execute(
                update(JobRow)
                .where(condition)
                .values(status=TODO, locked_by=None, lease_until=None)
            )
            return int(result.rowcount)  # type: ignore[attr-defined]

    def next_run_at(self) -> datetime | None:
        """When the earliest waiting job is due (to sleep no longer than needed)."""
        with self._sessions() as session:
            value = session.scalar(
                select(JobRow.run_at).where(JobRow.status == TODO).order_by(JobRow.run_at).limit(1)
            )
        if value is None:
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    def pending(self) -> int:
        """How many jobs are queued or running."""
        with self._sessions() as session:
            return len(session.scalars(select(JobRow.id)).all())

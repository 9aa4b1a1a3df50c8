"""The embedded runtime's job table: enqueue, claim in per-key order, finish, retry, recover.

A job may start when its time has come and no earlier job of the same lock key is still in the
table (queued, waiting for a retry, or running): messages of one business key are processed one at
a time in arrival order, a waiting retry holds back the newer ones, different keys run in parallel.
A running job holds a lease; a job whose lease ran out (its worker died) goes back to the queue.

Which job heads its key is kept in the row (``blocked``): a job is inserted blocked when its key
already has one, and removing a job unblocks the next of its key. Claiming then reads only
unblocked rows through an index, so its cost does not grow with the depth of the queue (reading
the heads with GROUP BY over every queued job did, and a benchmark with ten thousand queued
messages spent more on claiming than on sending). The claim still checks that no earlier job of
the key exists, and the heartbeat's recovery repairs any head left blocked, so ordering never
depends on the flag alone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, TypeVar, cast

from sqlalchemy import (
    Connection,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    select,
    text,
    true,
    update,
)
from sqlalchemy.orm import Session, aliased, sessionmaker

from d365sap.engine.runtime import DbHandle, JobRequest
from d365sap.engine.tables import JobRow

T = TypeVar("T")
TODO = "todo"
DOING = "doing"


def _now() -> datetime:
    return datetime.now(UTC)


JOBS = cast(Table, JobRow.__table__)
_EARLIER = aliased(JobRow)
# Statements built once: SQLAlchemy then reuses their compiled form on every execution.
_CANDIDATES = (
    select(JobRow.id, JobRow.message_id, JobRow.queue)
    .where(JobRow.blocked == false(), JobRow.status == TODO, JobRow.run_at <= bindparam("now"))
    .where(~exists().where(_EARLIER.lock_key == JobRow.lock_key, _EARLIER.id < JobRow.id))
    .order_by(JobRow.id)
    .limit(bindparam("limit"))
)


@functools.lru_cache(maxsize=64)
def _candidates_besides(full: tuple[str, ...]) -> Select[int, str, str]:
    """:data:`_CANDIDATES` without the jobs of the ``full`` queues, built once per set.

    The queues are few, so are their combinations; a statement per combination is compiled
    once, where an expanding ``NOT IN`` parameter would be rendered on every claim.
    """
    return _CANDIDATES.where(JobRow.queue.not_in(full)) if full else _CANDIDATES


_REQUEUE = (
    update(JOBS)
    .where(JOBS.c.message_id == bindparam("mid"))
    .values(status=TODO, run_at=bindparam("run_at"), locked_by=None, lease_until=None)
)
# A new job is blocked when its key already has one: decided by the insert itself.
_INSERT = insert(JOBS).from_select(
    ["message_id", "queue", "lock_key", "status", "run_at", "created_at", "blocked"],
    select(
        bindparam("message_id", type_=JOBS.c.message_id.type),
        bindparam("queue", type_=JOBS.c.queue.type),
        bindparam("lock_key", type_=JOBS.c.lock_key.type),
        literal(TODO, type_=JOBS.c.status.type),
        bindparam("run_at", type_=JOBS.c.run_at.type),
        bindparam("created_at", type_=JOBS.c.created_at.type),
        exists().where(JOBS.c.lock_key == bindparam("lock_key")),
    ),
)
_KEY_OF = select(JOBS.c.lock_key).where(JOBS.c.message_id == bindparam("mid"))
_REMOVE = delete(JOBS).where(JOBS.c.message_id == bindparam("mid"))
_UNBLOCK_NEXT = (
    update(JOBS)
    .where(
        JOBS.c.id
        == select(func.min(JOBS.c.id)).where(JOBS.c.lock_key == bindparam("key")).scalar_subquery(),
        JOBS.c.blocked == true(),
    )
    .values(blocked=False)
)
_REPAIR_HEADS = (
    update(JOBS)
    .where(
        JOBS.c.blocked == true(),
        JOBS.c.id.in_(select(func.min(JOBS.c.id)).group_by(JOBS.c.lock_key)),
    )
    .values(blocked=False)
)
_MARK_RUNNING = (
    update(JOBS)
    .where(JOBS.c.id == bindparam("job_id"), JOBS.c.status == TODO)
    .values(status=DOING, locked_by=bindparam("worker"), lease_until=bindparam("lease_until"))
)
_NEXT_DUE = (
    select(JobRow.run_at)
    .where(JobRow.blocked == false(), JobRow.status == TODO)
    .order_by(JobRow.run_at)
    .limit(1)
)
_KEY_LOCK = text("SELECT pg_advisory_xact_lock(hashtext(:key))")


def _serialise_key(session: DbHandle, lock_key: str) -> None:
    """On PostgreSQL, one transaction at a time may add or remove jobs of ``lock_key``.

    Otherwise a job inserted while the head of its key is being removed could miss the
    unblocking. SQLite has one writer at a time anyway.
    """
    dialect = session.dialect if isinstance(session, Connection) else session.get_bind().dialect
    if dialect.name == "postgresql":
        session.execute(_KEY_LOCK, {"key": lock_key})


def add_job(session: DbHandle, job: JobRequest) -> None:
    """Insert ``job`` in the caller's transaction (or re-queue it if the message has one)."""
    run_at = job.run_at or _now()
    if not job.new:
        requeued = session.execute(_REQUEUE, {"mid": job.message_id, "run_at": run_at})
        if requeued.rowcount:  # type: ignore[attr-defined]
            return
    _serialise_key(session, job.lock_key)
    session.execute(
        _INSERT,
        {
            "message_id": job.message_id,
            "queue": job.queue,
            "lock_key": job.lock_key,
            "run_at": run_at,
            "created_at": _now(),
        },
    )


def remove_job(session: DbHandle, message_id: str, lock_key: str | None = None) -> None:
    """Remove the job of ``message_id`` (if any) and let the next job of its key run.

    ``lock_key`` is the job's key when the caller knows it (a job's key is its message's),
    which saves reading it.
    """
    if lock_key is None:
        lock_key = session.execute(_KEY_OF, {"mid": message_id}).scalar()
        if lock_key is None:
            return
    _serialise_key(session, lock_key)
    session.execute(_REMOVE, {"mid": message_id})
    session.execute(_UNBLOCK_NEXT, {"key": lock_key})


def finish_job(session: DbHandle, message_id: str, lock_key: str | None = None) -> None:
    """Remove the job of a settled message, in the caller's transaction."""
    remove_job(session, message_id, lock_key)


def retry_job(session: DbHandle, message_id: str, run_at: datetime) -> None:
    """Let the job wait until ``run_at``, keeping its id and so its place in its key's order."""
    session.execute(_REQUEUE, {"mid": message_id, "run_at": run_at})


@dataclass(frozen=True)
class Claim(Generic[T]):
    """What one claim took: (queue, message id, what ``begin`` returned) per job."""

    jobs: list[tuple[str, str, T | None]]
    due_left: bool
    """Due jobs may have stayed in the table: their queue had no free slot, or a read's limit."""


class JobQueue:
    """Claims and settles jobs for one process of workers."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        worker_id: str,
        lease: float,
        write: Callable[[], AbstractContextManager[DbHandle]] | None = None,
    ) -> None:
        self._sessions = sessions
        self._write = write or sessions.begin
        self.worker_id = worker_id
        self.lease = timedelta(seconds=lease)

    def claim(
        self,
        free: dict[str, int],
        default_free: int = 0,
        begin: Callable[[DbHandle, str], T] | None = None,
    ) -> Claim[T]:
        """Take runnable jobs, at most ``free[queue]`` per queue.

        Queues not named in ``free`` may take ``default_free`` jobs. One transaction: the due,
        unblocked jobs of the queues with a free slot, in queue order; a guarded update that
        marks them running; and ``begin`` for each claimed message (the store starts the attempt
        in the same transaction).
        The answer also says whether due jobs may be left (a queue was full, so its jobs were not
        read, or there were more than one read takes), so the caller knows to claim again once a
        slot frees up instead of asking when the next job is due.
        """
        capacity = sum(max(0, n) for n in free.values()) + max(0, default_free)
        if capacity <= 0:
            return Claim([], due_left=True)
        now = _now()
        full = tuple(sorted(queue for queue, n in free.items() if n <= 0))
        candidates = _candidates_besides(full)
        picked: list[tuple[int, str, str]] = []
        taken: dict[str, int] = {}
        with self._write() as session:
            rows = session.execute(candidates, {"now": now, "limit": capacity}).all()
            for job_id, message_id, queue in rows:
                if taken.get(queue, 0) >= free.get(queue, default_free):
                    continue
                taken[queue] = taken.get(queue, 0) + 1
                picked.append((job_id, message_id, queue))
            # A full queue's jobs are not read at all: count them as waiting for a slot.
            due_left = bool(full) or len(picked) < len(rows) or len(rows) >= capacity
            if not picked:
                return Claim([], due_left=due_left)
            lease_until = now + self.lease
            session.execute(
                _MARK_RUNNING,
                [
                    {"job_id": job_id, "worker": self.worker_id, "lease_until": lease_until}
                    for job_id, _, _ in picked
                ],
            )
            jobs = [
                (queue, message_id, begin(session, message_id) if begin else None)
                for _, message_id, queue in picked
            ]
        return Claim(jobs, due_left=due_left)

    def finish(self, message_id: str) -> None:
        """The message is settled: remove its job."""
        with self._write() as session:
            remove_job(session, message_id)

    def retry_at(self, message_id: str, run_at: datetime) -> None:
        """Put the job back to wait until ``run_at`` (it keeps its place in its key's order)."""
        with self._write() as session:
            retry_job(session, message_id, run_at)

    def extend(self, message_ids: list[str]) -> None:
        """Renew the lease of jobs still running here."""
        if not message_ids:
            return
        with self._write() as session:
            session.execute(
                update(JobRow)
                .where(JobRow.message_id.in_(message_ids), JobRow.locked_by == self.worker_id)
                .values(lease_until=_now() + self.lease)
            )

    def recover(self, *, all_running: bool = False) -> int:
        """Return jobs of dead workers (expired lease, or every running job) to the queue.

        Also unblocks any job that heads its key but is still marked blocked (the flag is an
        index for claiming, this keeps a slip in it from holding a key back for long).
        """
        condition = JobRow.status == DOING
        if not all_running:
            condition = and_(condition, JobRow.lease_until < _now())
        with self._write() as session:
            result = session.execute(
                update(JobRow)
                .where(condition)
                .values(status=TODO, locked_by=None, lease_until=None)
            )
            session.execute(_REPAIR_HEADS)
            return int(result.rowcount)  # type: ignore[attr-defined]

    def next_run_at(self) -> datetime | None:
        """When the earliest waiting job is due (to sleep no longer than needed)."""
        with self._write() as session:
            value = session.execute(_NEXT_DUE).scalar()
        if value is None:
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)

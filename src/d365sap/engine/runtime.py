"""The runtime port: how accepted messages reach a worker, and what a worker reports back.

Two runtimes implement it: the embedded one (a job table in the store's own database and an asyncio
worker pool inside the service) and procrastinate on PostgreSQL (``d365sap worker`` processes on
any number of machines). Both enqueue inside the transaction that stores the message, so a message
is never stored without its job nor queued without its message, and both run the jobs of one lock
key one at a time in the order they were queued.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from sqlalchemy import Connection
from sqlalchemy.orm import Session

# What enqueue and settle hooks get: an ORM session, or on the hot path a Core connection.
# Either executes Core statements inside the caller's transaction.
DbHandle = Session | Connection


@dataclass(frozen=True)
class JobRequest:
    """One message to process: its queue (target system), lock key (ordering) and earliest start."""

    message_id: str
    queue: str
    lock_key: str
    run_at: datetime | None = None
    new: bool = False
    """The message was stored in this transaction, so it cannot have a job yet."""


@dataclass(frozen=True)
class Decision:
    """What a worker does with a job after processing its message once."""

    kind: Literal["finished", "retry"]
    run_at: datetime | None = None


FINISHED = Decision("finished")


class Enqueuer(Protocol):
    """The part of a runtime the store needs: enqueue inside the caller's transaction."""

    def enqueue(self, session: DbHandle, job: JobRequest) -> None:
        """Add ``job`` to the queue within ``session``'s transaction."""
        ...


@runtime_checkable
class BatchEnqueuer(Enqueuer, Protocol):
    """An enqueuer that takes several jobs in one call (one statement instead of one each)."""

    def enqueue_many(self, session: DbHandle, jobs: list[JobRequest]) -> None:
        """Add ``jobs`` to the queue within ``session``'s transaction, in their order."""
        ...


def enqueue_all(enqueuer: Enqueuer, session: DbHandle, jobs: list[JobRequest]) -> None:
    """Queue ``jobs`` in order: all in one call where the enqueuer can take several."""
    if isinstance(enqueuer, BatchEnqueuer):
        enqueuer.enqueue_many(session, jobs)
        return
    for job in jobs:
        enqueuer.enqueue(session, job)


class Runtime(Enqueuer, Protocol):
    """A queue with workers."""

    kind: str

    def notify(self) -> None:
        """Work was committed: wake local workers (a no-op where workers poll or listen)."""
        ...

    async def start(self) -> None:
        """Start serving jobs (where this process serves them)."""
        ...

    async def stop(self) -> None:
        """Stop serving; running jobs finish or are recovered after a restart."""
        ...

"""Work handed from any thread to worker tasks on one event loop.

Emulators receive work in request handlers, which FastAPI may run in its thread pool, and from
timers; the work itself (posting a webhook, processing a SOAP message) runs as tasks on the
app's event loop. :class:`LoopInbox` is that hand-off: :meth:`LoopInbox.put` is safe from any
thread, and what is put before the workers start (say, while the seed loads) waits in a backlog
until :meth:`LoopInbox.start`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
log = logging.getLogger("d365sap.emulators")


class LoopInbox(Generic[T]):
    """A queue of items for ``workers`` tasks that each run ``handle(item)`` in turn.

    An exception from ``handle`` is logged and passed to ``on_error``; the worker goes on.
    """

    def __init__(
        self,
        handle: Callable[[T], Awaitable[None]],
        *,
        name: str,
        workers: int = 1,
        on_error: Callable[[T], None] | None = None,
    ) -> None:
        self._handle = handle
        self._name = name
        self._workers_wanted = workers
        self._on_error = on_error
        self._lock = threading.Lock()
        self._backlog: list[T] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[T] | None = None
        self._workers: list[asyncio.Task[None]] = []

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The loop the workers run on, while they run."""
        with self._lock:
            return self._loop

    @property
    def started(self) -> bool:
        """The workers are running."""
        return bool(self._workers)

    def put(self, item: T) -> None:
        """Queue ``item`` (from any thread); kept in the backlog while the workers are stopped."""
        with self._lock:
            loop, queue = self._loop, self._queue
            if loop is None or queue is None or loop.is_closed():
                self._backlog.append(item)
                return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            queue.put_nowait(item)
        else:
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def clear(self) -> None:
        """Drop what waits in the backlog (a reset)."""
        with self._lock:
            self._backlog.clear()

    async def start(self) -> None:
        """Start the workers on the running loop and queue the backlog."""
        if self._workers:
            return
        queue: asyncio.Queue[T] = asyncio.Queue()
        self._workers = [
            asyncio.create_task(self._work(queue), name=f"{self._name}-{n}")
            for n in range(self._workers_wanted)
        ]
        with self._lock:
            self._loop, self._queue = asyncio.get_running_loop(), queue
            waiting, self._backlog = self._backlog, []
        for item in waiting:
            queue.put_nowait(item)

    async def stop(self) -> None:
        """Stop the workers; what they had not taken yet is dropped."""
        with self._lock:
            self._loop, self._queue = None, None
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._workers = []

    async def _work(self, queue: asyncio.Queue[T]) -> None:
        while True:
            item = await queue.get()
            try:
                await self._handle(item)
            except Exception:
                log.exception("%s: %r failed unexpectedly", self._name, item)
                if self._on_error is not None:
                    self._on_error(item)
            finally:
                queue.task_done()

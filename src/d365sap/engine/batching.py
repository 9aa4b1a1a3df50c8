"""Group commit: many small writes that arrive together go to the database as one transaction.

Under load, dozens of inbound messages (or settled attempts) are ready in the same turn of the
event loop. Writing each in its own transaction costs a commit each, and on SQLite a commit
rewrites every page the transaction touched: measured, the commit was most of what accepting a
message cost. A :class:`Batcher` hands everything that queued up while the previous batch was
being written to one call, and answers each caller once that call has returned (that is, once
its transaction has committed). An idle service pays nothing: the first item of a batch is
written at the next turn of the loop, without a timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Batcher(Generic[T, R]):
    """Calls ``write(items)`` with the items submitted since the last call.

    ``write`` returns one result per item, in order. If it raises, every caller of that batch
    gets the exception: nothing of the batch may be taken as written. By default one call runs
    at a time (a database has one writer); with ``concurrency`` above one, up to that many calls
    run at once, each with the items that queued up meanwhile (reads over a network, say).
    """

    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[list[R]]],
        *,
        max_size: int = 128,
        concurrency: int = 1,
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._write = write
        self._max_size = max_size
        self._concurrency = concurrency
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._drainers: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        """Queue ``item`` for the next batch; returns its result once the batch is written."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if len(self._drainers) < self._concurrency:
            self._drainers.add(asyncio.create_task(self._drain(), name="d365sap-batch"))
        # A caller that gives up (client gone) does not take its item out of a batch already
        # being written; the item is written all the same, as if it had been submitted alone.
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch = self._pending[: self._max_size]
                del self._pending[: self._max_size]
                try:
                    results = await self._write([item for item, _ in batch])
                except BaseException as exc:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                if len(results) != len(batch):
                    error = RuntimeError(f"batch of {len(batch)} gave {len(results)} results")
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(result)
        finally:
            # Left at once (not by a done callback), so a submit right after sees the slot free.
            self._drainers.discard(asyncio.current_task())
            if self._pending and not self._drainers:
                # cancelled with items left and nobody to write them: fail them rather than hang
                error = RuntimeError("the service is stopping; the message was not stored")
                for _, future in self._pending:
                    if not future.done():
                        future.set_exception(error)
                self._pending.clear()

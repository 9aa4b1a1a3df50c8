"""Sharing ``$batch`` requests between messages running at the same time.

Every ``$batch`` request counts once against Dataverse's service protection limits (6 000
requests per user per 5 minutes) however many operations it holds (up to 1000). A flow that
reads and writes a few rows per message would spend that budget in minutes if each message sent
its own requests; :class:`BatchBuffer` lets concurrently running messages submit their
operations and await their own results, and sends what has gathered once it holds
``batch_size`` operations or ``linger_seconds`` after the first one arrived, one request at a
time while the next batch gathers. A quiet service answers after the linger; a busy one sends
full batches, so the request rate stays near one per ``linger + round trip`` whatever the
message rate.

Operations run with ``Prefer: odata.continue-on-error``: a failing operation fails only the
submission it belongs to. A request refused as a whole (429 after the retries, 5xx, timeout)
fails every operation in it with that error, and their messages are retried.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from d365sap.connectors.dataverse import DataverseClient
from d365sap.connectors.dataverse_batch import BatchOperation, BatchResult

_Entry = tuple[list[BatchOperation], "asyncio.Future[list[BatchResult]]"]


class BatchBuffer:
    """Gathers the operations of concurrently running messages into shared ``$batch`` requests."""

    def __init__(self, client: DataverseClient, *, batch_size: int, linger_seconds: float) -> None:
        self.client = client
        self.batch_size = batch_size
        self.linger = linger_seconds
        self._pending: list[_Entry] = []
        self._count = 0
        self._full = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self.requests = 0
        """``$batch`` requests sent (for tests and statistics)."""
        self.operations = 0
        """Operations sent in them."""

    async def submit(self, operations: Sequence[BatchOperation]) -> list[BatchResult]:
        """Run ``operations``; one result each, once the request holding them has answered."""
        if not operations:
            return []
        future: asyncio.Future[list[BatchResult]] = asyncio.get_running_loop().create_future()
        self._pending.append((list(operations), future))
        self._count += len(operations)
        if self._count >= self.batch_size:
            self._full.set()
        if self._sender is None:
            self._sender = asyncio.create_task(self._send_loop(), name="d365sap-dataverse-batch")
        # A message that stops waiting leaves its operations in the batch: they run anyway.
        return await asyncio.shield(future)

    async def _send_loop(self) -> None:
        try:
            while self._pending:
                if self._count < self.batch_size and self.linger > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._full.wait(), self.linger)
                await self._send(self._take())
        finally:
            self._sender = None
            error = RuntimeError("the service is stopping; the Dataverse request was not sent")
            for _, future in self._pending:
                if not future.done():
                    future.set_exception(error)
            self._pending.clear()
            self._count = 0

    def _take(self) -> list[_Entry]:
        """Whole submissions up to ``batch_size`` operations (at least one submission)."""
        taken: list[_Entry] = []
        size = 0
        while self._pending and (not taken or size + len(self._pending[0][0]) <= self.batch_size):
            entry = self._pending.pop(0)
            taken.append(entry)
            size += len(entry[0])
        self._count -= size
        if self._count < self.batch_size:
            self._full.clear()
        return taken

    async def _send(self, batch: list[_Entry]) -> None:
        operations = [operation for items, _ in batch for operation in items]
        try:
            self.requests += 1
            self.operations += len(operations)
            results = await self.client.batch(operations, chunk_size=self.batch_size)
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        start = 0
        for items, future in batch:
            if not future.done():
                future.set_result(results[start : start + len(items)])
            start += len(items)

    async def close(self) -> None:
        """Stop sending; submissions still waiting fail (their messages are retried)."""
        sender = self._sender
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender

"""A webhook receiver for tests: a FastAPI app that records what it gets and answers as told."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, Response

from d365sap.web.serving import BackgroundServer


@dataclass(frozen=True)
class Received:
    """One POST as the receiver saw it."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    """Answers with the queued statuses first, then ``default_status``; can be slow on purpose."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.statuses: list[int] = []
        self.default_status = 200
        self.delay_seconds = 0.0
        self._lock = threading.Lock()
        self.app = FastAPI()
        self.app.add_api_route("/{path:path}", self._receive, methods=["POST"])

    async def _receive(self, request: Request) -> Response:
        body = await request.body()
        with self._lock:
            self.received.append(
                Received(
                    path=request.url.path,
                    query=dict(request.query_params),
                    headers={k.lower(): v for k, v in request.headers.items()},
                    body=body,
                    at=time.monotonic(),
                )
            )
            status = self.statuses.pop(0) if self.statuses else self.default_status
            delay = self.delay_seconds
        if delay:
            await asyncio.sleep(delay)
        return Response(status_code=status)

    def answer(self, *statuses: int) -> None:
        """Queue the statuses of the next requests."""
        with self._lock:
            self.statuses.extend(statuses)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until ``count`` requests arrived (AssertionError on timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.received)} of {count} webhook calls arrived")
            time.sleep(0.01)

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)


@contextmanager
def receiving(port: int = 0) -> Iterator[tuple[Receiver, BackgroundServer]]:
    """A receiver served by uvicorn on loopback."""
    receiver = Receiver()
    server = BackgroundServer(receiver.app, port=port, name="webhook-receiver")
    server.start()
    try:
        yield receiver, server
    finally:
        server.stop()


def json_of(received: Received) -> Any:
    """The posted body as JSON."""
    return json.loads(received.body)

"""A flow whose behaviour is written in each message, and a journal of what it did.

The payload is JSON: ``{"label": "a1", "key": "A", "plan": ["transient", "ok"], "delay": 0.1,
"retry_after": 0.5}``. Attempt *n* follows ``plan[n-1]`` (the last entry repeats): ``ok`` applies
the message, ``transient`` fails in a way worth retrying, ``permanent`` fails for good, ``hang``
never returns (a worker killed mid-job). Every start and end is appended to a journal file, so
attempts are counted and order is checked across processes.

Run as a script it is a ``d365sap worker`` for this flow: ``python scripted.py URL JOURNAL``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from d365sap.engine.db import make_engine
from d365sap.engine.processor import Processor
from d365sap.engine.retry import RetryPolicy
from d365sap.engine.store import MessageStore
from d365sap.engine.trace import Trace
from d365sap.engine.types import Description, Flow

FLOW = "scripted"
QUEUE = "scripted"
POLICY = RetryPolicy(max_attempts=3, base_delay=0.05, max_delay=2.0, jitter=0.0)


def payload(
    label: str,
    key: str | None = "A",
    plan: list[str] | None = None,
    *,
    delay: float = 0.0,
    retry_after: float | None = None,
    queue: str = QUEUE,
) -> bytes:
    """The JSON body of one scripted message."""
    body = {
        "label": label,
        "key": key,
        "plan": plan or ["ok"],
        "delay": delay,
        "retry_after": retry_after,
        "queue": queue,
    }
    return json.dumps(body).encode()


class Journal:
    """Append-only JSON lines shared by every process running the flow."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def record(self, **event: Any) -> None:
        line = json.dumps({**event, "t": time.time(), "pid": os.getpid()}) + "\n"
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)

    def events(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def of(self, label: str, event: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events()
            if e["label"] == label and (event is None or e["event"] == event)
        ]

    def attempts(self, message_id: str) -> int:
        return sum(1 for e in self.events() if e["id"] == message_id and e["event"] == "start")

    async def wait_started(self, label: str, count: int = 1, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.of(label, "start")) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{label} did not start {count} time(s): {self.events()}")
            await asyncio.sleep(0.02)


@dataclass
class ScriptedOutput:
    """A flow output as the engine expects it."""

    http_status: int
    route: str | None
    status: str
    retryable: bool = False
    retry_after: float | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        outcome = "created" if self.status == "done" else "error"
        return {"outcome": outcome, "status": self.status, "route": self.route, **self.extra}

    def store_status(self) -> str:
        return self.status

    def error_text(self) -> str | None:
        return self.error

    def retry_hint(self) -> tuple[bool, float | None]:
        return self.retryable, self.retry_after


class ScriptedFlow:
    """Implements the engine's Flow protocol from the script inside each payload."""

    name: str = FLOW
    content_types: tuple[str, ...] = ("application/json",)

    def __init__(self, journal: Journal) -> None:
        self.journal = journal

    def describe(self, payload: bytes) -> Description:
        body = json.loads(payload)
        return Description(route="scripted", business_key=body["key"], queue=body["queue"])

    async def run(self, payload: bytes, trace: Trace, *, message_id: str) -> ScriptedOutput:
        body = json.loads(payload)
        attempt = self.journal.attempts(message_id) + 1
        plan: list[str] = body["plan"]
        step = plan[min(attempt, len(plan)) - 1]
        label = body["label"]
        self.journal.record(event="start", id=message_id, label=label, attempt=attempt, step=step)
        if step == "hang":
            await asyncio.sleep(3600)
        if body["delay"]:
            await asyncio.sleep(body["delay"])
        self.journal.record(event="end", id=message_id, label=label, attempt=attempt, step=step)
        if step == "ok":
            return ScriptedOutput(201, "scripted", "done", extra={"label": label})
        if step == "transient":
            return ScriptedOutput(
                503,
                "scripted",
                "failed",
                retryable=True,
                retry_after=body["retry_after"],
                error="back end unavailable",
            )
        return ScriptedOutput(422, "scripted", "failed", error="rejected for good")


def processor(store: MessageStore, journal: Journal) -> Processor:
    """A processor running only the scripted flow with the contract's retry policy."""
    flows: dict[str, Flow] = {FLOW: ScriptedFlow(journal)}
    return Processor(store, flows, retry=POLICY)


def main(url: str, journal_path: str) -> None:
    """A worker process for the scripted flow, like ``d365sap worker``."""
    from d365sap.engine.procrastinate_runtime import ProcrastinateRuntime
    from d365sap.engine.worker_process import run_worker_process

    store = MessageStore(make_engine(url))
    runtime = ProcrastinateRuntime(
        processor(store, Journal(Path(journal_path))),
        store_url=url,
        concurrency={QUEUE: 4},
        poll_interval=0.1,
        heartbeat_seconds=0.5,
        stalled_seconds=2.0,
        shutdown_grace_seconds=0.5,
    )
    try:
        asyncio.run(run_worker_process(runtime, queues=[QUEUE]))
    finally:
        store.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

"""A record of what happened while processing one message.

Flows time each step (mapping, back-end calls) into a :class:`Trace`; the store writes the whole
trace with the outcome in one transaction. The trace knows nothing of SAP or Dynamics.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

REPLY_LIMIT = 8000


@dataclass
class Step:
    """One timed step; ``status`` is ``ok``, ``error`` or ``skipped``."""

    name: str
    started_at: datetime
    status: str = "ok"
    duration_ms: float = 0.0
    detail: str | None = None
    backend_status: int | None = None
    backend_reply: str | None = None

    def reply(self, status: int | None, body: str | bytes | None) -> None:
        """Keep the back end's status and (truncated) reply."""
        self.backend_status = status
        if body is None:
            self.backend_reply = None
            return
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        self.backend_reply = text[:REPLY_LIMIT]


@dataclass
class Snapshot:
    """A copy of a payload at one stage, taken only when payload logging is on."""

    stage: str
    content_type: str
    body: str


@dataclass
class Trace:
    """Steps and payload snapshots of one processing attempt."""

    log_payloads: bool = False
    steps: list[Step] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    attempt: int | None = None
    """The attempt this trace records (from 1), when a processor runs it."""
    version: int | None = None
    """The version of the message's payload the attempt runs on."""

    @contextmanager
    def step(self, name: str, detail: str | None = None) -> Iterator[Step]:
        """Time a step; an exception marks it ``error`` with the exception text and propagates."""
        current = Step(name=name, started_at=datetime.now(UTC), detail=detail)
        self.steps.append(current)
        start = time.perf_counter()
        try:
            yield current
        except BaseException as exc:
            current.status = "error"
            current.detail = str(exc) or type(exc).__name__
            raise
        finally:
            current.duration_ms = (time.perf_counter() - start) * 1000.0

    def snapshot_json(self, stage: str, body: Mapping[str, Any]) -> None:
        """Keep a JSON payload copy if payload logging is on (serialised only then)."""
        if self.log_payloads:
            self.snapshot(stage, "application/json", json.dumps(body, ensure_ascii=False))

    def snapshot(self, stage: str, content_type: str, body: str | bytes) -> None:
        """Keep a payload copy if payload logging is on (the store masks it)."""
        if not self.log_payloads:
            return
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        self.snapshots.append(Snapshot(stage=stage, content_type=content_type, body=text))

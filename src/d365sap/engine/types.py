"""The contracts between the engine and the flows it runs.

The engine persists, schedules and records; it does not know what a flow talks to. A flow tells
the engine a message's route, business key and target queue before running it (for ordering,
concurrency and search) and returns an output the engine can store, retry and hand back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from d365sap.engine.trace import Trace


@dataclass(frozen=True)
class Description:
    """Where a message goes, for which record, through which queue."""

    route: str | None = None
    business_key: str | None = None
    queue: str = "default"


class FlowOutput(Protocol):
    """What a flow run produced."""

    http_status: int
    route: str | None

    def body(self) -> dict[str, Any]:
        """The caller-facing JSON result."""
        ...

    def store_status(self) -> str:
        """``done``, ``discarded`` or ``failed``."""
        ...

    def error_text(self) -> str | None:
        """Why it failed, for the operator; ``None`` on success."""
        ...

    def retry_hint(self) -> tuple[bool, float | None]:
        """Whether trying again may succeed, and the back end's ``Retry-After`` in seconds."""
        ...


class Flow(Protocol):
    """A business flow the engine can run."""

    name: str
    content_types: tuple[str, ...]

    def describe(self, payload: bytes) -> Description:
        """Route, business key and queue, without side effects; empty if unreadable."""
        ...

    async def run(self, payload: bytes, trace: Trace, *, message_id: str) -> FlowOutput:
        """Process one message; business and back-end errors are returned, not raised."""
        ...

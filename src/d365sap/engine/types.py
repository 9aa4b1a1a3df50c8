"""The contracts between the engine and the flows it runs.

The engine persists, schedules and records; it does not know what a flow talks to. A flow tells
the engine a message's route and business key before running it (for ordering and search) and
returns an output the engine can store and hand back to the caller.
"""

from __future__ import annotations

from typing import Any, Protocol

from d365sap.engine.trace import Trace


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


class Flow(Protocol):
    """A business flow the engine can run."""

    name: str
    content_types: tuple[str, ...]

    def describe(self, payload: bytes) -> tuple[str | None, str | None]:
        """Route and business key, without side effects; ``(None, None)`` if unreadable."""
        ...

    async def run(self, payload: bytes, trace: Trace, *, message_id: str) -> FlowOutput:
        """Process one message; business and back-end errors are returned, not raised."""
        ...

"""Waiting for a message to settle, for callers that want the outcome synchronously.

Workers in this process wake waiters at once; workers elsewhere (procrastinate) are noticed by
polling the store, so the same wait works with every runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from d365sap.engine.store import MessageStore
from d365sap.engine.views import FINAL_STATUSES, MessageView


class Waiters:
    """Per-message events, set when an attempt was recorded."""

    def __init__(self, store: MessageStore, *, poll_interval: float = 0.25) -> None:
        self.store = store
        self.poll_interval = poll_interval
        self._events: dict[str, set[asyncio.Event]] = {}
        self._latest: dict[str, MessageView] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop that owns the events (notify may come from other threads)."""
        self._loop = loop

    def notify(self, message_id: str, view: MessageView | None = None) -> None:
        """An attempt of ``message_id`` was recorded (``view``: the message as recorded)."""
        events = self._events.get(message_id)
        if not events:
            return
        if view is not None:
            self._latest[message_id] = view
        loop = self._loop
        for event in list(events):
            if loop is not None and loop.is_running():
                loop.call_soon_threadsafe(event.set)
            else:
                event.set()

    async def wait(self, message_id: str, timeout: float) -> MessageView | None:
        """The message once settled, or as it stands when ``timeout`` runs out."""
        deadline = time.monotonic() + timeout
        event = asyncio.Event()
        self._events.setdefault(message_id, set()).add(event)
        try:
            while True:
                event.clear()  # before reading, so a notification after the read is not lost
                view = self._latest.pop(message_id, None)
                if view is None or view.status not in FINAL_STATUSES:
                    view = await self.store.call(lambda: self.store.status_of(message_id))
                remaining = deadline - time.monotonic()
                if view is None or view.status in FINAL_STATUSES or remaining <= 0:
                    return view
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(self.poll_interval, remaining))
        finally:
            events = self._events.get(message_id)
            if events is not None:
                events.discard(event)
                if not events:
                    self._events.pop(message_id, None)
                    self._latest.pop(message_id, None)

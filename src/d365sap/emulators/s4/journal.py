"""The request journal behind ``GET /emulator/requests``.

Demos and end-to-end tests need to see what actually reached "S/4": which method on which
entity, with which payload, If-Match and CSRF token, and what S/4 answered. Only modifying
requests are kept (reads would drown them), the newest ``size`` ones.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

JOURNALED_HEADERS = (
    "content-type",
    "accept",
    "if-match",
    "x-csrf-token",
    "x-http-method",
    "content-id",
    "sap-client",
)
_TEXT_LIMIT = 4000


def _body(raw: bytes) -> tuple[Any, str | None]:
    if not raw:
        return None, None
    try:
        return json.loads(raw.decode("utf-8")), None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None, raw.decode("utf-8", "replace")[:_TEXT_LIMIT]


class Journal:
    """A bounded, thread-safe list of modifying requests."""

    def __init__(self, size: int) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=size)
        self._lock = threading.Lock()
        self._sequence = itertools.count(1)

    def record(
        self,
        *,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        status: int,
        user: str | None,
        in_batch: bool = False,
    ) -> None:
        """Add one request; ``path`` is below the service root."""
        parsed, text = _body(body)
        entry: dict[str, Any] = {
            "seq": 0,
            "time": datetime.now(UTC).isoformat(),
            "method": method,
            "path": path,
            "query": dict(parse_qsl(query, keep_blank_values=True)),
            "headers": {k: headers[k] for k in JOURNALED_HEADERS if k in headers},
            "body": parsed,
            "status": status,
            "user": user,
            "in_batch": in_batch,
        }
        if text is not None:
            entry["body_text"] = text
        with self._lock:
            entry["seq"] = next(self._sequence)
            self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        """Oldest first."""
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()

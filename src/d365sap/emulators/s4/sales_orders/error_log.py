"""The provider-side web service error log that SAP's fault strings point to.

SAP answers a refused SOAP request with a short fault string ending in "more details in the web
service error log on provider side (UTC timestamp ...; Transaction ID ...)"; the details sit in
the system's error log under that transaction id. The emulator keeps the same log, readable at
``GET /emulator/sales-orders/errors``, with every problem of the request it refused.
"""

from __future__ import annotations

import secrets
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_BODY_KEPT = 4000


@dataclass(frozen=True)
class ErrorLogEntry:
    """One refused request."""

    transaction_id: str
    at: datetime
    user: str | None
    soap_version: str
    fault_code: str
    fault_string: str
    problems: tuple[str, ...]
    body: str

    @property
    def timestamp(self) -> str:
        """``20261127090000``: the UTC timestamp SAP writes into the fault string."""
        return self.at.strftime("%Y%m%d%H%M%S")

    def view(self) -> dict[str, Any]:
        """JSON for the admin routes."""
        return {
            "transaction_id": self.transaction_id,
            "timestamp": self.timestamp,
            "at": self.at.isoformat(),
            "user": self.user,
            "soap_version": self.soap_version,
            "fault_code": self.fault_code,
            "fault_string": self.fault_string,
            "problems": list(self.problems),
            "body": self.body,
        }


def new_transaction() -> tuple[str, datetime]:
    """A transaction id (32 upper-case hex digits) and its moment."""
    return secrets.token_hex(16).upper(), datetime.now(UTC)


def provider_side(text: str, transaction_id: str, at: datetime) -> str:
    """``text`` with SAP's pointer to the provider-side error log."""
    stamp = at.strftime("%Y%m%d%H%M%S")
    return (
        f"{text.rstrip('.')}; more details in the web service error log on provider side "
        f"(UTC timestamp {stamp}; Transaction ID {transaction_id})"
    )


class WebServiceErrorLog:
    """The newest ``size`` refused requests."""

    def __init__(self, size: int) -> None:
        self._entries: deque[ErrorLogEntry] = deque(maxlen=size)
        self._lock = threading.Lock()

    def record(self, entry: ErrorLogEntry) -> None:
        """Add one entry."""
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        """Oldest first."""
        with self._lock:
            return [entry.view() for entry in self._entries]

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()


def excerpt(body: bytes) -> str:
    """The start of a request body, for the log."""
    return body[:_BODY_KEPT].decode("utf-8", "replace")

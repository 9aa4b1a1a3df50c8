"""What every connector shares: client construction, and turning HTTP failures into the error tree.

A back end's answer is classified once, here: timeouts, dropped connections, 5xx and 429 are
transient (retry later, honouring ``Retry-After``); 412 means the record changed; 404 means it is
not there; other 4xx are permanent business rejections carrying the back end's own message.
"""

from __future__ import annotations

import email.utils
import ssl
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import httpx2

from d365sap.connectors.network import loop_transport
from d365sap.errors import (
    ConflictError,
    NotFoundError,
    PermanentError,
    PreconditionFailedError,
    TransientError,
)

TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def transport_error(system: str, exc: httpx2.HTTPError) -> TransientError:
    """A connection-level failure (timeout, refused, reset) as a transient error."""
    kind = "timed out" if isinstance(exc, httpx2.TimeoutException) else "connection failed"
    return TransientError(f"{system}: {kind}: {exc.__class__.__name__}: {exc}")


def classify_status(
    system: str,
    response: httpx2.Response,
    backend_message: str,
    *,
    is_conflict: Callable[[int, str], bool] | None = None,
) -> Exception:
    """The error for a non-success ``response``, with the back end's message kept."""
    status = response.status_code
    text = f"{system} answered {status}: {backend_message}"
    if status in TRANSIENT_STATUSES:
        return TransientError(
            text,
            status=status,
            retry_after=retry_after_seconds(response.headers.get("retry-after")),
            backend_message=backend_message,
        )
    if status == 412:
        return PreconditionFailedError(text, status=status, backend_message=backend_message)
    if status == 404:
        return NotFoundError(text, status=status, backend_message=backend_message)
    if status == 409 or (is_conflict is not None and is_conflict(status, backend_message)):
        return ConflictError(text, status=status, backend_message=backend_message)
    return PermanentError(text, status=status, backend_message=backend_message)


def client_kwargs(
    *,
    timeout: float,
    verify: ssl.SSLContext | bool,
    cert: tuple[str, str] | None = None,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``httpx2.AsyncClient`` shared by the connectors."""
    limits = httpx2.Limits(max_connections=64, max_keepalive_connections=32)
    return {
        "timeout": httpx2.Timeout(timeout, connect=min(timeout, 10.0)),
        "follow_redirects": False,
        "transport": transport or loop_transport(verify=verify, cert=cert, limits=limits),
    }


class ConnectorClient:
    """Owns one ``httpx2.AsyncClient`` (connection pool, cookies) and closes it as a context."""

    _client: httpx2.AsyncClient

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

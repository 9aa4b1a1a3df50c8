"""One authenticated, throttled HTTP exchange with the Dataverse Web API.

Every request the Dataverse connector makes goes through :meth:`DataverseSession.send`:

- it first asks the :class:`RequestThrottle` for permission (the deployment-wide throttle of
  ``engine/throttle.py`` waits out a pause another worker was told about and keeps requests under
  the budget; without one, :class:`ProcessThrottle` pauses this process's requests only);
- it carries a bearer token from the :class:`~d365sap.connectors.dataverse_token.TokenProvider`;
  on 401 the token is invalidated and the request sent once more with a fresh one;
- on 429 it reports ``Retry-After`` to the throttle, which pauses *every* caller, then waits its
  turn and sends the request again, up to ``max_throttle_retries`` times (service protection
  refuses a request before running it, so a repeat never applies a write twice).

Other answers are returned as they are; the caller turns failures into errors
(:mod:`d365sap.connectors.dataverse_errors`).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import httpx2

from d365sap.connectors.base import (
    ConnectorClient,
    client_kwargs,
    retry_after_seconds,
    transport_error,
)
from d365sap.connectors.dataverse_errors import SYSTEM, failure
from d365sap.connectors.dataverse_token import TokenProvider
from d365sap.errors import PermanentError, TransientError, ValidationError

API_PATH = "/api/data/v9.2/"
DEFAULT_RETRY_AFTER = 5.0
"""Seconds to pause after a 429 that names no ``Retry-After`` (Dataverse always sends one)."""
BASE_HEADERS = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}


class RequestThrottle(Protocol):
    """Who decides when the next Dataverse request may go out."""

    async def acquire(self) -> None:
        """Wait until a request may be sent (no pause in force, budget left).

        Raises :class:`~d365sap.errors.TransientError` (with ``retry_after``) instead of waiting
        longer than the throttle allows.
        """
        ...

    async def pause(self, seconds: float) -> None:
        """Dataverse answered 429 with ``Retry-After: seconds``: every caller waits that long."""
        ...


class ProcessThrottle:
    """The fallback throttle: one pause shared by the requests of this process, no budget."""

    def __init__(self, *, max_wait_seconds: float = 60.0) -> None:
        self.max_wait_seconds = max_wait_seconds
        self.paused_until = 0.0
        self.waited_seconds = 0.0

    async def acquire(self) -> None:
        """Sleep out the pause in force, unless it is longer than ``max_wait_seconds``."""
        delay = self.paused_until - time.time()
        if delay <= 0:
            return
        if delay > self.max_wait_seconds:
            raise TransientError(
                f"{SYSTEM} is throttling requests for another {delay:.0f} s",
                status=429,
                retry_after=delay,
            )
        self.waited_seconds += delay
        await asyncio.sleep(delay)

    async def pause(self, seconds: float) -> None:
        """Hold every request of this process for ``seconds``."""
        self.paused_until = max(self.paused_until, time.time() + seconds)


@dataclass
class SessionStats:
    """Counters for diagnostics, tests and the benchmark."""

    requests: int = 0
    throttled: int = 0
    token_refreshes: int = 0


def tls_context(ca_file: Path | None) -> ssl.SSLContext | bool:
    """Trust ``ca_file`` (the emulator's CA, a corporate proxy's) or the system's store."""
    if ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise ValidationError("dataverse.ca_file", f"cannot load {ca_file}: {exc}") from exc


class DataverseSession(ConnectorClient):
    """The connection pool, token and throttle of one Dataverse environment."""

    def __init__(
        self,
        environment_url: str,
        tokens: TokenProvider,
        *,
        ca_file: Path | None = None,
        timeout: float = 60.0,
        throttle: RequestThrottle | None = None,
        max_throttle_retries: int = 5,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        parts = urlsplit(environment_url)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise ValidationError(
                "dataverse.environment_url", f"{environment_url!r} is not an http(s) URL"
            )
        self.environment_url = f"{parts.scheme}://{parts.netloc}"
        self.service_root = self.environment_url + API_PATH
        self.tokens = tokens
        self.throttle: RequestThrottle = throttle or ProcessThrottle()
        self.max_throttle_retries = max_throttle_retries
        self.stats = SessionStats()
        self._client = httpx2.AsyncClient(
            headers=BASE_HEADERS,
            **client_kwargs(timeout=timeout, verify=tls_context(ca_file), transport=transport),
        )

    def url(self, relative: str) -> str:
        """The absolute URL of a path below the service root (``accounts(…)?$select=…``)."""
        return self.service_root + relative.lstrip("/")

    def check_link(self, link: str) -> str:
        """A ``nextLink``/``deltaLink`` the service gave; refused if it leaves the environment.

        The bearer token goes with every request, so it is never sent to another host.
        """
        if not link.startswith(self.service_root):
            raise PermanentError(
                f"{SYSTEM}: link {link[:200]!r} is not below the service root {self.service_root}"
            )
        return link

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        what: str = "",
    ) -> httpx2.Response:
        """Send one request: throttle, token, one retry on 401, retries on 429."""
        refreshed = False
        throttled = 0
        while True:
            await self.throttle.acquire()
            token = await self.tokens.token()
            request_headers = {**(headers or {}), "Authorization": f"Bearer {token}"}
            self.stats.requests += 1
            try:
                response = await self._client.request(
                    method, url, headers=request_headers, content=content
                )
            except httpx2.HTTPError as exc:
                raise transport_error(f"{SYSTEM} {what}".rstrip(), exc) from exc
            if response.status_code == 401 and not refreshed:
                # A token revoked or expired early: fetch a new one, once.
                refreshed = True
                self.stats.token_refreshes += 1
                self.tokens.invalidate()
                continue
            if response.status_code != 429:
                return response
            self.stats.throttled += 1
            wait = retry_after_seconds(response.headers.get("retry-after"))
            await self.throttle.pause(DEFAULT_RETRY_AFTER if wait is None else wait)
            if throttled >= self.max_throttle_retries:
                raise failure(response, what=what)
            throttled += 1

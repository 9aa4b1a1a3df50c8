"""A :class:`DataverseClient` talking to an in-process emulator app over ASGI (unit tests only).

The client and the emulator run their real code paths; only the socket and TLS are left out, and
the bearer token is minted by the emulator's own issuer (:class:`support.dataverse_api.WebApi`).
"""

from __future__ import annotations

from typing import Any

import httpx2

from d365sap.connectors.dataverse import DataverseClient
from support.dataverse_api import BASE, WebApi


class StaticTokens:
    """A token provider holding one token that the emulator issued."""

    def __init__(self, token: str) -> None:
        self.value = token
        self.invalidated = 0

    async def token(self) -> str:
        return self.value

    def invalidate(self) -> None:
        self.invalidated += 1


def inprocess_client(api: WebApi, **options: Any) -> DataverseClient:
    """A connector client for ``api``'s emulator, without a socket."""
    return DataverseClient(
        BASE, StaticTokens(api.token), transport=httpx2.ASGITransport(app=api.app), **options
    )

"""The Dataverse emulator on a real TLS loopback port, and connector clients for it.

:func:`dataverse_server` runs ``create_app(settings)`` under uvicorn with the emulator's
certificate; :meth:`RunningDataverse.client` builds a :class:`DataverseClient` that gets its
token from the emulated Entra ID through msal and trusts the emulator's CA, exactly as the
service does against a real environment. Providers are closed with the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2
from fastapi import FastAPI

from d365sap.connectors.dataverse import DataverseClient
from d365sap.connectors.dataverse_token import MsalTokenProvider
from d365sap.emulators.dataverse.app import create_app
from d365sap.emulators.dataverse.environment import DataverseEnvironment
from d365sap.emulators.dataverse.identity import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from d365sap.emulators.settings import DataverseEmulatorSettings
from d365sap.emulators.tls import TlsFiles
from d365sap.web.serving import BackgroundServer


@dataclass
class RunningDataverse:
    """A served emulator: its URL, its environment (rows, tokens, faults) and its CA."""

    app: FastAPI
    server: BackgroundServer
    tls: TlsFiles
    settings: DataverseEmulatorSettings
    providers: list[MsalTokenProvider] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def environment(self) -> DataverseEnvironment:
        environment: DataverseEnvironment = self.app.state.dataverse
        return environment

    def provider(self, **overrides: Any) -> MsalTokenProvider:
        """msal against the emulator's tenant with the demo application's secret."""
        options: dict[str, Any] = {
            "authority": self.url,
            "tenant": self.settings.entra.tenant_id,
            "client_id": DEMO_CLIENT_ID,
            "environment_url": self.url,
            "client_secret": DEMO_CLIENT_SECRET,
            "ca_file": self.tls.ca_file,
        }
        options.update(overrides)
        provider = MsalTokenProvider(**options)
        self.providers.append(provider)
        return provider

    def client(self, tokens: MsalTokenProvider | None = None, **options: Any) -> DataverseClient:
        """A connector client for this environment (a fresh token provider unless given)."""
        return DataverseClient(
            self.url, tokens or self.provider(), ca_file=self.tls.ca_file, **options
        )

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        """Call an ``/emulator/...`` route over TLS (no token needed)."""
        response = httpx2.request(
            method, f"{self.url}{path}", verify=self.tls.client_context(), timeout=10.0, **kwargs
        )
        assert response.status_code < 400, response.text
        return response

    def rows(self, entity_set: str) -> list[dict[str, Any]]:
        """Rows as stored, through the admin route."""
        return list(self.admin("GET", f"/emulator/rows/{entity_set}").json()["value"])


@contextmanager
def dataverse_server(
    tls: TlsFiles, settings: DataverseEmulatorSettings | None = None
) -> Iterator[RunningDataverse]:
    """Serve a fresh emulated environment over HTTPS on a free loopback port."""
    chosen = settings or DataverseEmulatorSettings()
    app = create_app(chosen)
    server = BackgroundServer(
        app, name="dataverse", ssl_certfile=tls.cert_file, ssl_keyfile=tls.key_file
    )
    with server:
        app.state.dataverse.issuer.resource_url = server.url
        running = RunningDataverse(app, server, tls, chosen)
        try:
            yield running
        finally:
            for provider in running.providers:
                provider.close()

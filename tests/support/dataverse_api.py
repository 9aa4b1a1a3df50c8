"""A Web API client for the Dataverse emulator's own tests, in-process over ASGI.

:class:`WebApi` holds one emulator app and a bearer token of its tenant (minted through the
token endpoint's own code path), and sends requests through httpx2's ASGI transport, so the
whole app runs (fault middleware, token check, body limit, service) without a socket.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
from fastapi import FastAPI

from d365sap.emulators.dataverse.app import create_app
from d365sap.emulators.dataverse.environment import DataverseEnvironment
from d365sap.emulators.dataverse.identity import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, TokenIssuer
from d365sap.emulators.settings import DataverseEmulatorSettings

BASE = "https://dataverse.test"
ROOT = f"{BASE}/api/data/v9.2/"
HEADERS = {"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"}
# Rows of the packaged seed the tests refer to.
ACCOUNT_US1 = "e2f3a4b5-c6d7-4e8f-9a0b-1c2d3e4f5a6b"
ACCOUNT_US2 = "e2f3a4b5-c6d7-4e8f-9a0b-1c2d3e4f5a6c"
ACCOUNT_MUSTER = "1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e"
ACCOUNT_NORDLICHT = "1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5f"
CONTACT_JANE = "6b8d0f21-3a5c-4e7f-9b1d-2c4e6a8b0d01"
CURRENCY_USD = "7a1c0f3e-5b2d-4e8a-9c61-0d4f2b8e6a01"
CURRENCY_EUR = "7a1c0f3e-5b2d-4e8a-9c61-0d4f2b8e6a02"
ORG_S4_1710 = "5d2c1e7a-9b3f-4c21-8e6a-0f4b7c9d2a11"
ORG_ECC_1000 = "0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d"
ERP_ACCOUNT_US1 = "c1b9d2e4-6f7a-4e3b-8d2c-9a0b1c2d3e4f"
DETAIL_US1 = "a8e4f0c2-3d51-4b7e-9c16-2e7f5a1b8d30"
ORDER_MUSTER = "8e0a2c4f-1d3b-4a6e-9f2c-5b7d9e1f3a01"


def mint_token(issuer: TokenIssuer) -> str:
    """An access token for the demo application, for the issuer's environment URL."""
    form = {
        "grant_type": ["client_credentials"],
        "client_id": [DEMO_CLIENT_ID],
        "client_secret": [DEMO_CLIENT_SECRET],
        "scope": [f"{issuer.resource_url}/.default"],
    }
    return str(issuer.issue(form, [])["access_token"])


class WebApi:
    """Sends requests to one in-process emulator app as an authenticated client."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.environment: DataverseEnvironment = app.state.dataverse
        self.environment.issuer.resource_url = BASE
        self.token = mint_token(self.environment.issuer)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        authorization: str | None = "token",
    ) -> httpx2.Response:
        """``path`` below the service root (``accounts(...)``) or absolute (``/emulator/...``)."""
        url = BASE + path if path.startswith("/") else ROOT + path
        all_headers = dict(HEADERS)
        if authorization == "token":
            all_headers["Authorization"] = f"Bearer {self.token}"
        elif authorization is not None:
            all_headers["Authorization"] = authorization
        all_headers.update(headers or {})

        async def send() -> httpx2.Response:
            transport = httpx2.ASGITransport(app=self.app)
            async with httpx2.AsyncClient(transport=transport) as client:
                if content is not None or json is None:
                    return await client.request(method, url, content=content, headers=all_headers)
                return await client.request(method, url, json=json, headers=all_headers)

        return asyncio.run(send())

    def get(self, path: str, **kwargs: Any) -> httpx2.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> httpx2.Response:
        return self.request("POST", path, json=body, **kwargs)

    def patch(self, path: str, body: Any, **kwargs: Any) -> httpx2.Response:
        return self.request("PATCH", path, json=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx2.Response:
        return self.request("DELETE", path, **kwargs)

    def row(self, entity_set: str, row_id: str) -> dict[str, Any]:
        """A row as stored (admin route), for checks that bypass the Web API."""
        response = self.get(f"/emulator/rows/{entity_set}/{row_id}", authorization=None)
        assert response.status_code == 200, response.text
        return dict(response.json())


def web_api(settings: DataverseEmulatorSettings | None = None) -> WebApi:
    """A fresh emulator (packaged seed unless ``settings`` say otherwise) and its client."""
    return WebApi(create_app(settings or DataverseEmulatorSettings()))


def error_of(response: httpx2.Response) -> tuple[int, str, str]:
    """Status, Dataverse error code and message of an error reply."""
    body = response.json()
    assert set(body) == {"error"}, body
    return response.status_code, body["error"]["code"], body["error"]["message"]

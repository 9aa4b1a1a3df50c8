"""The demo's Dataverse part: the emulator over TLS, its webhooks into the service, new customers.

``d365sap demo`` shows the native flow with this: the Dataverse emulator (Web API and Entra
token endpoint) runs beside the SAP emulators, the service reaches it with the demo app
registration, and webhooks registered in the emulator post every change of an account, ERP
account or ERP account detail to ``POST /webhooks/dataverse``.
:meth:`DataverseDemo.create_customer` then creates a customer in "Dynamics" the way a user's
form would (account, ERP account, ERP account detail), and
:meth:`DataverseDemo.wait_for_number` waits until the flow has created it in SAP and written
SAP's number back onto the detail.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx2
from fastapi import FastAPI
from pydantic import SecretStr

from d365sap.config import Settings
from d365sap.connectors.dataverse import DataverseClient
from d365sap.connectors.dataverse_token import MsalTokenProvider
from d365sap.emulators.dataverse.app import create_app as create_dataverse_app
from d365sap.emulators.dataverse.identity import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from d365sap.emulators.tls import TlsFiles, ensure_tls
from d365sap.web.serving import BackgroundServer
from d365sap.web.webhooks import WEBHOOK_PATH

DEMO_WEBHOOK_KEY = "d365sap-demo-webhook-key"  # a demo secret between two local processes
WEBHOOK_HEADER = "x-d365sap-webhook-key"
ORG_S4HC = "5d2c1e7a-9b3f-4c21-8e6a-0f4b7c9d2a11"  # seed: S/4HANA Cloud 1710/10/00
ORG_ECC = "0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d"  # seed: SAP ERP 1000/10/00
TRIGGER_TABLES = ("account", "sap_erpaccount", "sap_erpaccountdetail")
T = TypeVar("T")


@dataclass(frozen=True)
class NewCustomerIds:
    """The rows of a customer created in the emulator."""

    account: str
    erp_account: str
    detail: str


def _hosts(hosts: list[str], listen: str) -> list[str]:
    wanted = list(hosts)
    if listen not in ("0.0.0.0", "::", "") and listen not in wanted:
        wanted.append(listen)
    return wanted


class DataverseDemo:
    """The Dataverse emulator of a demo (or end-to-end test) and the service's view of it."""

    def __init__(self, settings: Settings, *, tls_directory: Path | None = None) -> None:
        self.settings = settings
        emulator = settings.emulators.dataverse
        directory = tls_directory or emulator.tls_directory
        self.tls: TlsFiles = ensure_tls(
            directory, _hosts(emulator.tls_hosts, settings.emulators.host)
        )
        self.app: FastAPI = create_dataverse_app(emulator)
        self.server = BackgroundServer(
            self.app,
            host=settings.emulators.host,
            port=settings.emulators.dataverse_port,
            name="dataverse-emulator",
            ssl_certfile=self.tls.cert_file,
            ssl_keyfile=self.tls.key_file,
        )

    @property
    def url(self) -> str:
        return self.server.url

    def start(self) -> DataverseDemo:
        """Serve the emulator; its environment URL is where it listens."""
        self.server.start()
        if self.settings.emulators.dataverse.resource_url is None:
            self.app.state.dataverse.issuer.resource_url = self.server.url
        return self

    def stop(self) -> None:
        self.server.stop()

    def configure_service(self, settings: Settings) -> None:
        """Point the service's ``[dataverse]`` at the emulator, run the flow, take webhooks."""
        dataverse = settings.dataverse
        dataverse.environment_url = self.url
        dataverse.authority = self.url
        dataverse.tenant = self.settings.emulators.dataverse.entra.tenant_id
        dataverse.client_id = DEMO_CLIENT_ID
        dataverse.client_secret = SecretStr(DEMO_CLIENT_SECRET)
        dataverse.client_secret_env = None
        dataverse.client_secret_file = None
        dataverse.ca_file = self.tls.ca_file
        settings.dataverse_flow.enabled = True
        triggers = settings.dataverse_triggers
        if triggers.key() is None:
            triggers.webhook_key = SecretStr(DEMO_WEBHOOK_KEY)
        triggers.webhook_header = WEBHOOK_HEADER

    # admin routes ---------------------------------------------------------------------------

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        """An ``/emulator/...`` call over TLS (trusting the emulator's CA)."""
        response = httpx2.request(
            method,
            f"{self.url}{path}",
            verify=self.tls.client_context(),
            timeout=30.0,
            **kwargs,
        )
        response.raise_for_status()
        return response

    def register_webhooks(self, service_url: str, key: str) -> list[str]:
        """One webhook per trigger table into the service, authenticated by a header."""
        ids = []
        for table in TRIGGER_TABLES:
            images = []
            if table != "account":
                images = [{"name": "post", "kind": "post", "attributes": ["sap_accountid"]}]
            registration = {
                "name": f"d365sap {table}",
                "url": f"{service_url}{WEBHOOK_PATH}",
                "auth": "HttpHeader",
                "auth_value": {WEBHOOK_HEADER: key},
                "table": table,
                "messages": ["Create", "Update", "Delete"],
                "images": images,
            }
            ids.append(
                str(self.admin("POST", "/emulator/webhooks", json=registration).json()["id"])
            )
        return ids

    def row(self, entity_set: str, row_id: str) -> dict[str, Any]:
        """A row as the emulator stores it."""
        return dict(self.admin("GET", f"/emulator/rows/{entity_set}/{row_id}").json())

    # the Web API, as a Dynamics user's client would call it ----------------------------------

    def with_client(self, work: Callable[[DataverseClient], Awaitable[T]]) -> T:
        """Run ``work`` with a Web API client of the demo application (its own event loop)."""

        async def session() -> T:
            tokens = MsalTokenProvider(
                authority=self.url,
                tenant=self.settings.emulators.dataverse.entra.tenant_id,
                client_id=DEMO_CLIENT_ID,
                environment_url=self.url,
                client_secret=DEMO_CLIENT_SECRET,
                ca_file=self.tls.ca_file,
            )
            try:
                async with DataverseClient(self.url, tokens, ca_file=self.tls.ca_file) as client:
                    return await work(client)
            finally:
                tokens.close()

        return asyncio.run(session())

    def create_customer(
        self, name: str, *, org: str = ORG_S4HC, country: str = "US", city: str = "Palo Alto"
    ) -> NewCustomerIds:
        """A new customer as a Dynamics form creates it: account, ERP account and detail."""
        ids = NewCustomerIds(str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4()))
        account = {
            "accountid": ids.account,
            "name": name,
            "address1_line1": "1 Harbour Road",
            "address1_city": city,
            "address1_postalcode": "94304" if country == "US" else "20457",
            "address1_country": country,
            "telephone1": "+1 650 555-0199",
        }
        erp_account = {
            "sap_erpaccountid": ids.erp_account,
            "sap_name": name,
            "sap_name1": name,
            "sap_language": "EN",
            "sap_accountid@odata.bind": f"/accounts({ids.account})",
            "sap_linkederporgid@odata.bind": f"/sap_linkederporgs({org})",
        }
        detail = {
            "sap_erpaccountdetailid": ids.detail,
            "sap_name": f"{name} / sales area",
            "sap_erpaccountid@odata.bind": f"/sap_erpaccounts({ids.erp_account})",
            "sap_accountid@odata.bind": f"/accounts({ids.account})",
            "sap_linkederporgid@odata.bind": f"/sap_linkederporgs({org})",
            "sap_customergroup": "01",
            "sap_currency": "USD" if country == "US" else "EUR",
        }

        async def create(client: DataverseClient) -> None:
            # As a user would enter it: the account, then its ERP account, then the sales area.
            await client.create("accounts", account)
            await client.create("sap_erpaccounts", erp_account)
            await client.create("sap_erpaccountdetails", detail)

        self.with_client(create)
        return ids

    def wait_for_number(self, detail_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """The detail row once SAP's customer number is written back (or as it is at timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            row = self.row("sap_erpaccountdetails", detail_id)
            if row.get("sap_sapcustomernumber") or time.monotonic() > deadline:
                return row
            time.sleep(0.2)

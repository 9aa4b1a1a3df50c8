"""The native customer flow end to end: the service and all three emulators on loopback.

:func:`native_stack` starts the S/4HANA Cloud and SAP ERP emulators (HTTP), the Dataverse
emulator (HTTPS with its own CA, tokens from its Entra endpoint through msal) and the service
configured with a ``[dataverse]`` section, so it runs the ``dataverse_customer`` flow with real
clients over real sockets. :class:`NativeStack` submits :class:`DataverseChange` messages through
the service's own intake (on the service's event loop) and looks into every system.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx2
from pydantic import SecretStr

from d365sap.config import Settings
from d365sap.connectors.dataverse import DataverseClient
from d365sap.demo import S4_SERVICE
from d365sap.emulators.dataverse.identity import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from d365sap.emulators.erp.app import create_app as create_erp_app
from d365sap.emulators.s4.app import create_app as create_s4_app
from d365sap.emulators.settings import DataverseEmulatorSettings, EmulatorsSettings
from d365sap.emulators.tls import TlsFiles
from d365sap.engine.store import MessageStore
from d365sap.flows.dataverse_messages import (
    CONTENT_TYPE,
    FLOW_NAME,
    ChangeKind,
    ChangeSource,
    ChangeTable,
    DataverseChange,
    encode_change,
)
from d365sap.service import Service
from d365sap.web.app import create_app as create_service_app
from d365sap.web.serving import BackgroundServer
from support.dataverse_server import RunningDataverse, dataverse_server

T = TypeVar("T")
NEW_ACCOUNT: dict[str, Any] = {
    "name": "Neukunde Pumpen AG",
    "telephone1": "+49 201 555-0",
    "emailaddress1": "einkauf@neukunde.example",
    "address1_line1": "Ruhrallee 1",
    "address1_postalcode": "45138",
    "address1_city": "Essen",
    "address1_stateorprovince": "NW",
    "address1_country": "DE",
}
NEW_ERP_ACCOUNT: dict[str, Any] = {
    "sap_name": "Neukunde Pumpen AG (new)",
    "sap_name1": "Neukunde Pumpen AG",
    "sap_name2": "Werk Essen",
    "sap_searchname": "NEUKUNDE",
    "sap_language": "DE",
}
NEW_DETAIL: dict[str, Any] = {
    "sap_name": "Neukunde Pumpen AG / sales area",
    "sap_deletionflag": False,
    "sap_customergroup": "01",
    "sap_salesoffice": "1010",
    "sap_salesgroup": "110",
    "sap_currency": "EUR",
}


@dataclass(frozen=True)
class NewRows:
    """Ids of a customer created in the Dataverse emulator (``detail_id`` None: none made)."""

    account_id: str
    erp_account_id: str | None
    detail_id: str | None


STATUS_PATH = "/sap/bc/srt/rfc/sap/zidoc_read_completely/{client}/zidoc_read_completely/binding"
FINAL = ("done", "failed", "discarded", "superseded")


class _LoopRecorder:
    """Wraps the service app to learn the event loop it runs on (for submitting from tests)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.loop = asyncio.get_running_loop()
        await self.app(scope, receive, send)


@dataclass
class NativeStack:
    """A running service with the native flow, and ways into each system."""

    dataverse: RunningDataverse
    s4_url: str
    erp_url: str
    service_url: str
    recorder: _LoopRecorder
    settings: Settings
    store: MessageStore
    http: httpx2.Client

    @property
    def service(self) -> Service:
        service: Service = self.recorder.app.state.service
        return service

    # submitting ------------------------------------------------------------------------------

    def submit(
        self,
        table: ChangeTable | str,
        row_id: str,
        *,
        change: ChangeKind | str = ChangeKind.UPDATE,
        account_id: str | None = None,
        source: ChangeSource | str = ChangeSource.WEBHOOK,
        dry_run: bool = False,
        source_id: str | None = None,
    ) -> str:
        """Submit one change through the service's intake; the message id."""
        message = DataverseChange(
            table=ChangeTable(table),
            id=uuid.UUID(row_id),
            account_id=uuid.UUID(account_id) if account_id else None,
            change=ChangeKind(change),
            source=ChangeSource(source),
            dry_run=dry_run,
        )
        intake = self.service.intake
        submitted = self._on_service_loop(
            intake.submit(
                FLOW_NAME,
                encode_change(message),
                content_type=CONTENT_TYPE,
                correlation_id=uuid.uuid4().hex,
                # Each submission is a new delivery (the store would answer a repeat of the
                # same payload with the first message).
                source_id=source_id or f"test:{uuid.uuid4()}",
            )
        )
        return submitted.message.id

    def service_call(self, coroutine: Awaitable[T]) -> T:
        """Await ``coroutine`` on the service's event loop (where its clients live)."""
        return self._on_service_loop(coroutine)

    def _on_service_loop(self, coroutine: Awaitable[T]) -> T:
        loop = self.recorder.loop
        assert loop is not None

        async def wrapped() -> T:
            return await coroutine

        return asyncio.run_coroutine_threadsafe(wrapped(), loop).result(30)

    def message(self, message_id: str) -> dict[str, Any]:
        response = self.http.get(f"{self.service_url}/api/messages/{message_id}")
        response.raise_for_status()
        return dict(response.json())

    def wait(self, message_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """The message once settled (done, failed, discarded, superseded)."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.message(message_id)
            if message["status"] in FINAL:
                return message
            if time.monotonic() > deadline:
                raise AssertionError(f"message not settled in {timeout} s: {message}")
            time.sleep(0.05)

    def run(self, table: ChangeTable | str, row_id: str, **options: Any) -> dict[str, Any]:
        """Submit and wait: the settled message."""
        return self.wait(self.submit(table, row_id, **options))

    # Dataverse --------------------------------------------------------------------------------

    def dv(self, action: Callable[[DataverseClient], Awaitable[T]]) -> T:
        """Run ``action`` with a connector client of the environment (not the service's)."""

        async def go() -> T:
            async with self.dataverse.client() as client:
                return await action(client)

        return asyncio.run(go())

    def new_customer(
        self,
        org_id: str | None,
        *,
        account: dict[str, Any] | None = None,
        erp_account: dict[str, Any] | None = None,
        detail: dict[str, Any] | None = None,
        erp: bool = True,
        with_detail: bool = True,
    ) -> NewRows:
        """An account (with an ERP account and detail unless told otherwise) without SAP number."""

        async def make(client: DataverseClient) -> NewRows:
            made = await client.create("accounts", {**NEW_ACCOUNT, **(account or {})})
            account_id = str(made.row_id)
            if not erp:
                return NewRows(account_id, None, None)
            org = (
                {"sap_linkederporgid@odata.bind": f"/sap_linkederporgs({org_id})"} if org_id else {}
            )
            erp_row = await client.create(
                "sap_erpaccounts",
                {
                    **NEW_ERP_ACCOUNT,
                    "sap_accountid@odata.bind": f"/accounts({account_id})",
                    **org,
                    **(erp_account or {}),
                },
            )
            if not with_detail:
                return NewRows(account_id, str(erp_row.row_id), None)
            detail_row = await client.create(
                "sap_erpaccountdetails",
                {
                    **NEW_DETAIL,
                    "sap_erpaccountid@odata.bind": f"/sap_erpaccounts({erp_row.row_id})",
                    "sap_accountid@odata.bind": f"/accounts({account_id})",
                    **org,
                    **(detail or {}),
                },
            )
            return NewRows(account_id, str(erp_row.row_id), str(detail_row.row_id))

        return self.dv(make)

    def patch(self, entity_set: str, row_id: str, values: dict[str, Any]) -> None:
        """Change a row through the Web API (as a user in Dynamics would)."""

        async def change(client: DataverseClient) -> None:
            await client.update(entity_set, row_id, values)

        self.dv(change)

    def delete(self, entity_set: str, row_id: str) -> None:
        """Delete a row through the Web API."""

        async def remove(client: DataverseClient) -> None:
            await client.delete(entity_set, row_id)

        self.dv(remove)

    def row(self, entity_set: str, row_id: str) -> dict[str, Any]:
        """A row as stored (admin route)."""
        return dict(self.dataverse.admin("GET", f"/emulator/rows/{entity_set}/{row_id}").json())

    def dv_faults(self, kind: str, count: int = 1, **extra: Any) -> None:
        self.dataverse.admin(
            "POST", "/emulator/faults/next", json={"kind": kind, "count": count, **extra}
        )

    # S/4 and ERP -----------------------------------------------------------------------------

    @property
    def s4_auth(self) -> tuple[str, str]:
        user = self.settings.emulators.s4.users[0]
        return user.name, user.password.get_secret_value()

    def s4_get(self, path: str, **params: str) -> httpx2.Response:
        return self.http.get(
            f"{self.s4_url}{S4_SERVICE}/{path}",
            params={"$format": "json", **params},
            auth=self.s4_auth,
        )

    def s4_partners(self, reference: str) -> list[dict[str, Any]]:
        """Business partners with ``BusinessPartnerIDByExtSystem`` = ``reference``."""
        response = self.s4_get(
            "A_BusinessPartner", **{"$filter": f"BusinessPartnerIDByExtSystem eq '{reference}'"}
        )
        response.raise_for_status()
        return list(response.json()["d"]["results"])

    def erp_customer(self, kunnr: str) -> httpx2.Response:
        return self.http.get(f"{self.erp_url}/emulator/customers/{kunnr}")

    def idocs(self) -> list[dict[str, Any]]:
        response = self.http.get(f"{self.erp_url}/emulator/idocs")
        response.raise_for_status()
        body = response.json()
        return list(body["idocs"] if isinstance(body, dict) else body)

    def faults(self, system: str, kind: str, count: int = 1, **extra: Any) -> None:
        """Queue a one-shot fault in the S/4 (``s4``) or ERP (``erp``) emulator."""
        url = self.s4_url if system == "s4" else self.erp_url
        response = self.http.post(
            f"{url}/emulator/faults/next", json={"kind": kind, "count": count, **extra}
        )
        assert response.status_code == 200, response.text


def native_settings(
    dataverse: RunningDataverse,
    s4_url: str,
    erp_url: str,
    store_url: str,
    emulators: EmulatorsSettings,
    **sections: Any,
) -> Settings:
    """Service settings for the stack: [dataverse] set, so the native flow runs."""
    s4_user, erp_user = emulators.s4.users[0], emulators.erp.users[0]
    document: dict[str, Any] = {
        "store": {"url": store_url},
        "s4": {"base_url": f"{s4_url}{S4_SERVICE}", "user": s4_user.name},
        "erp": {
            "idoc_url": f"{erp_url}/sap/bc/srt/idoc?sap-client={emulators.erp.sap_client}",
            "status_url": erp_url + STATUS_PATH.format(client=emulators.erp.sap_client),
            "user": erp_user.name,
            "create": {"status_interval_seconds": 0.05},
        },
        "dataverse": {
            "environment_url": dataverse.url,
            "authority": dataverse.url,
            "tenant": dataverse.settings.entra.tenant_id,
            "client_id": DEMO_CLIENT_ID,
            "client_secret": SecretStr(DEMO_CLIENT_SECRET),
            "ca_file": dataverse.tls.ca_file,
        },
        "runtime": {
            "poll_interval_seconds": 0.05,
            "retry": {"max_attempts": 6, "base_delay_seconds": 0.05, "max_delay_seconds": 0.5},
        },
    }
    for section, values in sections.items():
        document[section] = _merge(document.get(section, {}), values)
    settings = Settings(**document)
    settings.emulators = emulators
    settings.s4.password = s4_user.password
    settings.erp.password = erp_user.password
    return settings


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


@contextmanager
def native_stack(
    tls: TlsFiles,
    tmp_path: Path,
    *,
    emulators: EmulatorsSettings | None = None,
    dataverse_settings: DataverseEmulatorSettings | None = None,
    **sections: Any,
) -> Iterator[NativeStack]:
    """Emulators and the service with the native flow, stopped on exit."""
    emu = emulators or EmulatorsSettings()
    with (
        dataverse_server(tls, dataverse_settings) as dataverse,
        BackgroundServer(create_s4_app(emu.s4), name="s4-emulator") as s4,
        BackgroundServer(create_erp_app(emu.erp), name="erp-emulator") as erp,
    ):
        store_url = f"sqlite:///{tmp_path / 'native-store.db'}"
        settings = native_settings(dataverse, s4.url, erp.url, store_url, emu, **sections)
        store = MessageStore.open(store_url)
        recorder = _LoopRecorder(create_service_app(settings, store=store))
        service = BackgroundServer(recorder, name="service")
        try:
            with service, httpx2.Client(timeout=30.0) as http:
                yield NativeStack(
                    dataverse, s4.url, erp.url, service.url, recorder, settings, store, http
                )
        finally:
            store.close()

"""``d365sap demo``: the customer flows end to end on loopback, in one process.

Starts the S/4HANA Cloud, SAP ERP and Dataverse emulators and the service. The legacy part sends
the package's example messages (plus a changed one, a discarded one and an invalid one) through
real HTTP and shows what happened in each system. The native part creates customers in
"Dynamics" (the Dataverse emulator, whose webhooks post to the service) and shows the SAP
numbers the native flow wrote back (:mod:`d365sap.demo_dataverse`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import httpx2
from pydantic import SecretStr

from d365sap.config import InboundUser, Settings
from d365sap.demo_dataverse import ORG_ECC, ORG_S4HC, DataverseDemo
from d365sap.emulators.erp.app import create_app as create_erp_app
from d365sap.emulators.s4.app import create_app as create_s4_app
from d365sap.web.app import create_app as create_service_app
from d365sap.web.serving import BackgroundServer

DEMO_USER = "crm"
DEMO_PASSWORD = "crm-demo"
INBOUND_PATH = "/http/CustomerSalesData_CRM_to_S4HC_ERP"
S4_SERVICE = "/sap/opu/odata/sap/API_BUSINESS_PARTNER"
STATUS_PATH = "/sap/bc/srt/rfc/sap/zidoc_read_completely/{client}/zidoc_read_completely/binding"
SALES_ORDER_SOAP_PATH = "/sap/bc/srt/scs_ext/sap/salesorderbulkrequest_in"
SALES_ORDER_SERVICE = "/sap/opu/odata/sap/API_SALES_ORDER_SRV"


def example(name: str) -> bytes:
    """A packaged example message."""
    return resources.files("d365sap.resources").joinpath("examples", name).read_bytes()


@dataclass(frozen=True)
class DemoMessage:
    """One message the demo sends and what it is meant to show."""

    label: str
    body: bytes


def demo_messages() -> list[DemoMessage]:
    """The package's examples, a changed S/4 message, a discarded and an invalid one."""
    s4 = example("in_erpaccountdetails_S4HC.xml")
    changed = s4.replace(b"<salesgroup>170</salesgroup>", b"<salesgroup>171</salesgroup>")
    discarded = example("in_erpaccountdetails_ECC.xml").replace(
        b"<erpsystemtype>ECC</erpsystemtype>", b"<erpsystemtype>SAP</erpsystemtype>"
    )
    invalid = re.sub(rb"<sap_vkorg>1710</sap_vkorg>", b"<sap_vkorg></sap_vkorg>", s4)
    return [
        DemoMessage("Example A: S/4 sales area 17100001/1710/10/00", s4),
        DemoMessage("Example A again, sales group changed", changed),
        DemoMessage(
            "Example B: ERP account detail (DEBMAS + KNVV)", example("in_erpaccountdetails_ECC.xml")
        ),
        DemoMessage(
            "Example C: ERP account (DEBMAS general data)", example("in_erpaccounts_ECC.xml")
        ),
        DemoMessage("erpsystemtype SAP: neither S4HC nor ECC", discarded),
        DemoMessage("Example A without sales organisation", invalid),
    ]


@dataclass
class DemoRow:
    """One line of the demo's result table."""

    label: str
    http_status: int
    outcome: str
    route: str
    in_sap: str
    detail: str


@dataclass
class NativeRow:
    """One line of the native flow's table: a customer created in Dynamics, and its SAP number."""

    label: str
    account: str
    target: str
    number: str
    status: str
    detail: str


class DemoEnvironment:
    """Emulators and service running side by side on loopback."""

    def __init__(
        self,
        settings: Settings,
        *,
        store_path: Path,
        with_dataverse: bool = True,
        tls_directory: Path | None = None,
    ) -> None:
        self.settings = settings
        self.store_path = store_path
        self.servers: list[BackgroundServer] = []
        self.service_url = ""
        self.s4_url = ""
        self.erp_url = ""
        self.with_dataverse = with_dataverse
        self.tls_directory = tls_directory
        self.dataverse: DataverseDemo | None = None
        self.service_settings: Settings | None = None

    def start(self, *, service_port: int | None = None) -> None:
        """Start the emulators, then the service pointed at them, then Dataverse's webhooks."""
        emu = self.settings.emulators
        s4 = BackgroundServer(
            create_s4_app(emu.s4), host=emu.host, port=emu.s4_port, name="s4-emulator"
        ).start()
        self.servers.append(s4)
        erp = BackgroundServer(
            create_erp_app(emu.erp), host=emu.host, port=emu.erp_port, name="erp-emulator"
        ).start()
        self.servers.append(erp)
        self.s4_url, self.erp_url = s4.url, erp.url
        s4_user, erp_user = emu.s4.users[0], emu.erp.users[0]
        if self.store_path.exists():
            self.store_path.unlink()
        settings = self.settings.model_copy(deep=True)
        settings.store.url = f"sqlite:///{self.store_path}"
        settings.s4.base_url = f"{s4.url}{S4_SERVICE}"
        settings.s4.user = s4_user.name
        settings.s4.password = s4_user.password
        settings.erp.idoc_url = f"{erp.url}/sap/bc/srt/idoc?sap-client={emu.erp.sap_client}"
        settings.erp.status_url = f"{erp.url}{STATUS_PATH.format(client=emu.erp.sap_client)}"
        settings.erp.user = erp_user.name
        settings.erp.password = erp_user.password
        orders = settings.sales_orders
        orders.soap_url = f"{s4.url}{SALES_ORDER_SOAP_PATH}"
        orders.odata.base_url = f"{s4.url}{SALES_ORDER_SERVICE}"
        orders.user, orders.password = s4_user.name, s4_user.password
        demo_user = InboundUser(
            name=DEMO_USER, password=SecretStr(DEMO_PASSWORD), roles=["ESBMessaging.send"]
        )
        others = [user for user in settings.inbound.users if user.name != DEMO_USER]
        settings.inbound.users = [*others, demo_user]
        if self.with_dataverse:
            self.dataverse = DataverseDemo(self.settings, tls_directory=self.tls_directory)
            self.dataverse.start()
            self.dataverse.configure_service(settings)
        self.service_settings = settings
        port = settings.service.port if service_port is None else service_port
        service = BackgroundServer(
            create_service_app(settings), host=settings.service.host, port=port, name="service"
        ).start()
        self.servers.append(service)
        self.service_url = service.url
        if self.dataverse is not None:
            key = settings.dataverse_triggers.key()
            assert key is not None
            self.dataverse.register_webhooks(self.service_url, key)

    def stop(self) -> None:
        """Stop the servers, service first."""
        for server in reversed(self.servers):
            server.stop()
        self.servers.clear()
        if self.dataverse is not None:
            self.dataverse.stop()
            self.dataverse = None

    def run_native(self, timeout: float = 60.0) -> list[NativeRow]:
        """Create new customers in Dynamics and wait for the numbers SAP gave them."""
        dataverse = self.dataverse
        if dataverse is None:
            return []
        customers = [
            ("New in Dynamics → S/4HANA Cloud", "Harbour Pumps Inc.", ORG_S4HC, "US", "S/4"),
            ("New in Dynamics → SAP ERP", "Hafen Armaturen GmbH", ORG_ECC, "DE", "SAP ERP"),
        ]
        created = [
            (label, name, target, dataverse.create_customer(name, org=org, country=country))
            for label, name, org, country, target in customers
        ]
        rows = []
        for label, name, target, ids in created:
            row = dataverse.wait_for_number(ids.detail, timeout=timeout)
            number = str(row.get("sap_sapcustomernumber") or "-")
            error = str(row.get("sap_lasterror") or "")
            status = "synchronized" if row.get("sap_sapcustomernumber") else "not yet"
            detail = error or f"written back to sap_erpaccountdetail {ids.detail[:8]}…"
            rows.append(NativeRow(label, name, target, number, status, detail))
        return rows

    def run_messages(self) -> list[DemoRow]:
        """Send every demo message and describe what each system now holds."""
        rows: list[DemoRow] = []
        with httpx2.Client(timeout=30.0) as client:
            for message in demo_messages():
                response = client.post(
                    f"{self.service_url}{INBOUND_PATH}",
                    content=message.body,
                    headers={"Content-Type": "application/xml"},
                    auth=(DEMO_USER, DEMO_PASSWORD),
                )
                result: dict[str, Any] = response.json()
                rows.append(self._row(client, message, response.status_code, result))
        return rows

    def _row(
        self, client: httpx2.Client, message: DemoMessage, status: int, result: dict[str, Any]
    ) -> DemoRow:
        outcome = str(result.get("outcome", "?"))
        route = str(result.get("route", "-"))
        in_sap, detail = "-", ""
        if outcome in ("created", "updated"):
            in_sap = self._s4_state(client, result.get("keys", {}))
            detail = f"S/4 answered {result.get('backend_status')}"
        elif outcome == "idoc_sent":
            number = str(result.get("idoc_number"))
            in_sap = self._idoc_state(client, number)
            detail = f"IDoc {number}"
        elif outcome == "discarded":
            detail = str(result.get("reason", ""))
        else:
            error = result.get("error", {})
            field = error.get("field")
            detail = f"{field}: {error.get('message')}" if field else str(error.get("message"))
        return DemoRow(message.label, status, outcome, route, in_sap, detail)

    def _s4_state(self, client: httpx2.Client, keys: dict[str, str]) -> str:
        emu = self.settings.emulators.s4.users[0]
        predicate = ",".join(f"{name}='{value}'" for name, value in keys.items())
        response = client.get(
            f"{self.s4_url}{S4_SERVICE}/A_CustomerSalesArea({predicate})",
            params={"$format": "json"},
            auth=(emu.name, emu.password.get_secret_value()),
        )
        if response.status_code != 200:
            return f"sales area missing ({response.status_code})"
        entity = response.json()["d"]
        return f"sales area present, SalesGroup {entity.get('SalesGroup')}"

    def _idoc_state(self, client: httpx2.Client, number: str) -> str:
        response = client.get(f"{self.erp_url}/emulator/idocs/{number}")
        if response.status_code != 200:
            return f"IDoc not found ({response.status_code})"
        idoc = response.json()
        return f"status {idoc.get('status')} {idoc.get('status_text', '')}".strip()


def wait_forever() -> None:
    """Block until Ctrl-C."""
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        return

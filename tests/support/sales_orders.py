"""Sales orders end to end: orders in the Dataverse emulator, their customer's keys, S/4's side.

:class:`OrderDesk` works on a running :class:`~support.e2e.Stack` started with
``dataverse=True``: it creates orders as a Dynamics user would (order, then its products, over
the Web API with msal), submits or re-saves them, registers the ``salesorder`` webhook into the
service, records a customer in the service's key registry, points S/4's confirmations at the
service, and reads what S/4 (API_SALES_ORDER_SRV, its message log), Dataverse and the service
hold.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx2
from pydantic import SecretStr

from d365sap.config import InboundUser
from d365sap.connectors.dataverse import DataverseClient
from d365sap.connectors.dataverse_token import MsalTokenProvider
from d365sap.demo_dataverse import WEBHOOK_HEADER, DataverseDemo
from d365sap.emulators.dataverse.identity import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from d365sap.engine.store import MessageStore
from d365sap.engine.xref import KeyRegistry, RecordKey, SalesArea
from d365sap.web.webhooks import WEBHOOK_PATH
from support.e2e import Stack

T = TypeVar("T")
ACC_1002 = "e2f3a4b5-c6d7-4e8f-9a0b-1c2d3e4f5a6c"  # seed: Inlandskunde US 2, S/4 17100002
ACC_1001 = "e2f3a4b5-c6d7-4e8f-9a0b-1c2d3e4f5a6b"  # seed: Inlandskunde US 1
US_PRICE_LIST = "9c3e5a17-2b4d-4f6a-8e01-3d5b7c9e1a01"
EACH = "2e6b9d41-7c3a-4f05-8b12-6a9d0c3e5f01"
S4HC, ECC = 100_000_000, 100_000_001
SENT, CREATED, FAILED = 100_000_000, 100_000_001, 100_000_002
CONFIRMATION_USER = InboundUser(
    name="s4-confirmations",
    password=SecretStr("confirm-demo"),
    roles=["SalesOrderConfirmation.send"],
)
SO_SERVICE = "/sap/opu/odata/sap/API_SALES_ORDER_SRV"


class OrderDesk:
    """Orders in "Dynamics", and what each system made of them."""

    def __init__(self, stack: Stack) -> None:
        assert stack.env.dataverse is not None, "start the stack with dataverse=True"
        assert stack.env.service_settings is not None
        self.stack = stack
        self.dataverse: DataverseDemo = stack.env.dataverse
        self.settings = stack.env.service_settings
        self._store: MessageStore | None = None

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    # set-up ----------------------------------------------------------------------------------

    def register_webhook(self, *, with_pre_image: bool = True) -> str:
        """The ``salesorder`` webhook into the service, on Update of ``statecode``."""
        key = self.settings.dataverse_triggers.key()
        assert key is not None
        images = [{"name": "pre", "kind": "pre", "attributes": ["statecode"]}]
        registration = {
            "name": "d365sap salesorder",
            "url": f"{self.stack.env.service_url}{WEBHOOK_PATH}",
            "auth": "HttpHeader",
            "auth_value": {WEBHOOK_HEADER: key},
            "table": "salesorder",
            "messages": ["Create", "Update"],
            "images": images if with_pre_image else [],
        }
        answer = self.dataverse.admin("POST", "/emulator/webhooks", json=registration)
        return str(answer.json()["id"])

    def push_confirmations(self) -> None:
        """S/4's confirmations to the service's ``POST /sap/SalesOrderConfirmation``."""
        confirmation = self.stack.env.settings.emulators.s4.sales_orders.confirmation
        confirmation.url = f"{self.stack.env.service_url}/sap/SalesOrderConfirmation"
        confirmation.user = CONFIRMATION_USER.name
        confirmation.password = CONFIRMATION_USER.password
        confirmation.retries = 2
        confirmation.backoff_seconds = 0.1

    @property
    def store(self) -> MessageStore:
        if self._store is None:
            self._store = MessageStore.open(self.settings.store.url)
        return self._store

    def register_customer(
        self, account: str, customer: str, area: tuple[str, str, str] = ("1710", "10", "00")
    ) -> None:
        """Record in the key registry that ``account`` is S/4 ``customer`` in ``area``."""
        registry = KeyRegistry(self.store)
        key = RecordKey("s4hc", account, SalesArea(*area), str(uuid.uuid4()))
        registry.reserve(key, "test-setup", customer=customer)
        registry.confirm(key, "test-setup", customer=customer)

    # Dynamics ---------------------------------------------------------------------------------

    def _run(self, work: Callable[[DataverseClient], Awaitable[T]]) -> T:
        async def session() -> T:
            tokens = MsalTokenProvider(
                authority=self.dataverse.url,
                tenant=self.stack.env.settings.emulators.dataverse.entra.tenant_id,
                client_id=DEMO_CLIENT_ID,
                environment_url=self.dataverse.url,
                client_secret=DEMO_CLIENT_SECRET,
                ca_file=self.dataverse.tls.ca_file,
            )
            try:
                async with DataverseClient(
                    self.dataverse.url, tokens, ca_file=self.dataverse.tls.ca_file
                ) as client:
                    return await work(client)
            finally:
                tokens.close()

        return asyncio.run(session())

    def create_order(
        self,
        lines: list[tuple[str, float]],
        *,
        account: str = ACC_1002,
        system: int | None = S4HC,
        number: str | None = None,
        quote: str | None = "QUO-77",
        opportunity: str | None = "OPP-4711",
        project: bool | None = True,
    ) -> tuple[str, str]:
        """An Active order with one product per ``(product number, quantity)``: (id, number)."""
        order_id = str(uuid.uuid4())
        order_number = number or f"ORD-{uuid.uuid4().hex[:8].upper()}"
        order: dict[str, Any] = {
            "salesorderid": order_id,
            "name": f"Pumps {order_number}",
            "ordernumber": order_number,
            "customerid_account@odata.bind": f"/accounts({account})",
            "pricelevelid@odata.bind": f"/pricelevels({US_PRICE_LIST})",
            "transactioncurrencyid@odata.bind": "/transactioncurrencies(isocurrencycode='USD')",
            "requestdeliveryby": "2026-06-30",
            "sap_quotenumber": quote,
            "sap_opportunity": opportunity,
            "sap_projectflag": project,
        }
        if system is not None:
            order["sap_erpsystemtype"] = system
        details = [
            {
                "salesorderdetailname": product,
                "salesorderid@odata.bind": f"/salesorders({order_id})",
                "productid@odata.bind": f"/products(productnumber='{product}')",
                "uomid@odata.bind": f"/uoms({EACH})",
                "quantity": quantity,
                "lineitemnumber": 10 * (index + 1),
                "sap_projectflag": index == 0,
                "sap_opportunity": "OPP-4711" if index == 0 else None,
            }
            for index, (product, quantity) in enumerate(lines)
        ]

        async def create(client: DataverseClient) -> None:
            await client.create("salesorders", order)
            for detail in details:
                await client.create("salesorderdetails", detail)

        self._run(create)
        return order_id, order_number

    def create_product(self, number: str, name: str) -> None:
        """A product Dynamics sells (whatever S/4 thinks of it)."""

        async def create(client: DataverseClient) -> None:
            await client.create(
                "products",
                {
                    "name": name,
                    "productnumber": number,
                    "quantitydecimal": 0,
                    "defaultuomid@odata.bind": f"/uoms({EACH})",
                },
            )

        self._run(create)

    def add_write_in_line(self, order_id: str, description: str) -> None:
        """A write-in product (no product row) on the order."""

        async def create(client: DataverseClient) -> None:
            await client.create(
                "salesorderdetails",
                {
                    "salesorderdetailname": description,
                    "salesorderid@odata.bind": f"/salesorders({order_id})",
                    "isproductoverridden": True,
                    "productdescription": description,
                    "quantity": 1,
                },
            )

        self._run(create)

    def update_order(self, order_id: str, values: dict[str, Any]) -> None:
        """PATCH the order as a user's client would."""

        async def update(client: DataverseClient) -> None:
            await client.update("salesorders", order_id, values)

        self._run(update)

    def submit(self, order_id: str) -> None:
        """The order's Submit button: Active → Submitted (In Progress)."""
        self.update_order(order_id, {"statecode": 1, "statuscode": 3})

    def lines(self, order_id: str) -> list[dict[str, Any]]:
        """The order's products, read over the Web API."""

        async def read(client: DataverseClient) -> list[dict[str, Any]]:
            row = await client.get("salesorders", order_id, expand=["order_details"])
            return list(row["order_details"])

        return self._run(read)

    def order_row(self, order_id: str) -> dict[str, Any]:
        return self.dataverse.row("salesorders", order_id)

    def wait_row(
        self, order_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 30.0
    ) -> dict[str, Any]:
        """The order row once ``done(row)`` (AssertionError with the row at timeout)."""
        deadline = time.monotonic() + timeout
        while True:
            row = self.order_row(order_id)
            if done(row):
                return row
            if time.monotonic() > deadline:
                raise AssertionError(f"order {order_id} not as expected in {timeout} s: {row}")
            time.sleep(0.1)

    # S/4 ---------------------------------------------------------------------------------------

    def s4_orders(self, order_id: str) -> list[dict[str, Any]]:
        """S/4's orders carrying the Dynamics order id, with their items."""
        response = self.stack.http.get(
            f"{self.stack.env.s4_url}{SO_SERVICE}/A_SalesOrder",
            params={
                "$format": "json",
                "$filter": f"YY1_CRMOrderID_SDH eq '{order_id}'",
                "$expand": "to_Item,to_Partner",
            },
            auth=self.stack.s4_auth,
        )
        response.raise_for_status()
        return list(response.json()["d"]["results"])

    def s4_messages(self) -> list[dict[str, Any]]:
        """Every bulk message S/4 received, oldest first."""
        response = self.stack.http.get(f"{self.stack.env.s4_url}/emulator/sales-orders/messages")
        response.raise_for_status()
        return list(response.json()["messages"])

    def s4_wait(self, timeout: float = 20.0) -> None:
        """Until S/4 has processed every message and sent every confirmation."""
        response = self.stack.http.post(
            f"{self.stack.env.s4_url}/emulator/sales-orders/wait", params={"timeout": timeout}
        )
        assert response.json()["idle"], self.s4_messages()

    # the service ------------------------------------------------------------------------------

    def messages(self, flow: str) -> list[dict[str, Any]]:
        """The service's messages of ``flow``, oldest first."""
        response = self.stack.http.get(
            f"{self.stack.env.service_url}/api/messages", params={"flow": flow, "limit": 500}
        )
        response.raise_for_status()
        return list(reversed(response.json()["messages"]))  # the API lists newest first

    def wait_messages(
        self,
        flow: str,
        done: Callable[[list[dict[str, Any]]], bool],
        timeout: float = 30.0,
    ) -> list[dict[str, Any]]:
        """The messages of ``flow`` once ``done(messages)``."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.messages(flow)
            if done(found):
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{flow} messages not as expected in {timeout} s: {found}")
            time.sleep(0.1)

    def push(self, body: bytes, content_type: str, **headers: str) -> httpx2.Response:
        """POST an order to the legacy endpoint as the demo user."""
        return self.stack.send(
            body,
            headers={"Content-Type": content_type, **headers},
            path="/http/SalesOrder_CRM_S4HC",
        )

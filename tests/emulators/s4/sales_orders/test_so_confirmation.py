"""Confirmations: a SalesOrderBulkConfirmation per order, POSTed to a receiver, with retries."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lxml import etree
from pydantic import SecretStr

from d365sap.emulators.s4.app import create_app
from d365sap.emulators.settings import (
    S4EmulatorSettings,
    SalesOrderBulkSettings,
    SalesOrderConfirmationSettings,
)
from d365sap.web.serving import serving
from emulators.s4.sales_orders.so_support import (
    SOAP11,
    SOAP12,
    ItemSpec,
    OrderSpec,
    SalesOrderClient,
    bulk,
)
from support.webhook_receiver import Receiver, receiving

SLS = "http://sap.com/xi/SD-SLS"
YY1 = "http://SAPCustomFields.com/YY1_"


@contextmanager
def emulator_with_receiver(
    **confirmation: Any,
) -> Iterator[tuple[SalesOrderClient, Receiver, str]]:
    with receiving() as (receiver, receiver_server):
        url = receiver_server.url + "/sap/confirmations"
        options = {"url": url, "backoff_seconds": 0.05, "retries": 3, **confirmation}
        settings = S4EmulatorSettings(
            sales_orders=SalesOrderBulkSettings(
                confirmation=SalesOrderConfirmationSettings(**options)
            )
        )
        with serving(create_app(settings), name="s4-so-confirm") as server:
            client = SalesOrderClient(server.url)
            try:
                yield client, receiver, url
            finally:
                client.close()


def _confirmation(body: bytes, soap: str = SOAP11) -> etree._Element:
    root = etree.fromstring(body)
    assert root.tag == f"{{{soap}}}Envelope"
    found = root.find(f"{{{soap}}}Body/{{{SLS}}}SalesOrderBulkConfirmation")
    assert found is not None, body
    return found


def test_a_created_order_is_confirmed_with_its_number() -> None:
    with emulator_with_receiver(user="CONFIRM", password=SecretStr("pw-1")) as (so, receiver, _):
        order = OrderSpec(purchase_order="PO-9", crm_order_id="crm-guid-1", crm_order_no="ORD-9")
        assert so.post(bulk(order, message_id="MSG-C1")).status_code == 202
        [received] = receiver.wait_for(1)
        assert received.path == "/sap/confirmations"
        assert received.headers["content-type"].startswith("text/xml")
        assert received.headers["soapaction"] == (
            '"http://sap.com/xi/SD-SLS/SalesOrderBulkConfirmation_Out"'
        )
        expected = "Basic " + base64.b64encode(b"CONFIRM:pw-1").decode()
        assert received.headers["authorization"] == expected
        confirmation = _confirmation(received.body)
        header = confirmation.find("MessageHeader")
        assert header is not None
        assert header.findtext("ReferenceID") == "MSG-C1"
        assert header.findtext("SenderBusinessSystemID") == "S4HCLNT100"
        assert header.findtext("RecipientBusinessSystemID") == "D365"
        assert len(header.findtext("ID") or "") == 32
        [sales_order] = so.orders()
        assert confirmation.findtext("SalesOrder/SalesOrderID") == sales_order["SalesOrder"]
        assert confirmation.findtext("SalesOrder/PurchaseOrderByCustomer") == "PO-9"
        assert confirmation.findtext(f"SalesOrder/{{{YY1}}}YY1_CRMOrderID") == "crm-guid-1"
        assert confirmation.findtext("Log/BusinessDocumentProcessingResultCode") == "3"
        assert confirmation.findtext("Log/MaximumLogItemSeverityCode") == "1"
        assert confirmation.findtext("Log/Item/TypeID") == "311(V1)"
        so.wait()
        [delivery] = so.admin("GET", "sales-orders/confirmations").json()["confirmations"]
        assert delivery["status"] == "sent"
        assert delivery["sales_order"] == sales_order["SalesOrder"]
        full = so.admin("GET", f"sales-orders/confirmations/{delivery['id']}").json()
        assert full["body"].encode() == received.body


def test_failed_orders_are_confirmed_with_their_error_logs_each_on_its_own() -> None:
    with emulator_with_receiver() as (so, receiver, _):
        body = bulk(
            OrderSpec(purchase_order="OK", crm_order_id="crm-ok"),
            OrderSpec(
                purchase_order="NOT-OK",
                crm_order_id="crm-bad",
                sold_to="17100001",
                items=[ItemSpec(material="NOPE")],
            ),
            OrderSpec(
                purchase_order="ALSO-NOT-OK",
                crm_order_id="crm-worse",
                sold_to="99999999",
                items=[ItemSpec(quantity="-1")],
            ),
        )
        so.post(body)
        received = receiver.wait_for(3)
        so.wait()
        confirmations = {
            c.findtext(f"SalesOrder/{{{YY1}}}YY1_CRMOrderID"): c
            for c in (_confirmation(r.body) for r in received)
        }
        failed = confirmations["crm-bad"]
        assert failed.findtext("SalesOrder/SalesOrderID") is None
        assert failed.findtext("Log/BusinessDocumentProcessingResultCode") == "5"
        assert failed.findtext("Log/MaximumLogItemSeverityCode") == "3"
        items = {
            i.findtext("TypeID"): (i.findtext("ReferenceMessageElementName"), i.findtext("Note"))
            for i in failed.findall("Log/Item")
        }
        assert items["806(V1)"][0] == "SalesOrder[2]/Partner"
        assert "17100001" in (items["806(V1)"][1] or "")
        assert items["810(V1)"][0] == "SalesOrder[2]/Item[1]/Material"
        worse = confirmations["crm-worse"]
        assert [i.findtext("TypeID") for i in worse.findall("Log/Item")] == ["805(V1)", "813(V1)"]
        assert worse.findtext("Log/Item[2]/ReferenceMessageElementName") == (
            "SalesOrder[3]/Item[1]/RequestedQuantity"
        )
        assert confirmations["crm-ok"].findtext("Log/BusinessDocumentProcessingResultCode") == "3"
        assert [o["PurchaseOrderByCustomer"] for o in so.orders()] == ["OK"]
        seq = so.last_message()["seq"]
        detail = so.admin("GET", f"sales-orders/messages/{seq}").json()
        assert sorted(c["position"] for c in detail["confirmations"]) == [1, 2, 3]


def test_a_failing_receiver_is_retried_until_it_accepts() -> None:
    with emulator_with_receiver() as (so, receiver, _):
        receiver.answer(503, 500)
        so.post(bulk())
        received = receiver.wait_for(3)
        so.wait()
        assert received[0].body == received[2].body, "every attempt posts the same message"
        [delivery] = so.admin("GET", "sales-orders/confirmations").json()["confirmations"]
        assert delivery["status"] == "sent"
        assert [a["status_code"] for a in delivery["attempts"]] == [503, 500, 200]
        assert delivery["attempts"][0]["error"] == "HTTP 503 Service Unavailable"


def test_retries_end_and_a_refusal_is_not_retried() -> None:
    with emulator_with_receiver(retries=2) as (so, receiver, _):
        receiver.answer(502, 502, 502, 400)
        so.post(bulk(message_id="MSG-R1"))
        receiver.wait_for(3)
        so.wait()
        so.post(bulk(message_id="MSG-R2"))
        receiver.wait_for(4)
        so.wait()
        first, second = so.admin("GET", "sales-orders/confirmations").json()["confirmations"]
        assert first["status"] == "failed"
        assert [a["status_code"] for a in first["attempts"]] == [502, 502, 502]
        assert second["status"] == "failed"
        assert [a["status_code"] for a in second["attempts"]] == [400]
        assert len(receiver.snapshot()) == 4


def test_an_unreachable_receiver_is_retried_then_given_up() -> None:
    with receiving() as (_, dead):
        url = dead.url + "/gone"
    settings = S4EmulatorSettings(
        sales_orders=SalesOrderBulkSettings(
            confirmation=SalesOrderConfirmationSettings(url=url, retries=1, backoff_seconds=0.01)
        )
    )
    with serving(create_app(settings), name="s4-so-unreachable") as server:
        so = SalesOrderClient(server.url)
        try:
            so.post(bulk())
            so.wait()
            [delivery] = so.admin("GET", "sales-orders/confirmations").json()["confirmations"]
            assert delivery["status"] == "failed"
            assert len(delivery["attempts"]) == 2
            assert all(a["status_code"] is None for a in delivery["attempts"])
            assert delivery["attempts"][0]["error"]
            assert len(so.orders()) == 1, "the order stays created"
        finally:
            so.close()


def test_confirmations_in_soap_12() -> None:
    with emulator_with_receiver(soap_version="1.2") as (so, receiver, _):
        so.post(bulk())
        [received] = receiver.wait_for(1)
        assert received.headers["content-type"].startswith("application/soap+xml")
        assert (
            'action="http://sap.com/xi/SD-SLS/SalesOrderBulkConfirmation_Out"'
            in (received.headers["content-type"])
        )
        assert _confirmation(received.body, SOAP12).findtext("SalesOrder/SalesOrderID") == "1"


def test_no_confirmation_without_a_receiver(so: SalesOrderClient) -> None:
    so.post(bulk())
    so.wait()
    assert so.admin("GET", "sales-orders/confirmations").json()["confirmations"] == []
    assert so.last_message()["state"] == "processed"

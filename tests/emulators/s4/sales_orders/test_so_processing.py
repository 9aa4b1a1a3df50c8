"""Processing after the 202: order creation, business checks with error logs, duplicates."""

from __future__ import annotations

import time
from typing import Any

import pytest

from d365sap.emulators.s4.app import create_app
from d365sap.emulators.settings import S4EmulatorSettings, SalesOrderBulkSettings
from d365sap.web.serving import serving
from emulators.s4.sales_orders.so_support import (
    ItemSpec,
    OrderSpec,
    SalesOrderClient,
    bulk,
    wait_until,
)

CRM_ID = "8e0a2c4f-1d3b-4a6e-9f2c-5b7d9e1f3a01"


def _only_order(so: SalesOrderClient) -> dict[str, Any]:
    message = so.last_message()
    [order] = message["orders"]
    return dict(order)


def test_processing_is_asynchronous_and_waits_for_the_configured_delay() -> None:
    settings = S4EmulatorSettings(sales_orders=SalesOrderBulkSettings(processing_delay_seconds=0.6))
    with serving(create_app(settings), name="s4-so-delay") as server:
        client = SalesOrderClient(server.url)
        try:
            started = time.monotonic()
            assert client.post(bulk()).status_code == 202
            assert time.monotonic() - started < 0.5, "the answer does not wait for processing"
            assert client.last_message()["state"] == "received"
            assert client.orders() == []
            wait_until(lambda: client.last_message()["state"] == "processed")
            assert time.monotonic() - started >= 0.6
            assert len(client.orders()) == 1
        finally:
            client.close()


def test_a_created_order_has_header_items_partners_and_defaults(so: SalesOrderClient) -> None:
    order = OrderSpec(
        purchase_order="PO-4711",
        requested_delivery="2026-06-01",
        crm_order_no="ORD-01001-DEMO01",
        crm_order_id=CRM_ID,
        crm_quote_no="QUO-01001",
        project_flag="true",
        opportunity="Plant Dortmund",
        items=[
            ItemSpec(material="CP-100", quantity="2", price="1250", crm_item_id="item-1"),
            ItemSpec(material="SK-20", quantity="10", unit=None, price="89.90", project_flag="1"),
            ItemSpec(material="SRV-COMM", quantity="4", unit="HUR", price="280", price_unit="2"),
        ],
    )
    assert so.post(bulk(order)).status_code == 202
    so.wait()
    outcome = _only_order(so)
    assert outcome["status"] == "created"
    assert outcome["log"][0]["type_id"] == "311(V1)"
    assert outcome["log"][0]["note"] == f"Standard Order {outcome['sales_order']} has been saved"
    [header] = so.orders(
        **{"$expand": "to_Item/to_ScheduleLine,to_Partner,to_Item/to_PricingElement"}
    )
    assert header["SalesOrder"] == outcome["sales_order"]
    assert header["SoldToParty"] == "17100002"
    assert header["CreatedByUser"] == "S4_COMM_USER"
    assert header["SenderBusinessSystemName"] == "D365"
    assert header["TransactionCurrency"] == "USD", "from the customer's sales area"
    assert header["CustomerPaymentTerms"] == "0001"
    assert header["RequestedDeliveryDate"] == "/Date(1780272000000)/"
    assert header["YY1_CRMOrderNo_SDH"] == "ORD-01001-DEMO01"
    assert header["YY1_CRMOrderID_SDH"] == CRM_ID
    assert header["YY1_CRMQuoteNo_SDH"] == "QUO-01001"
    assert header["YY1_ProjectFlag_SDH"] is True
    assert header["YY1_ProjectOpportunity_SDH"] == "Plant Dortmund"
    assert header["TotalNetAmount"] == "3959.000"
    functions = {p["PartnerFunction"]: p["Customer"] for p in header["to_Partner"]["results"]}
    assert functions == {"AG": "17100002", "WE": "17100002", "RE": "17100002", "RG": "17100002"}
    first, second, third = header["to_Item"]["results"]
    numbers = [item["SalesOrderItem"] for item in (first, second, third)]
    assert numbers == ["10", "20", "30"]
    assert first["Material"] == "CP-100"
    assert first["SalesOrderItemText"] == "Centrifugal pump CP-100"
    assert first["RequestedQuantity"] == "2.000"
    assert first["RequestedQuantityUnit"] == "EA"
    assert first["NetAmount"] == "2500.000"
    assert first["YY1_CRMOrderItemID_SDI"] == "item-1"
    assert first["YY1_ProjectFlagItem_SDI"] is None
    assert second["YY1_ProjectFlagItem_SDI"] is True
    assert second["NetAmount"] == "899.000"
    assert second["RequestedQuantityUnit"] == "EA", "the product's sales unit"
    assert (third["RequestedQuantityUnit"], third["RequestedQuantityISOUnit"]) == ("H", "HUR")
    assert third["SalesOrderItemCategory"] == "TAD"
    assert third["NetAmount"] == "560.000", "280 per 2 hours, 4 hours"
    [line] = first["to_ScheduleLine"]["results"]
    assert line["ScheduleLineOrderQuantity"] == "2.000"
    [price] = first["to_PricingElement"]["results"]
    assert (price["ConditionType"], price["ConditionAmount"]) == ("PPR0", "2500.000")


def test_a_zero_padded_customer_number_is_the_same_customer(so: SalesOrderClient) -> None:
    so.post(bulk(OrderSpec(sold_to="0017100002")))
    so.wait()
    [order] = so.orders()
    assert order["SoldToParty"] == "17100002"


def test_orders_are_numbered_one_after_the_other(so: SalesOrderClient) -> None:
    body = bulk(OrderSpec(purchase_order="A"), OrderSpec(purchase_order="B"), message_id="M-1")
    assert so.post(body).status_code == 202
    assert so.post(bulk(OrderSpec(purchase_order="C"), message_id="M-2")).status_code == 202
    so.wait()
    numbers = {o["PurchaseOrderByCustomer"]: o["SalesOrder"] for o in so.orders()}
    assert numbers == {"A": "1", "B": "2", "C": "3"}


@pytest.mark.parametrize(
    ("order", "type_id", "element", "note"),
    [
        (OrderSpec(sold_to="99999999"), "805(V1)", "SalesOrder[1]/Partner[1]/Customer", "99999999"),
        (OrderSpec(sold_to="17100001"), "806(V1)", "SalesOrder[1]/Partner", "1710/10/00"),
        (OrderSpec(channel="20"), "806(V1)", "SalesOrder[1]/Partner", "17100002"),
        (OrderSpec(sold_to=None), "804(V1)", "SalesOrder[1]/Partner", "Sold-to party"),
        (OrderSpec(organization=None), "802(V1)", "SalesOrder[1]/SalesOrganization", "missing"),
        (OrderSpec(order_type="ZZ"), "803(V1)", "SalesOrder[1]/SalesOrderType", "ZZ"),
        (OrderSpec(action="02"), "801(V1)", "SalesOrder[1]/@actionCode", "02"),
        (OrderSpec(items=[]), "809(V1)", "SalesOrder[1]/Item", "no items"),
        (
            OrderSpec(items=[ItemSpec(material="NOPE-1")]),
            "810(V1)",
            "SalesOrder[1]/Item[1]/Material",
            "NOPE-1",
        ),
        (
            OrderSpec(items=[ItemSpec(material="CP-050")]),
            "811(V1)",
            "SalesOrder[1]/Item[1]/Material",
            "deletion",
        ),
        (
            OrderSpec(sold_to="17100003", channel="20", items=[ItemSpec(material="SRV-COMM")]),
            "812(V1)",
            "SalesOrder[1]/Item[1]/Material",
            "1710",
        ),
        (
            OrderSpec(items=[ItemSpec(quantity="0")]),
            "813(V1)",
            "SalesOrder[1]/Item[1]/RequestedQuantity",
            "not positive",
        ),
        (
            OrderSpec(items=[ItemSpec(quantity="-3")]),
            "813(V1)",
            "SalesOrder[1]/Item[1]/RequestedQuantity",
            "-3",
        ),
        (
            OrderSpec(items=[ItemSpec(quantity=None)]),
            "802(V1)",
            "SalesOrder[1]/Item[1]/RequestedQuantity",
            "missing",
        ),
        (
            OrderSpec(items=[ItemSpec(material="SRV-COMM", unit="EA")]),
            "814(V1)",
            "SalesOrder[1]/Item[1]/RequestedQuantity/@unitCode",
            "SRV-COMM",
        ),
        (
            OrderSpec(items=[ItemSpec(item_id="10"), ItemSpec(item_id="010")]),
            "815(V1)",
            "SalesOrder[1]/Item[2]/SalesOrderItemID",
            "twice",
        ),
        (
            OrderSpec(
                partners='<Partner actionCode="01"><PartnerFunction>WE</PartnerFunction>'
                "<Customer>404</Customer></Partner>"
            ),
            "805(V1)",
            "SalesOrder[1]/Partner[2]/Customer",
            "404",
        ),
        (
            OrderSpec(
                partners='<Partner actionCode="01"><PartnerFunction>XX</PartnerFunction></Partner>'
            ),
            "808(V1)",
            "SalesOrder[1]/Partner[2]/PartnerFunction",
            "XX",
        ),
    ],
)
def test_business_errors_end_in_an_error_log_and_no_order(
    so: SalesOrderClient, order: OrderSpec, type_id: str, element: str, note: str
) -> None:
    assert so.post(bulk(order)).status_code == 202, "business checks come after the 202"
    so.wait()
    message = so.last_message()
    assert message["state"] == "failed"
    outcome = _only_order(so)
    assert outcome["status"] == "failed"
    assert outcome["sales_order"] is None
    matching = [i for i in outcome["log"] if i["type_id"] == type_id and i["element"] == element]
    assert matching, outcome["log"]
    assert note in matching[0]["note"]
    assert all(i["severity"] == 3 for i in outcome["log"])
    assert so.orders() == []
    assert so.odata("A_SalesOrderItem").json()["d"]["results"] == []


def test_all_problems_of_an_order_are_reported_together(so: SalesOrderClient) -> None:
    order = OrderSpec(
        sold_to="99999999",
        items=[ItemSpec(material="NOPE"), ItemSpec(quantity="0"), ItemSpec(material="CP-050")],
    )
    so.post(bulk(order))
    so.wait()
    ids = [i["type_id"] for i in _only_order(so)["log"]]
    assert ids == ["805(V1)", "810(V1)", "813(V1)", "811(V1)"]


def test_one_bad_order_does_not_stop_the_others(so: SalesOrderClient) -> None:
    body = bulk(
        OrderSpec(purchase_order="GOOD-1"),
        OrderSpec(purchase_order="BAD", items=[ItemSpec(material="NOPE")]),
        OrderSpec(purchase_order="GOOD-2", sold_to="10100001", organization="1010"),
    )
    so.post(body)
    so.wait()
    message = so.last_message()
    assert message["state"] == "partly_failed"
    assert [o["status"] for o in message["orders"]] == ["created", "failed", "created"]
    orders = {o["PurchaseOrderByCustomer"]: o for o in so.orders()}
    assert set(orders) == {"GOOD-1", "GOOD-2"}
    assert orders["GOOD-2"]["TransactionCurrency"] == "EUR"


def test_a_repeated_message_id_is_acknowledged_but_processed_once(so: SalesOrderClient) -> None:
    body = bulk(OrderSpec(purchase_order="ONCE"), message_id="MSG-DUP")
    assert so.post(body).status_code == 202
    assert so.post(body).status_code == 202
    assert so.post(body, "1.1").status_code == 202
    so.wait()
    first, *repeats = so.messages()
    assert first["state"] == "processed"
    assert [(m["state"], m["duplicate_of"]) for m in repeats] == [
        ("duplicate", first["seq"]),
        ("duplicate", first["seq"]),
    ]
    assert [o["PurchaseOrderByCustomer"] for o in so.orders()] == ["ONCE"]
    assert so.post(bulk(OrderSpec(purchase_order="NEW"), message_id="MSG-NEW")).status_code == 202
    so.wait()
    assert len(so.orders()) == 2


def test_a_message_without_id_cannot_be_recognised(so: SalesOrderClient) -> None:
    body = bulk(OrderSpec(purchase_order="NO-ID"), message_id=None)
    so.post(body)
    so.post(body)
    so.wait()
    assert [m["state"] for m in so.messages()] == ["processed", "processed"]
    assert len(so.orders()) == 2


def test_a_message_refused_by_the_schema_does_not_block_its_id(so: SalesOrderClient) -> None:
    assert so.post(bulk(OrderSpec(organization="17100"), message_id="MSG-FIX")).status_code == 500
    assert so.post(bulk(OrderSpec(), message_id="MSG-FIX")).status_code == 202
    so.wait()
    assert len(so.orders()) == 1


def test_message_detail_has_the_body_and_reset_forgets_ids(so: SalesOrderClient) -> None:
    so.post(bulk(message_id="MSG-R"))
    so.wait()
    seq = so.last_message()["seq"]
    detail = so.admin("GET", f"sales-orders/messages/{seq}").json()
    assert "<SalesOrderType>OR</SalesOrderType>" in detail["body"]
    assert detail["confirmations"] == []
    assert so.admin("GET", "sales-orders/messages/999").status_code == 404
    so.reset()
    assert so.messages() == []
    assert so.orders() == []
    so.post(bulk(message_id="MSG-R"))
    so.wait()
    assert so.last_message()["state"] == "processed"

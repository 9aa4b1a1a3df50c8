"""Sales orders end to end: submitted in Dynamics → created in S/4 → the number back in Dynamics.

The service runs with the three emulators on loopback (Dataverse over TLS with msal and its
webhooks, S/4's SOAP service processing the bulk messages and posting its confirmations back to
the service); the customer's S/4 keys are in the service's key registry as the customer flows
leave them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from d365sap.config_sales_orders import ConfirmationSettings
from support.e2e import MakeStack
from support.sales_orders import (
    ACC_1001,
    ACC_1002,
    CONFIRMATION_USER,
    CREATED,
    ECC,
    FAILED,
    OrderDesk,
)

pytestmark = pytest.mark.e2e
ORDERS, CONFIRMATIONS = "sales_order", "sales_order_confirmation"


def _desk(make_stack: MakeStack, **sales_orders: Any) -> OrderDesk:
    stack = make_stack(
        dataverse=True,
        inbound={"users": [CONFIRMATION_USER]},
        sales_orders={"bulk_window_ms": 20.0, "customer_retry_seconds": 0.2, **sales_orders},
    )
    desk = OrderDesk(stack)
    desk.register_webhook()
    desk.register_customer(ACC_1002, "17100002")
    return desk


@pytest.fixture
def desk(make_stack: MakeStack) -> Iterator[OrderDesk]:
    opened = _desk(make_stack, confirmation=ConfirmationSettings(channel="push"))
    opened.push_confirmations()
    yield opened
    opened.close()


def _done(messages: list[dict[str, Any]], count: int) -> bool:
    open_states = ("queued", "processing", "retrying")
    return len(messages) >= count and all(m["status"] not in open_states for m in messages)


def test_submitted_order_reaches_s4_and_its_number_comes_back(desk: OrderDesk) -> None:
    order_id, number = desk.create_order([("CP-100", 2), ("SK-20", 4)])
    desk.submit(order_id)
    row = desk.wait_row(order_id, lambda r: r.get("sap_orderstatus") == CREATED)

    [s4] = desk.s4_orders(order_id)
    assert row["sap_salesordernumber"] == s4["SalesOrder"]
    assert row["sap_ordermessage"].startswith("311(V1)")  # S/4's "has been saved"
    assert s4["PurchaseOrderByCustomer"] == number
    assert (s4["SoldToParty"], s4["SalesOrganization"], s4["DistributionChannel"]) == (
        "17100002",
        "1710",
        "10",
    )
    assert (s4["SalesOrderType"], s4["TransactionCurrency"]) == ("OR", "USD")
    assert s4["RequestedDeliveryDate"].startswith("/Date(")
    assert (s4["YY1_CRMOrderID_SDH"], s4["YY1_CRMOrderNo_SDH"]) == (order_id, number)
    assert (s4["YY1_CRMQuoteNo_SDH"], s4["YY1_ProjectOpportunity_SDH"]) == ("QUO-77", "OPP-4711")
    assert s4["YY1_ProjectFlag_SDH"] is True
    items = sorted(s4["to_Item"]["results"], key=lambda item: item["SalesOrderItem"])
    assert [(i["SalesOrderItem"], i["Material"], i["RequestedQuantity"]) for i in items] == [
        ("10", "CP-100", "2.000"),
        ("20", "SK-20", "4.000"),
    ]
    lines = {line["salesorderdetailname"]: line for line in desk.lines(order_id)}
    assert items[0]["YY1_CRMOrderItemID_SDI"] == lines["CP-100"]["salesorderdetailid"]
    assert (items[0]["YY1_ProjectFlagItem_SDI"], items[1]["YY1_ProjectFlagItem_SDI"]) == (
        True,
        False,
    )
    assert items[0]["YY1_ProjectOpportItem_SDI"] == "OPP-4711"

    [sent] = desk.wait_messages(ORDERS, lambda found: _done(found, 1))
    assert (sent["status"], sent["outcome"]) == ("done", "sent")
    [confirmed] = desk.wait_messages(CONFIRMATIONS, lambda found: _done(found, 1))
    assert (confirmed["status"], confirmed["outcome"]) == ("done", "confirmed")
    assert row["sap_lastmessageid"] == sent["id"]


def test_re_saving_a_submitted_order_sends_nothing(desk: OrderDesk) -> None:
    order_id, _ = desk.create_order([("CP-100", 1)])
    desk.update_order(order_id, {"description": "edited while active"})  # not a submission
    desk.submit(order_id)
    desk.wait_row(order_id, lambda r: r.get("sap_orderstatus") == CREATED)
    desk.s4_wait()
    before = len(desk.s4_messages())

    desk.update_order(order_id, {"description": "a note after submitting"})
    desk.update_order(order_id, {"statecode": 1, "statuscode": 3})  # set again, unchanged
    time.sleep(1.0)  # the webhooks are delivered asynchronously

    assert len(desk.s4_messages()) == before
    assert len(desk.s4_orders(order_id)) == 1
    assert len(desk.messages(ORDERS)) == 1


def test_a_bad_product_fails_with_s4s_text_and_is_marked_in_dynamics(desk: OrderDesk) -> None:
    desk.create_product("CP-050", "Centrifugal pump CP-050 (discontinued)")  # deleted in S/4
    order_id, _ = desk.create_order([("CP-100", 1), ("CP-050", 1)])
    desk.submit(order_id)
    row = desk.wait_row(order_id, lambda r: r.get("sap_orderstatus") == FAILED)

    assert "811(V1)" in row["sap_ordermessage"]
    assert "CP-050" in row["sap_ordermessage"]
    assert row.get("sap_salesordernumber") is None
    assert desk.s4_orders(order_id) == []
    [rejected] = desk.wait_messages(CONFIRMATIONS, lambda found: _done(found, 1))
    assert (rejected["status"], rejected["outcome"]) == ("failed", "rejected")
    assert "811(V1)" in rejected["error"] and "CP-050" in rejected["error"]


def test_a_customer_s4_does_not_know_fails_with_s4s_text(desk: OrderDesk) -> None:
    desk.register_customer(ACC_1001, "17199999")  # the registry's number, unknown to S/4
    order_id, _ = desk.create_order([("CP-100", 1)], account=ACC_1001)
    desk.submit(order_id)
    row = desk.wait_row(order_id, lambda r: r.get("sap_orderstatus") == FAILED)

    assert "805(V1)" in row["sap_ordermessage"] and "17199999" in row["sap_ordermessage"]
    [rejected] = desk.wait_messages(CONFIRMATIONS, lambda found: _done(found, 1))
    assert rejected["status"] == "failed" and "805(V1)" in rejected["error"]


def test_orders_not_for_s4_are_discarded_with_the_reason(desk: OrderDesk) -> None:
    order_id, _ = desk.create_order([("CP-100", 1)], system=ECC)
    desk.submit(order_id)
    [discarded] = desk.wait_messages(ORDERS, lambda found: _done(found, 1))
    assert (discarded["status"], discarded["outcome"]) == ("discarded", "discarded")
    detail = desk.stack.message(discarded["id"])
    assert "erpsystemtype 'ECC'" in detail["result"]["reason"]
    assert desk.s4_messages() == []
    assert desk.order_row(order_id).get("sap_orderstatus") is None


def test_an_unsynchronised_customer_waits_then_fails_clearly(make_stack: MakeStack) -> None:
    desk = _desk(make_stack, customer_wait_seconds=1.5)
    try:
        order_id, number = desk.create_order([("CP-100", 1)], account=ACC_1001)
        desk.submit(order_id)
        row = desk.wait_row(order_id, lambda r: r.get("sap_orderstatus") == FAILED, timeout=30)

        [failed] = desk.wait_messages(ORDERS, lambda found: _done(found, 1))
        assert failed["status"] == "failed" and failed["attempts"] >= 2  # it waited and retried
        assert "not synchronised with S/4HANA Cloud" in failed["error"]
        assert ACC_1001 in row["sap_ordermessage"] and number in row["sap_ordermessage"]
        assert desk.s4_messages() == []
    finally:
        desk.close()


def test_confirmations_found_by_polling_when_none_are_pushed(make_stack: MakeStack) -> None:
    desk = _desk(
        make_stack, confirmation=ConfirmationSettings(channel="poll", poll_interval_seconds=0.2)
    )
    try:
        order_id, _ = desk.create_order([("SK-20", 3)])
        desk.submit(order_id)
        row = desk.wait_row(order_id, lambda r: r.get("sap_orderstatus") == CREATED)
        [s4] = desk.s4_orders(order_id)
        assert row["sap_salesordernumber"] == s4["SalesOrder"]
        assert row["sap_ordermessage"] == "found in API_SALES_ORDER_SRV"
        [found] = desk.wait_messages(CONFIRMATIONS, lambda m: _done(m, 1))
        assert found["outcome"] == "confirmed"
        [stored] = desk.store.list(flow=CONFIRMATIONS)
        assert stored.source_id is not None and stored.source_id.startswith("found:")
    finally:
        desk.close()

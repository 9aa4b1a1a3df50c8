"""The package's push address ``POST /http/SalesOrder_CRM_S4HC`` end to end, over loopback.

A CRM that calls the package's address instead of being read through Dataverse: the order
comes as JSON or XML, the caller waits for S/4's acknowledgement, and the confirmation still
closes the loop in Dynamics when the order is there.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from d365sap.config_sales_orders import ConfirmationSettings
from support.e2e import MakeStack
from support.sales_orders import ACC_1002, CONFIRMATION_USER, CREATED, OrderDesk

pytestmark = pytest.mark.e2e


@pytest.fixture
def desk(make_stack: MakeStack) -> Iterator[OrderDesk]:
    stack = make_stack(
        dataverse=True,
        inbound={"users": [CONFIRMATION_USER]},
        sales_orders={"confirmation": ConfirmationSettings(channel="push")},
    )
    opened = OrderDesk(stack)
    opened.push_confirmations()
    opened.register_customer(ACC_1002, "17100002")
    yield opened
    opened.close()


def _order(order_id: str, number: str, **changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "erpsystemtype": "S4HC",
        "salesorderid": order_id,
        "ordernumber": number,
        "soldtoparty": "17100004",
        "salesorganization": "1710",
        "distributionchannel": "10",
        "division": "00",
        "transactioncurrency": "USD",
        "quotenumber": "Q-9",
        "lines": [
            {
                "salesorderdetailid": str(uuid.uuid4()),
                "lineitemnumber": 100,
                "productnumber": "CP-100",
                "quantity": 5,
                "uom": "Each",
            }
        ],
    }
    document.update(changes)
    return document


def test_a_json_push_is_answered_with_s4s_acknowledgement(desk: OrderDesk) -> None:
    order_id = str(uuid.uuid4())
    answer = desk.push(json.dumps(_order(order_id, "PUSH-1")).encode(), "application/json")

    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert (body["outcome"], body["flow"], body["route"]) == ("sent", "sales_order", "s4hc")
    assert body["keys"] == {
        "SalesOrderID": order_id,
        "OrderNumber": "PUSH-1",
        "SoldToParty": "17100004",
    }
    assert body["bulk"]["orders"] == 1 and len(body["bulk"]["message_header_id"]) == 32
    assert body["write_back"] == "order not in Dataverse"  # a CRM without Dataverse
    desk.s4_wait()
    [s4] = desk.s4_orders(order_id)
    assert (s4["SoldToParty"], s4["SalesOrganization"]) == ("17100004", "1710")
    assert s4["to_Item"]["results"][0]["SalesOrderItem"] == "100"

    again = desk.push(
        json.dumps(_order(order_id, "PUSH-1")).encode(),
        "application/json",
        SapMessageId="ANOTHER-ID",
    )
    assert again.status_code == 200, again.text
    assert again.json()["outcome"] == "already_sent"
    desk.s4_wait()
    assert len(desk.s4_orders(order_id)) == 1


def test_an_xml_push_of_a_dynamics_order_is_numbered_in_dynamics(desk: OrderDesk) -> None:
    order_id, number = desk.create_order([("SK-20", 2)])
    line = desk.lines(order_id)[0]["salesorderdetailid"]
    body = f"""<salesOrderSource>
      <erpsystemtype>S4HC</erpsystemtype><salesorderid>{order_id}</salesorderid>
      <ordernumber>{number}</ordernumber><customerid>{ACC_1002}</customerid>
      <projectflag>false</projectflag>
      <lines><line><salesorderdetailid>{line}</salesorderdetailid>
        <productnumber>SK-20</productnumber><quantity>2</quantity><uom>Each</uom></line></lines>
    </salesOrderSource>""".encode()

    answer = desk.push(body, "application/xml")
    assert answer.status_code == 202, answer.text
    assert (answer.json()["outcome"], answer.json()["write_back"]) == ("sent", "written")
    row = desk.wait_row(order_id, lambda r: r.get("sap_orderstatus") == CREATED)
    [s4] = desk.s4_orders(order_id)
    assert row["sap_salesordernumber"] == s4["SalesOrder"]
    assert s4["YY1_ProjectFlag_SDH"] is False


def test_a_push_for_another_system_is_discarded_with_the_reason(desk: OrderDesk) -> None:
    body = json.dumps(_order(str(uuid.uuid4()), "PUSH-2", erpsystemtype="SAP")).encode()
    answer = desk.push(body, "application/json")
    assert answer.status_code == 202
    assert answer.json()["outcome"] == "discarded"
    assert "erpsystemtype 'SAP'" in answer.json()["reason"]
    assert desk.s4_messages() == []

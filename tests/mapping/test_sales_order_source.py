"""The legacy push contract: a Dynamics order as JSON or XML, strictly read, fields named."""

from __future__ import annotations

import json
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from d365sap.errors import ValidationError
from d365sap.mapping.sales_order_source import parse_order, parse_order_json, parse_order_xml

ORDER = "8e0a2c4f-1d3b-4a6e-9f2c-5b7d9e1f3a01"
LINE_1 = "8e0a2c4f-1d3b-4a6e-9f2c-5b7d9e1f3b01"
LINE_2 = "8e0a2c4f-1d3b-4a6e-9f2c-5b7d9e1f3b02"
ACCOUNT = "e2f3a4b5-c6d7-4e8f-9a0b-1c2d3e4f5a6c"


def document(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "erpsystemtype": "S4HC",
        "salesorderid": ORDER,
        "ordernumber": " ORD-01001 ",
        "name": "Pumps",
        "customerid": ACCOUNT,
        "transactioncurrency": "USD",
        "requestdeliveryby": "2026-05-01T00:00:00Z",
        "quotenumber": "QUO-1",
        "opportunity": "OPP-7",
        "projectflag": "1",
        "lines": [
            {
                "salesorderdetailid": LINE_1,
                "lineitemnumber": 10,
                "productnumber": "CP-100",
                "quantity": 2.5,
                "uom": "Each",
                "priceperunit": "1250.00",
                "projectflag": True,
                "opportunity": "OPP-7",
            },
            {"salesorderdetailid": LINE_2, "productnumber": "SK-20", "quantity": "4"},
        ],
    }
    base.update(changes)
    return base


def as_json(values: dict[str, Any]) -> bytes:
    return json.dumps(values).encode()


XML = f"""<?xml version="1.0" encoding="UTF-8"?>
<salesOrderSource>
  <erpsystemtype>S4HC</erpsystemtype>
  <salesorderid>{ORDER}</salesorderid>
  <ordernumber>ORD-01001</ordernumber>
  <soldtoparty>17100002</soldtoparty>
  <salesorganization>1710</salesorganization>
  <distributionchannel>10</distributionchannel>
  <division>00</division>
  <projectflag>false</projectflag>
  <lines>
    <line><salesorderdetailid>{LINE_1}</salesorderdetailid><lineitemnumber>20</lineitemnumber>
      <productnumber>CP-100</productnumber><quantity>1.000</quantity><uom>Each</uom></line>
    <line><salesorderdetailid>{LINE_2}</salesorderdetailid>
      <productnumber>SK-20</productnumber><quantity>3</quantity></line>
  </lines>
</salesOrderSource>""".encode()


def test_a_json_order_is_read_with_its_lines() -> None:
    order = parse_order_json(as_json(document()))
    assert order.order_id == uuid.UUID(ORDER)
    assert (order.order_number, order.name, order.erp_system_type) == ("ORD-01001", "Pumps", "S4HC")
    assert order.customer_id == uuid.UUID(ACCOUNT) and order.sold_to is None
    assert (order.currency, order.requested_delivery) == ("USD", date(2026, 5, 1))
    assert (order.quote_number, order.opportunity, order.project_flag) == ("QUO-1", "OPP-7", True)
    first, second = order.lines
    assert (first.line_id, first.line_number, first.product_number) == (
        uuid.UUID(LINE_1),
        10,
        "CP-100",
    )
    assert (first.quantity, first.unit, first.price_per_unit) == (
        Decimal("2.5"),
        "Each",
        Decimal("1250.00"),
    )
    assert (first.project_flag, first.opportunity) == (True, "OPP-7")
    assert (second.line_number, second.quantity, second.unit) == (None, Decimal(4), None)


def test_an_xml_order_names_its_sold_to_party() -> None:
    order = parse_order(XML, "text/xml; charset=utf-8")
    assert order.sold_to == "17100002" and order.customer_id is None
    assert (order.sales_organization, order.distribution_channel, order.division) == (
        "1710",
        "10",
        "00",
    )
    assert order.project_flag is False
    assert [(line.line_number, line.quantity) for line in order.lines] == [
        (20, Decimal("1.000")),
        (None, Decimal(3)),
    ]
    assert parse_order(as_json(document()), "application/json").order_number == "ORD-01001"


@pytest.mark.parametrize(
    ("values", "field", "message"),
    [
        (document(salesorderid="42"), "salesorderid", "not a GUID"),
        (document(ordernumber=""), "ordernumber", "is required"),
        (document(erpsystemtype=None), "erpsystemtype", "is required"),
        (document(customerid=None), "customerid", "is required"),
        (document(customerid=None, soldtoparty="17100002"), "salesorganization", "soldtoparty"),
        (document(soldtoparty="12345678901"), "soldtoparty", "at most 10"),
        (document(lines=[]), "lines", "at least one line"),
        (document(lines={"a": 1}), "lines", "expected a list"),
        (document(lines=[1]), "lines[0]", "expected an object"),
        (
            document(lines=[{"salesorderdetailid": LINE_1, "quantity": 1}]),
            "lines[0].productnumber",
            "",
        ),
        (
            document(lines=[{"salesorderdetailid": LINE_1, "productnumber": "X", "quantity": "a"}]),
            "lines[0].quantity",
            "not a number",
        ),
        (
            document(
                lines=[{"salesorderdetailid": LINE_1, "productnumber": "X", "quantity": True}]
            ),
            "lines[0].quantity",
            "expected a number",
        ),
        (
            document(
                lines=[
                    {"salesorderdetailid": LINE_1, "productnumber": "X", "quantity": 1, "tax": 0}
                ]
            ),
            "lines[0].tax",
            "not a member",
        ),
        (document(requestdeliveryby="soon"), "requestdeliveryby", "not a date"),
        (document(projectflag="maybe"), "projectflag", "true/false"),
        (document(name={"x": 1}), "name", "expected a value"),
        (document(extra=1), "extra", "not a member"),
    ],
)
def test_json_problems_name_the_member(values: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_order_json(as_json(values))
    assert caught.value.field == field
    assert message in caught.value.reason


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"[]", "body"),
        (b"not json", "body"),
        (
            XML.replace(b"<salesOrderSource>", b"<order>").replace(
                b"</salesOrderSource>", b"</order>"
            ),
            "body",
        ),
        (
            XML.replace(b"<division>00</division>", b"<division>00</division><colour>red</colour>"),
            "salesOrderSource/colour",
        ),
        (
            XML.replace(
                b"<division>00</division>", b"<division>00</division><division>01</division>"
            ),
            "salesOrderSource/division",
        ),
        (
            XML.replace(b"<quantity>3</quantity>", b"<quantity>three</quantity>"),
            "salesOrderSource/lines/line[2]/quantity",
        ),
        (XML.replace(b"</lines>", b"<item/></lines>"), "salesOrderSource/lines/item"),
        (
            XML.replace(b"<uom>Each</uom>", b"<uom><name>Each</name></uom>"),
            "salesOrderSource/lines/line[1]/uom",
        ),
        (b'<!DOCTYPE x [<!ENTITY e "x">]><salesOrderSource/>', "body"),
    ],
)
def test_xml_and_body_problems_name_the_element(body: bytes, field: str) -> None:
    parse = parse_order_json if body.lstrip().startswith((b"[", b"n")) else parse_order_xml
    with pytest.raises(ValidationError) as caught:
        parse(body)
    assert caught.value.field == field

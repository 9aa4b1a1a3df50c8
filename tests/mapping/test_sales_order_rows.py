"""Dataverse rows of an order (as the Web API serves them) into the Dynamics order model."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from d365sap.config_sales_orders import OrderColumns
from d365sap.errors import ValidationError
from d365sap.mapping.sales_order_rows import order_from_rows, order_query, system_type

ORDER = "8e0a2c4f-1d3b-4a6e-9f2c-5b7d9e1f3a01"
LINE = "8e0a2c4f-1d3b-4a6e-9f2c-5b7d9e1f3b01"
ACCOUNT = "e2f3a4b5-c6d7-4e8f-9a0b-1c2d3e4f5a6c"


def row(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "@odata.etag": 'W/"1000"',
        "salesorderid": ORDER,
        "ordernumber": "ORD-01001-DEMO01",
        "name": "Pumps for plant Dortmund",
        "statecode": 1,
        "_customerid_value": ACCOUNT,
        "_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "account",
        "requestdeliveryby": "2026-04-30",
        "sap_erpsystemtype": 100_000_000,
        "sap_quotenumber": "QUO-1",
        "sap_opportunity": "OPP-1",
        "sap_projectflag": True,
        "transactioncurrencyid": {"isocurrencycode": "EUR"},
        "order_details": [
            {
                "salesorderdetailid": LINE,
                "lineitemnumber": 10,
                "sequencenumber": None,
                "quantity": 2.0,
                "priceperunit": 1250.0,
                "productdescription": None,
                "isproductoverridden": False,
                "sap_projectflag": False,
                "sap_opportunity": None,
                "productid": {"productnumber": "CP-100"},
                "uomid": {"name": "Each"},
            }
        ],
    }
    values.update(changes)
    return values


def test_the_query_reads_order_lines_products_units_and_currency_in_one_request() -> None:
    query = order_query(OrderColumns())
    assert query.select[:6] == (
        "salesorderid",
        "ordernumber",
        "name",
        "statecode",
        "_customerid_value",
        "requestdeliveryby",
    )
    assert {"sap_erpsystemtype", "sap_quotenumber", "sap_opportunity", "sap_projectflag"} <= set(
        query.select
    )
    lines, currency = query.expand
    assert lines.startswith("order_details($select=salesorderdetailid,")
    assert "$expand=productid($select=productnumber),uomid($select=name))" in lines
    assert currency == "transactioncurrencyid($select=isocurrencycode)"
    # empty column names leave the custom fields out of the query
    bare = order_query(OrderColumns(quote_number="", opportunity="", line_opportunity=""))
    assert "sap_quotenumber" not in bare.select
    assert "sap_opportunity" not in bare.expand[0]


def test_rows_become_the_order() -> None:
    order = order_from_rows(row(), OrderColumns())
    assert order.order_id == uuid.UUID(ORDER)
    assert (order.order_number, order.state, order.erp_system_type) == (
        "ORD-01001-DEMO01",
        1,
        "S4HC",
    )
    assert (order.customer_id, order.currency) == (uuid.UUID(ACCOUNT), "EUR")
    assert order.requested_delivery == date(2026, 4, 30)
    assert (order.quote_number, order.opportunity, order.project_flag) == ("QUO-1", "OPP-1", True)
    [line] = order.lines
    assert (line.line_id, line.line_number, line.product_number, line.unit) == (
        uuid.UUID(LINE),
        10,
        "CP-100",
        "Each",
    )
    assert (line.quantity, line.price_per_unit, line.project_flag) == (
        Decimal("2.0"),
        Decimal("1250.0"),
        False,
    )


def test_configured_columns_feed_the_custom_fields() -> None:
    columns = OrderColumns(
        quote_number="new_quote", opportunity="", project_flag="", erp_system_type=""
    )
    order = order_from_rows(row(new_quote="Q-9", sap_erpsystemtype=100_000_001), columns)
    assert (order.quote_number, order.opportunity, order.project_flag) == ("Q-9", None, None)
    assert order.erp_system_type is None  # no column: the routing needs another source


def test_system_types() -> None:
    assert system_type(100_000_000, "f") == "S4HC"
    assert system_type(100_000_001, "f") == "ECC"
    assert system_type(7, "f") == "choice 7"
    assert system_type(" S4HC ", "f") == "S4HC"
    assert system_type(None, "f") is None
    with pytest.raises(ValidationError):
        system_type(True, "f")


def test_a_write_in_product_has_no_product_number() -> None:
    write_in = dict(row()["order_details"][0], productid=None, isproductoverridden=True)
    write_in["productdescription"] = "Special seal"
    order = order_from_rows(row(order_details=[write_in]), OrderColumns())
    assert order.lines[0].product_number is None
    assert order.lines[0].description == "Special seal"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"salesorderid": "nope"}, "salesorder.salesorderid"),
        ({"ordernumber": None}, "salesorder.ordernumber"),
        ({"requestdeliveryby": "someday"}, "salesorder.requestdeliveryby"),
        ({"statecode": "1"}, "salesorder.statecode"),
        ({"sap_projectflag": "yes"}, "salesorder.sap_projectflag"),
        ({"sap_erpsystemtype": [1]}, "salesorder.sap_erpsystemtype"),
        ({"transactioncurrencyid": "EUR"}, "salesorder.transactioncurrencyid"),
        (
            {"_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "contact"},
            "salesorder.customerid",
        ),
        ({"order_details": "none"}, "salesorder.order_details"),
        ({"order_details": [{"salesorderdetailid": LINE}]}, "order_details[0].quantity"),
        (
            {"order_details": [{"salesorderdetailid": "x", "quantity": 1}]},
            "order_details[0].salesorderdetailid",
        ),
        (
            {"order_details": [{"salesorderdetailid": LINE, "quantity": "many"}]},
            "order_details[0].quantity",
        ),
    ],
)
def test_unreadable_rows_name_the_column(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        order_from_rows(row(**changes), OrderColumns())
    assert caught.value.field == field

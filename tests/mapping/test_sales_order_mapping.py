"""The Dynamics order into S/4's order: constants, keys, items, value maps and the YY1 fields."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from d365sap.config_sales_orders import SalesOrderSettings
from d365sap.errors import ValidationError
from d365sap.mapping.sales_order import sales_order
from support.sales_order_data import AREA, SOLD_TO, line, order


def settings(**changes: Any) -> SalesOrderSettings:
    return SalesOrderSettings(**changes)


def test_header_keys_constants_and_custom_fields() -> None:
    dynamics = order(line(), line("SK-20", "4"))
    mapped = sales_order(
        dynamics,
        SOLD_TO,
        settings(
            order_type="ZOR",
            sales_group="170",
            sales_office="1710",
            customer_purchase_order_type="CRM",
            payment_terms="0001",
            shipping_condition="01",
            sold_to_function="SP",
        ),
    )
    assert mapped.order_id == str(dynamics.order_id)
    assert (mapped.order_type, mapped.sales_area, mapped.sold_to) == ("ZOR", AREA, "17100002")
    assert mapped.sold_to_function == "SP"
    assert mapped.purchase_order_by_customer == dynamics.order_number
    assert (mapped.sales_group, mapped.sales_office) == ("170", "1710")
    assert (mapped.customer_purchase_order_type, mapped.payment_terms) == ("CRM", "0001")
    assert mapped.shipping_condition == "01"
    assert (mapped.currency, mapped.requested_delivery) == ("USD", date(2026, 6, 30))
    custom = mapped.custom
    assert (custom.crm_order_id, custom.crm_order_number) == (
        str(dynamics.order_id),
        dynamics.order_number,
    )
    assert (custom.crm_quote_number, custom.project_opportunity, custom.project_flag) == (
        "QUO-1",
        "OPP-1",
        True,
    )


def test_items_units_products_and_numbers() -> None:
    first = line("CP-100", "2.00000", line_number=20, project_flag=True, opportunity="OPP-9")
    second = line("SK-20", "1.5", line_number=10, unit="each")
    mapped = sales_order(order(first, second), SOLD_TO, settings(products={"SK-20": "SK-20-S4"}))
    items = mapped.items
    assert [(i.item_number, i.product, i.quantity, i.unit_code) for i in items] == [
        ("10", "SK-20-S4", Decimal("1.5"), "EA"),  # in line-number order, unit map ignores case
        ("20", "CP-100", Decimal(2), "EA"),
    ]
    assert str(items[1].quantity) == "2"
    assert items[1].custom.crm_order_item_id == str(first.line_id)
    assert (items[1].custom.project_flag, items[1].custom.project_opportunity) == (True, "OPP-9")
    assert items[0].custom.project_flag is None


def test_lines_without_distinct_numbers_are_numbered_by_the_step() -> None:
    lines = (line(line_number=10), line(line_number=10), line())
    mapped = sales_order(order(*lines), SOLD_TO, settings(item_number_step=5))
    assert [item.item_number for item in mapped.items] == ["5", "10", "15"]


def test_prices_are_sent_only_with_a_condition_type() -> None:
    priced = line(price_per_unit=Decimal("1250.50"))
    assert sales_order(order(priced), SOLD_TO, settings()).items[0].price is None
    mapped = sales_order(order(priced), SOLD_TO, settings(price_condition_type="PPR0"))
    assert (mapped.items[0].price, mapped.items[0].price_condition_type) == (
        Decimal("1250.5"),
        "PPR0",
    )


def test_a_line_without_unit_takes_the_default() -> None:
    bare = line(unit=None)
    assert sales_order(order(bare), SOLD_TO, settings()).items[0].unit_code is None
    assert sales_order(order(bare), SOLD_TO, settings(default_unit="PCE")).items[0].unit_code == (
        "PCE"
    )


@pytest.mark.parametrize(
    ("dynamics", "options", "field", "message"),
    [
        (order(line(unit="Box")), {}, "lines[0].uom", "'Box' has no ISO code"),
        (order(line(None)), {}, "lines[0].productnumber", "write-in"),
        (order(line("XX-1")), {"products_strict": True}, "lines[0].productnumber", "no entry"),
        (order(line("P" * 41)), {}, "lines[0].productnumber", "longer than"),
        (order(line(quantity="1.2345")), {}, "lines[0].quantity", "decimal places"),
        (order(line(quantity="1234567890123")), {}, "lines[0].quantity", "integer digits"),
        (order(order_number="N" * 36), {}, "ordernumber", "PurchaseOrderByCustomer"),
        (order(order_number="N" * 21), {}, "ordernumber", "YY1_CRMOrderNo"),
        (order(quote_number="Q" * 21), {}, "quotenumber", "YY1_CRMQuoteNo"),
        (order(opportunity="O" * 41), {}, "opportunity", "YY1_ProjectOpportunity"),
        (order(line(opportunity="O" * 41)), {}, "lines[0].opportunity", "YY1_ProjectOpportItem"),
        (order(currency="US$"), {}, "transactioncurrency", "ISO currency"),
        (order(lines=()), {}, "lines", "no lines"),
    ],
)
def test_values_s4_cannot_hold_are_refused_naming_the_member(
    dynamics: Any, options: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        sales_order(dynamics, SOLD_TO, settings(**options))
    assert caught.value.field == field
    assert message in caught.value.reason

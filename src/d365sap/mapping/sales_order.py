"""A Dynamics order into the canonical S/4 :class:`SalesOrder` (SEED-SPEC §6.4, §6.5 item 3).

The package's mapping ``MM_SalesOrder_CRM_to_S4HC`` is not in the package; this is d365sap's,
documented as a table in docs/sales-order-flow.md:

- order type and the other header constants from ``[sales_orders]``;
- sales area and sold-to party from the customer's S/4 keys (:class:`SoldTo`);
- ``PurchaseOrderByCustomer`` = the order number; currency, requested delivery date;
- items in line-number order: the line item numbers when every line has a distinct one, else
  10, 20, … (``item_number_step``); product through the products value map (or as it is),
  quantity, ISO unit through the units value map; the price as a condition when configured;
- the YY1 fields: order id, order number, quote number, opportunity and project flag on the
  header, line id, project flag and opportunity on each item.

Values that cannot fit S/4's fields are refused here, naming the Dynamics member, rather than
sent to fail in S/4 or be cut silently. Business checks (does the product exist, is the quantity
positive) are S/4's: its error text comes back with the confirmation.
"""

from __future__ import annotations

from decimal import Decimal

from d365sap.config_sales_orders import SalesOrderSettings
from d365sap.errors import ValidationError
from d365sap.model.sales_order import (
    DynamicsOrder,
    DynamicsOrderLine,
    ItemCustomFields,
    OrderCustomFields,
    SalesOrder,
    SalesOrderItem,
    SoldTo,
)

PURCHASE_ORDER_LENGTH = 35
EXTERNAL_DOCUMENT_LENGTH = 40
PRODUCT_LENGTH = 40
ITEM_TEXT_LENGTH = 40
MAX_ITEM_NUMBER = 999_999
QUANTITY_DIGITS, QUANTITY_FRACTION = 15, 3
RATE_DIGITS, RATE_FRACTION = 24, 9
CUSTOM_LENGTHS = {
    "YY1_ProjectOpportunity": 40,
    "YY1_CRMQuoteNo": 20,
    "YY1_CRMOrderNo": 20,
    "YY1_CRMOrderID": 36,
    "YY1_CRMOrderItemID": 36,
    "YY1_ProjectOpportItem": 40,
}
"""Lengths of the custom fields (resources/xsd/SalesOrderBulkRequest_In_YY1.xsd)."""


def _fits(value: str | None, limit: int, field: str, target: str) -> str | None:
    if value is not None and len(value) > limit:
        raise ValidationError(
            field, f"{value[:60]!r} is longer than {target} allows ({len(value)} > {limit})"
        )
    return value


def _decimal_text(value: Decimal, digits: int, fraction: int, field: str) -> Decimal:
    """``value`` without trailing zeros, refused when it needs more digits than S/4 has."""
    normal = value.normalize()
    if normal == normal.to_integral_value():
        normal = normal.quantize(Decimal(1))
    exponent = normal.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if places > fraction:
        raise ValidationError(field, f"{value} has more than {fraction} decimal places")
    whole = len(normal.as_tuple().digits) - places
    if whole > digits - fraction:
        raise ValidationError(field, f"{value} has more than {digits - fraction} integer digits")
    return normal


def _sorted_lines(order: DynamicsOrder) -> list[tuple[int, DynamicsOrderLine]]:
    """Lines with their position in the order as given, in line-number order."""
    indexed = list(enumerate(order.lines))
    return sorted(
        indexed,
        key=lambda item: (
            item[1].line_number is None,
            item[1].line_number or 0,
            item[1].sequence if item[1].sequence is not None else item[0],
            item[0],
        ),
    )


def _item_numbers(lines: list[tuple[int, DynamicsOrderLine]], step: int) -> list[str]:
    numbers = [line.line_number for _, line in lines]
    given = [n for n in numbers if n is not None]
    if (
        len(given) == len(numbers)
        and len(set(given)) == len(given)
        and all(0 < n <= MAX_ITEM_NUMBER for n in given)
    ):
        return [str(n) for n in given]
    if len(lines) * step > MAX_ITEM_NUMBER:
        raise ValidationError("lines", f"{len(lines)} lines do not fit S/4's item numbers")
    return [str((position + 1) * step) for position in range(len(lines))]


def _product(line: DynamicsOrderLine, field: str, settings: SalesOrderSettings) -> str:
    number = line.product_number
    if not number:
        raise ValidationError(
            f"{field}.productnumber", "a write-in product has no product number S/4 could know"
        )
    mapped = settings.products.get(number)
    if mapped is None:
        if settings.products_strict:
            raise ValidationError(
                f"{field}.productnumber",
                f"product {number!r} has no entry in [sales_orders] products",
            )
        mapped = number
    _fits(mapped, PRODUCT_LENGTH, f"{field}.productnumber", "an S/4 product number")
    return mapped


def _unit(line: DynamicsOrderLine, field: str, settings: SalesOrderSettings) -> str | None:
    if line.unit is None:
        return settings.default_unit
    code = settings.units.get(line.unit)
    if code is None:
        folded = {name.casefold(): value for name, value in settings.units.items()}
        code = folded.get(line.unit.casefold())
    if code is None:
        raise ValidationError(
            f"{field}.uom", f"unit {line.unit!r} has no ISO code in [sales_orders] units"
        )
    return code


def _item(
    index: int,
    line: DynamicsOrderLine,
    number: str,
    settings: SalesOrderSettings,
) -> SalesOrderItem:
    field = f"lines[{index}]"
    price = None
    if settings.price_condition_type and line.price_per_unit is not None:
        price = _decimal_text(
            line.price_per_unit, RATE_DIGITS, RATE_FRACTION, f"{field}.priceperunit"
        )
    text = line.description[:ITEM_TEXT_LENGTH] if line.description else None
    return SalesOrderItem(
        item_number=number,
        product=_product(line, field, settings),
        quantity=_decimal_text(
            line.quantity, QUANTITY_DIGITS, QUANTITY_FRACTION, f"{field}.quantity"
        ),
        unit_code=_unit(line, field, settings),
        text=text,
        plant=settings.plant,
        price=price,
        price_condition_type=settings.price_condition_type if price is not None else None,
        custom=ItemCustomFields(
            crm_order_item_id=str(line.line_id),
            project_flag=line.project_flag,
            project_opportunity=_fits(
                line.opportunity,
                CUSTOM_LENGTHS["YY1_ProjectOpportItem"],
                f"{field}.opportunity",
                "YY1_ProjectOpportItem",
            ),
        ),
    )


def _currency(value: str | None) -> str | None:
    if value is None:
        return None
    code = value.strip().upper()
    if len(code) != 3 or not code.isalpha():
        raise ValidationError("transactioncurrency", f"{value!r} is not an ISO currency code")
    return code


def sales_order(order: DynamicsOrder, sold_to: SoldTo, settings: SalesOrderSettings) -> SalesOrder:
    """The S/4 order for ``order``, ordered by ``sold_to``; refuses values S/4 cannot hold."""
    if not order.lines:
        raise ValidationError("lines", "the order has no lines")
    lines = _sorted_lines(order)
    numbers = _item_numbers(lines, settings.item_number_step)
    number = order.order_number
    return SalesOrder(
        order_id=str(order.order_id),
        order_type=settings.order_type,
        sales_area=sold_to.sales_area,
        sold_to=sold_to.customer,
        sold_to_function=settings.sold_to_function,
        purchase_order_by_customer=_fits(
            number, PURCHASE_ORDER_LENGTH, "ordernumber", "PurchaseOrderByCustomer"
        )
        or number,
        customer_purchase_order_type=settings.customer_purchase_order_type,
        sales_group=settings.sales_group,
        sales_office=settings.sales_office,
        currency=_currency(order.currency),
        requested_delivery=order.requested_delivery,
        payment_terms=settings.payment_terms,
        shipping_condition=settings.shipping_condition,
        items=tuple(
            _item(index, line, item_number, settings)
            for (index, line), item_number in zip(lines, numbers, strict=True)
        ),
        custom=OrderCustomFields(
            project_flag=order.project_flag,
            project_opportunity=_fits(
                order.opportunity,
                CUSTOM_LENGTHS["YY1_ProjectOpportunity"],
                "opportunity",
                "YY1_ProjectOpportunity",
            ),
            crm_quote_number=_fits(
                order.quote_number,
                CUSTOM_LENGTHS["YY1_CRMQuoteNo"],
                "quotenumber",
                "YY1_CRMQuoteNo",
            ),
            crm_order_number=_fits(
                number, CUSTOM_LENGTHS["YY1_CRMOrderNo"], "ordernumber", "YY1_CRMOrderNo"
            ),
            crm_order_id=str(order.order_id),
        ),
    )

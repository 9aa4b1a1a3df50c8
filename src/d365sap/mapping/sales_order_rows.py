"""A Dataverse ``salesorder`` row with its ``order_details`` into a :class:`DynamicsOrder`.

The flow reads the order once, with its lines, their product and unit, and the order's currency
in one request (:func:`order_query`); which columns feed the custom fields and the order's SAP
system is configuration (``[sales_orders.columns]``). Rows are the Web API's JSON: lookups as
``_<name>_value``, expanded navigation properties as nested objects, choices as integers.
Anything unreadable is a :class:`~d365sap.errors.ValidationError` naming the column
(``salesorder.requestdeliveryby``, ``order_details[2].quantity``).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from d365sap.config_sales_orders import OrderColumns
from d365sap.errors import ValidationError
from d365sap.model.sales_order import DynamicsOrder, DynamicsOrderLine

ENTITY_SET = "salesorders"
LINES = "order_details"
CUSTOMER_LOOKUP = "_customerid_value"
LOOKUP_TABLE = "@Microsoft.Dynamics.CRM.lookuplogicalname"
S4HC_LABEL = "S4HC"
S4HC_CHOICE = 100_000_000
ERP_SYSTEM_CHOICES = {100_000_000: "S4HC", 100_000_001: "ECC"}
"""Labels of the ``sap_erpsystemtype`` choice of SAP's Dynamics solution."""
SUBMITTED = 1
_ORDER_COLUMNS = (
    "salesorderid",
    "ordernumber",
    "name",
    "statecode",
    CUSTOMER_LOOKUP,
    "requestdeliveryby",
)
_LINE_COLUMNS = (
    "salesorderdetailid",
    "lineitemnumber",
    "sequencenumber",
    "quantity",
    "priceperunit",
    "productdescription",
    "isproductoverridden",
)


@dataclass(frozen=True)
class OrderQuery:
    """What to ask Dataverse for: the order's columns and the expansions."""

    select: tuple[str, ...]
    expand: tuple[str, ...]


def _named(*names: str) -> list[str]:
    return [name for name in dict.fromkeys(names) if name]


def order_query(columns: OrderColumns) -> OrderQuery:
    """``$select`` and ``$expand`` reading an order, its lines, products, units and currency."""
    order = _named(
        *_ORDER_COLUMNS,
        columns.erp_system_type,
        columns.quote_number,
        columns.opportunity,
        columns.project_flag,
    )
    line = _named(*_LINE_COLUMNS, columns.line_project_flag, columns.line_opportunity)
    lines = (
        f"{LINES}($select={','.join(line)};"
        "$expand=productid($select=productnumber),uomid($select=name))"
    )
    return OrderQuery(
        select=tuple(order),
        expand=(lines, "transactioncurrencyid($select=isocurrencycode)"),
    )


class _Row:
    """Typed access to one row's columns, errors naming ``<where>.<column>``."""

    def __init__(self, row: Mapping[str, Any], where: str) -> None:
        self.row = row
        self.where = where

    def field(self, column: str) -> str:
        return f"{self.where}.{column}"

    def text(self, column: str) -> str | None:
        value = self.row.get(column)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValidationError(self.field(column), f"expected text, got {value!r}"[:200])
        text = str(value).strip()
        return text or None

    def need_text(self, column: str) -> str:
        text = self.text(column)
        if text is None:
            raise ValidationError(self.field(column), "is empty")
        return text

    def guid(self, column: str) -> uuid.UUID | None:
        text = self.text(column)
        if text is None:
            return None
        try:
            return uuid.UUID(text)
        except ValueError:
            raise ValidationError(self.field(column), f"{text!r} is not a GUID") from None

    def need_guid(self, column: str) -> uuid.UUID:
        value = self.guid(column)
        if value is None:
            raise ValidationError(self.field(column), "is empty")
        return value

    def integer(self, column: str) -> int | None:
        value = self.row.get(column)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationError(self.field(column), f"expected a whole number, got {value!r}")
        return value

    def decimal(self, column: str) -> Decimal | None:
        value = self.row.get(column)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValidationError(self.field(column), f"expected a number, got {value!r}")
        try:
            return Decimal(str(value))
        except InvalidOperation:
            raise ValidationError(self.field(column), f"{value!r} is not a number") from None

    def flag(self, column: str) -> bool | None:
        value = self.row.get(column)
        if value is None:
            return None
        if not isinstance(value, bool):
            raise ValidationError(self.field(column), f"expected true/false, got {value!r}")
        return value

    def day(self, column: str) -> date | None:
        text = self.text(column)
        if text is None:
            return None
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            raise ValidationError(self.field(column), f"{text!r} is not a date") from None

    def expanded(self, navigation: str, column: str) -> str | None:
        """A column of an expanded single-valued navigation property."""
        related = self.row.get(navigation)
        if related is None:
            return None
        if not isinstance(related, Mapping):
            raise ValidationError(self.field(navigation), "expected the related row")
        return _Row(related, self.field(navigation)).text(column)


def system_type(value: object, field: str) -> str | None:
    """The order's SAP system from the choice value (or a text column) as the package names it."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValidationError(field, f"expected a choice value, got {value!r}")
    if isinstance(value, int):
        return ERP_SYSTEM_CHOICES.get(value, f"choice {value}")
    if isinstance(value, str):
        return value.strip() or None
    raise ValidationError(field, f"expected a choice value, got {value!r}"[:200])


def order_from_rows(row: Mapping[str, Any], columns: OrderColumns) -> DynamicsOrder:
    """The order described by a ``salesorder`` row read with :func:`order_query`."""
    order = _Row(row, "salesorder")
    customer_table = row.get(f"{CUSTOMER_LOOKUP}{LOOKUP_TABLE}")
    if customer_table not in (None, "account"):
        raise ValidationError(
            order.field("customerid"),
            f"the customer is a {customer_table}; only accounts have SAP customers",
        )
    raw_lines = row.get(LINES)
    if raw_lines is None:
        raw_lines = []
    if not isinstance(raw_lines, Sequence) or isinstance(raw_lines, str | bytes):
        raise ValidationError(order.field(LINES), "expected the order's lines")
    lines = [
        _line(_Row(line, f"{LINES}[{index}]"), columns)
        for index, line in enumerate(raw_lines)
        if isinstance(line, Mapping)
    ]
    erp_system = None
    if columns.erp_system_type:
        erp_system = system_type(
            row.get(columns.erp_system_type), order.field(columns.erp_system_type)
        )
    return DynamicsOrder(
        order_id=order.need_guid("salesorderid"),
        order_number=order.need_text("ordernumber"),
        name=order.text("name"),
        erp_system_type=erp_system,
        state=order.integer("statecode"),
        customer_id=order.guid(CUSTOMER_LOOKUP),
        currency=order.expanded("transactioncurrencyid", "isocurrencycode"),
        requested_delivery=order.day("requestdeliveryby"),
        quote_number=order.text(columns.quote_number) if columns.quote_number else None,
        opportunity=order.text(columns.opportunity) if columns.opportunity else None,
        project_flag=order.flag(columns.project_flag) if columns.project_flag else None,
        lines=tuple(lines),
    )


def _line(line: _Row, columns: OrderColumns) -> DynamicsOrderLine:
    quantity = line.decimal("quantity")
    if quantity is None:
        raise ValidationError(line.field("quantity"), "is empty")
    product = line.expanded("productid", "productnumber")
    return DynamicsOrderLine(
        line_id=line.need_guid("salesorderdetailid"),
        line_number=line.integer("lineitemnumber"),
        sequence=line.integer("sequencenumber"),
        product_number=product,
        description=line.text("productdescription"),
        quantity=quantity,
        unit=line.expanded("uomid", "name"),
        price_per_unit=line.decimal("priceperunit"),
        project_flag=line.flag(columns.line_project_flag) if columns.line_project_flag else None,
        opportunity=line.text(columns.line_opportunity) if columns.line_opportunity else None,
    )

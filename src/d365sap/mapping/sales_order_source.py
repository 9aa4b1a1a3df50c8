"""The legacy push ``POST /http/SalesOrder_CRM_S4HC``: a Dynamics order as JSON or XML.

SAP's package names the flow's source message ``salesOrderSource`` but ships no schema for it
(SEED-SPEC §6.5). d365sap's contract uses the Dataverse column names of the order and its lines,
plus the package's ``erpsystemtype``; JSON and XML carry the same members:

.. code-block:: json

    {"erpsystemtype": "S4HC", "salesorderid": "8e0a…", "ordernumber": "ORD-01001",
     "customerid": "e2f3…", "transactioncurrency": "USD", "requestdeliveryby": "2026-05-01",
     "quotenumber": "QUO-1", "opportunity": "OPP-7", "projectflag": true,
     "lines": [{"salesorderdetailid": "8e0a…", "lineitemnumber": 10, "productnumber": "CP-100",
                "quantity": 2, "uom": "Each"}]}

In XML the root is ``salesOrderSource`` (no namespace) and the lines are
``<lines><line>…</line></lines>``. Instead of ``customerid`` (an account whose S/4 keys the key
registry holds) a sender may name the S/4 customer itself: ``soldtoparty`` with
``salesorganization``, ``distributionchannel`` and ``division``.

Parsing is strict: unknown or repeated members, wrong types, GUIDs, dates and numbers are refused
with a :class:`~d365sap.errors.ValidationError` naming the member (``lines[1].quantity`` in JSON,
``salesOrderSource/lines/line[2]/quantity`` in XML).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from lxml import etree

from d365sap.errors import ValidationError
from d365sap.model.sales_order import DynamicsOrder, DynamicsOrderLine
from d365sap.xmlsafe import parse_xml

XML_ROOT = "salesOrderSource"
ORDER_MEMBERS = frozenset(
    {
        "erpsystemtype",
        "salesorderid",
        "ordernumber",
        "name",
        "customerid",
        "soldtoparty",
        "salesorganization",
        "distributionchannel",
        "division",
        "transactioncurrency",
        "requestdeliveryby",
        "quotenumber",
        "opportunity",
        "projectflag",
        "lines",
    }
)
LINE_MEMBERS = frozenset(
    {
        "salesorderdetailid",
        "lineitemnumber",
        "sequencenumber",
        "productnumber",
        "description",
        "quantity",
        "uom",
        "priceperunit",
        "projectflag",
        "opportunity",
    }
)
_TEXT_LIMITS = {
    "ordernumber": 100,
    "name": 300,
    "soldtoparty": 10,
    "salesorganization": 4,
    "distributionchannel": 2,
    "division": 2,
    "transactioncurrency": 5,
    "quotenumber": 100,
    "opportunity": 100,
    "productnumber": 100,
    "description": 2000,
    "uom": 100,
    "erpsystemtype": 20,
}
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})

Where = Callable[[str], str]


class _Reader:
    """Typed access to one object's members, each error naming the member's full path."""

    def __init__(self, values: Mapping[str, Any], where: Where) -> None:
        self.values = values
        self.where = where

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.values.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise ValidationError(self.where(name), "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValidationError(self.where(name), f"expected a string, got {_kind(value)}")
        text = str(value).strip()
        limit = _TEXT_LIMITS.get(name)
        if limit is not None and len(text) > limit:
            raise ValidationError(self.where(name), f"at most {limit} characters, got {len(text)}")
        return text

    def guid(self, name: str, *, required: bool = False) -> uuid.UUID | None:
        text = self.text(name, required=required)
        if text is None:
            return None
        try:
            return uuid.UUID(text)
        except ValueError:
            raise ValidationError(self.where(name), f"{text[:60]!r} is not a GUID") from None

    def integer(self, name: str) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise ValidationError(self.where(name), "expected a whole number, got a boolean")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value.strip())
        raise ValidationError(self.where(name), f"{str(value)[:40]!r} is not a whole number")

    def decimal(self, name: str, *, required: bool = False) -> Decimal | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise ValidationError(self.where(name), "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValidationError(self.where(name), f"expected a number, got {_kind(value)}")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValidationError(
                self.where(name), f"{str(value)[:40]!r} is not a number"
            ) from None
        if not number.is_finite():
            raise ValidationError(self.where(name), f"{value!r} is not a finite number")
        return number

    def flag(self, name: str) -> bool | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValidationError(self.where(name), f"{str(value)[:40]!r} is not true/false")

    def day(self, name: str) -> date | None:
        text = self.text(name)
        if text is None:
            return None
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            raise ValidationError(
                self.where(name), f"{text[:40]!r} is not a date (YYYY-MM-DD)"
            ) from None


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    return type(value).__name__


def _check_members(values: Mapping[str, Any], allowed: frozenset[str], where: Where) -> None:
    for name in values:
        if name not in allowed:
            raise ValidationError(where(name), "is not a member of the sales order contract")


def _order(values: Mapping[str, Any], lines: list[_Reader], where: Where) -> DynamicsOrder:
    reader = _Reader(values, where)
    sold_to = reader.text("soldtoparty")
    area = {
        name: reader.text(name) for name in ("salesorganization", "distributionchannel", "division")
    }
    customer = reader.guid("customerid")
    if sold_to is not None:
        for name, value in area.items():
            if value is None:
                raise ValidationError(where(name), "is required with soldtoparty")
    elif customer is None:
        raise ValidationError(
            where("customerid"), "is required (or soldtoparty with its sales area)"
        )
    if not lines:
        raise ValidationError(where("lines"), "at least one line is required")
    return DynamicsOrder(
        order_id=reader.guid("salesorderid", required=True),
        order_number=reader.text("ordernumber", required=True),
        name=reader.text("name"),
        erp_system_type=reader.text("erpsystemtype", required=True),
        customer_id=customer,
        sold_to=sold_to,
        sales_organization=area["salesorganization"],
        distribution_channel=area["distributionchannel"],
        division=area["division"],
        currency=reader.text("transactioncurrency"),
        requested_delivery=reader.day("requestdeliveryby"),
        quote_number=reader.text("quotenumber"),
        opportunity=reader.text("opportunity"),
        project_flag=reader.flag("projectflag"),
        lines=tuple(_line(line) for line in lines),
    )


def _line(reader: _Reader) -> DynamicsOrderLine:
    return DynamicsOrderLine(
        line_id=reader.guid("salesorderdetailid", required=True),
        line_number=reader.integer("lineitemnumber"),
        sequence=reader.integer("sequencenumber"),
        product_number=reader.text("productnumber", required=True),
        description=reader.text("description"),
        quantity=reader.decimal("quantity", required=True),
        unit=reader.text("uom"),
        price_per_unit=reader.decimal("priceperunit"),
        project_flag=reader.flag("projectflag"),
        opportunity=reader.text("opportunity"),
    )


# JSON ------------------------------------------------------------------------------------------


def parse_order_json(body: bytes) -> DynamicsOrder:
    """The order of a JSON push; :class:`ValidationError` names what is wrong."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError("body", f"not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ValidationError("body", "expected a JSON object (the sales order)")
    _check_members(document, ORDER_MEMBERS, lambda name: name)
    raw_lines = document.get("lines")
    if raw_lines is not None and not isinstance(raw_lines, list):
        raise ValidationError("lines", f"expected a list, got {_kind(raw_lines)}")
    readers: list[_Reader] = []
    for index, line in enumerate(raw_lines or []):
        prefix = f"lines[{index}]"
        if not isinstance(line, dict):
            raise ValidationError(prefix, f"expected an object, got {_kind(line)}")
        where = _member_of(prefix)
        _check_members(line, LINE_MEMBERS, where)
        for name, value in line.items():
            if isinstance(value, dict | list):
                raise ValidationError(where(name), f"expected a value, got {_kind(value)}")
        readers.append(_Reader(line, where))
    for name, value in document.items():
        if name != "lines" and isinstance(value, dict | list):
            raise ValidationError(name, f"expected a value, got {_kind(value)}")
    return _order(document, readers, lambda name: name)


def _member_of(prefix: str) -> Where:
    return lambda name: f"{prefix}.{name}"


# XML -------------------------------------------------------------------------------------------


def _leaves(element: etree._Element, path: str, allowed: frozenset[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    if (element.text or "").strip():
        raise ValidationError(path, "text is not allowed between the elements")
    for child in element:
        if not isinstance(child.tag, str):
            continue
        name = child.tag
        where = f"{path}/{name}"
        if name.startswith("{") or name not in allowed:
            raise ValidationError(where, "is not a member of the sales order contract")
        if name in values:
            raise ValidationError(where, "occurs more than once")
        if (child.tail or "").strip():
            raise ValidationError(path, "text is not allowed between the elements")
        if name == "lines":
            values[name] = ""
            continue
        if len(child):
            raise ValidationError(where, "must hold a value, not elements")
        values[name] = (child.text or "").strip()
    return values


def parse_order_xml(body: bytes) -> DynamicsOrder:
    """The order of an XML push (root ``salesOrderSource``)."""
    root = parse_xml(body, what="body")
    if root.tag != XML_ROOT:
        raise ValidationError(
            "body", f"root element {str(root.tag)[:80]!r} is not {XML_ROOT!r} (without namespace)"
        )
    values = _leaves(root, XML_ROOT, ORDER_MEMBERS)
    readers: list[_Reader] = []
    container = root.find("lines")
    if container is not None:
        if (container.text or "").strip():
            raise ValidationError(f"{XML_ROOT}/lines", "text is not allowed between the elements")
        position = 0
        for line in container:
            if not isinstance(line.tag, str):
                continue
            position += 1
            path = f"{XML_ROOT}/lines/line[{position}]"
            if line.tag != "line":
                raise ValidationError(f"{XML_ROOT}/lines/{line.tag}", "expected 'line' elements")
            leaves = _leaves(line, path, LINE_MEMBERS)
            readers.append(_Reader(leaves, _child_of(path)))
    values.pop("lines", None)
    return _order(values, readers, _child_of(XML_ROOT))


def _child_of(path: str) -> Where:
    return lambda name: f"{path}/{name}"


def is_json(content_type: str | None) -> bool:
    """Whether ``content_type`` announces JSON."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def parse_order(body: bytes, content_type: str | None) -> DynamicsOrder:
    """A pushed order, JSON or XML by its content type (XML when none is given)."""
    if is_json(content_type):
        return parse_order_json(body)
    return parse_order_xml(body)

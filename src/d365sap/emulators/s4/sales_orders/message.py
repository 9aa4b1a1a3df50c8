"""A schema-valid ``SalesOrderBulkRequest`` read into plain values.

Reading comes after the schema check, so every element here is known, in order and of the right
type; this module only collects the values. Simple fields are kept under their element names
(``SalesOrganization``), the custom fields under theirs (``YY1_CRMOrderNo``); what the processing
does with them is decided in ``creation``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from lxml import etree

from d365sap.emulators.s4.sales_orders.schema import CUSTOM_FIELDS_NS

_NESTED = frozenset({"Incoterms", "ItemIncoterms", "PricingElement", "Partner", "Item"})
_IGNORED = frozenset({"PaymentPlanItem", "RequestedQuantity"})


@dataclass(frozen=True)
class MessageHeader:
    """``MessageHeader``: the ids that identify the message and its sender."""

    id: str | None
    uuid: str | None
    creation: str | None
    sender_system: str | None
    recipient_system: str | None


@dataclass(frozen=True)
class PartnerRequest:
    """One ``Partner`` of an order or item."""

    action: str
    function: str | None
    business_partner: str | None
    customer: str | None
    supplier: str | None
    personnel: str | None
    contact_person: str | None

    @property
    def party(self) -> str | None:
        """The customer, or the business partner number when no customer is given."""
        return self.customer or self.business_partner


@dataclass(frozen=True)
class PricingRequest:
    """One ``PricingElement``: condition type, rate and pricing unit."""

    action: str
    condition_type: str | None
    rate: Decimal | None
    quantity: int | None
    quantity_unit: str | None


@dataclass(frozen=True)
class ItemRequest:
    """One ``Item`` of an order; ``position`` counts from 1 in document order."""

    position: int
    action: str
    fields: dict[str, str]
    quantity: Decimal | None
    unit: str | None
    incoterms: dict[str, str]
    pricing: list[PricingRequest]
    partners: list[PartnerRequest]
    custom: dict[str, str]


@dataclass(frozen=True)
class OrderRequest:
    """One ``SalesOrder`` of the bulk message; ``position`` counts from 1."""

    position: int
    action: str
    fields: dict[str, str]
    incoterms: dict[str, str]
    pricing: list[PricingRequest]
    partners: list[PartnerRequest]
    items: list[ItemRequest]
    custom: dict[str, str]


@dataclass(frozen=True)
class BulkRequest:
    """The whole message."""

    header: MessageHeader
    orders: list[OrderRequest] = field(default_factory=list)


def _name(element: etree._Element) -> str:
    return etree.QName(element).localname


def _children(element: etree._Element) -> list[etree._Element]:
    return [child for child in element if isinstance(child.tag, str)]


def _text(element: etree._Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    return element.text.strip()


def _child_text(element: etree._Element, name: str) -> str | None:
    return _text(element.find(name))


def _simple(element: etree._Element) -> tuple[dict[str, str], dict[str, str]]:
    """Plain fields and custom fields directly below ``element``."""
    plain: dict[str, str] = {}
    custom: dict[str, str] = {}
    for child in _children(element):
        name = _name(child)
        if etree.QName(child).namespace == CUSTOM_FIELDS_NS:
            custom[name] = _text(child) or ""
        elif name not in _NESTED and name not in _IGNORED:
            plain[name] = _text(child) or ""
    return plain, custom


def _incoterms(element: etree._Element | None) -> dict[str, str]:
    if element is None:
        return {}
    return {_name(child): _text(child) or "" for child in _children(element)}


def _partner(element: etree._Element) -> PartnerRequest:
    return PartnerRequest(
        action=element.get("actionCode", ""),
        function=_child_text(element, "PartnerFunction"),
        business_partner=_child_text(element, "BusinessPartnerID"),
        customer=_child_text(element, "Customer"),
        supplier=_child_text(element, "Supplier"),
        personnel=_child_text(element, "Personnel"),
        contact_person=_child_text(element, "ContactPerson"),
    )


def _pricing(element: etree._Element) -> PricingRequest:
    rate = _child_text(element, "ConditionRateValue")
    quantity = element.find("ConditionQuantity")
    amount = _text(quantity)
    return PricingRequest(
        action=element.get("actionCode", ""),
        condition_type=_child_text(element, "ConditionType"),
        rate=Decimal(rate) if rate else None,
        quantity=int(amount) if amount else None,
        quantity_unit=quantity.get("unitCode") if quantity is not None else None,
    )


def _item(element: etree._Element, position: int) -> ItemRequest:
    plain, custom = _simple(element)
    quantity = element.find("RequestedQuantity")
    amount = _text(quantity)
    return ItemRequest(
        position=position,
        action=element.get("actionCode", ""),
        fields=plain,
        quantity=Decimal(amount) if amount else None,
        unit=quantity.get("unitCode") if quantity is not None else None,
        incoterms=_incoterms(element.find("ItemIncoterms")),
        pricing=[_pricing(e) for e in element.findall("PricingElement")],
        partners=[_partner(e) for e in element.findall("Partner")],
        custom=custom,
    )


def _order(element: etree._Element, position: int) -> OrderRequest:
    plain, custom = _simple(element)
    return OrderRequest(
        position=position,
        action=element.get("actionCode", ""),
        fields=plain,
        incoterms=_incoterms(element.find("Incoterms")),
        pricing=[_pricing(e) for e in element.findall("PricingElement")],
        partners=[_partner(e) for e in element.findall("Partner")],
        items=[_item(e, n) for n, e in enumerate(element.findall("Item"), start=1)],
        custom=custom,
    )


def read_bulk_request(payload: etree._Element) -> BulkRequest:
    """The values of a schema-valid ``SalesOrderBulkRequest`` element."""
    header = payload.find("MessageHeader")
    assert header is not None, "the schema requires MessageHeader"
    return BulkRequest(
        header=MessageHeader(
            id=_child_text(header, "ID"),
            uuid=_child_text(header, "UUID"),
            creation=_child_text(header, "CreationDateTime"),
            sender_system=_child_text(header, "SenderBusinessSystemID"),
            recipient_system=_child_text(header, "RecipientBusinessSystemID"),
        ),
        orders=[_order(e, n) for n, e in enumerate(payload.findall("SalesOrder"), start=1)],
    )

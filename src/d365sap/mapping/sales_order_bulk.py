"""Canonical sales orders into a ``SalesOrderBulkRequest`` of SalesOrderBulkRequest_In.

Each :class:`SalesOrder` becomes one ``SalesOrder`` node, serialised once (:func:`order_xml`)
and checked on its own against the packaged schema (:func:`order_problems`), so an order that
would break the schema is refused alone instead of taking a whole bulk message down with it.
A bulk message is then the message header followed by the serialised nodes of the orders packed
into it (:func:`bulk_request`): several orders per request, joined as bytes without
re-serialising them.

As in SAP's schemas only the root element is namespace-qualified; the YY1 custom fields are
qualified elements of ``http://SAPCustomFields.com/YY1_`` at the end of their node. Every order,
item, partner and pricing element is sent with ``actionCode`` ``01`` (create) and complete
lists (the ``…ListCompleteTransmissionIndicator`` attributes ``true``).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from importlib import resources
from typing import Any, cast

from lxml import etree

from d365sap.model.sales_order import SalesOrder, SalesOrderItem

MESSAGE_NS = "http://sap.com/xi/SD-SLS"
CUSTOM_NS = "http://SAPCustomFields.com/YY1_"
ROOT = "SalesOrderBulkRequest"
XSD_RESOURCE = "xsd/SalesOrderBulkRequest_In.xsd"
YY1_XSD_RESOURCE = "xsd/SalesOrderBulkRequest_In_YY1.xsd"
CREATE = "01"
_ORDER_LISTS = (
    "itemListCompleteTransmissionIndicator",
    "pricingElementListCompleteTransmissionIndicator",
    "partnerListCompleteTransmissionIndicator",
    "paymentPlanItemListCompleteTransmissionIndicator",
)
_ITEM_LISTS = (
    "pricingElementListCompleteTransmissionIndicator",
    "partnerListCompleteTransmissionIndicator",
)
_PROBLEMS_SHOWN = 10


@dataclass(frozen=True)
class BulkHeader:
    """``MessageHeader`` of one bulk message: its id (stable across retries) and sender."""

    message_id: str
    message_uuid: str
    created_at: datetime
    sender_system: str
    recipient_system: str | None = None


def _add(parent: etree._Element, name: str, value: str | None) -> etree._Element | None:
    if value is None or value == "":
        return None
    child = etree.SubElement(parent, name)
    child.text = value
    return child


def _custom(parent: etree._Element, name: str, value: str | bool | None) -> None:
    if value is None or value == "":
        return
    text = ("true" if value else "false") if isinstance(value, bool) else value
    etree.SubElement(parent, etree.QName(CUSTOM_NS, name)).text = text


def _number(value: Decimal) -> str:
    return format(value, "f")


def _item(parent: etree._Element, item: SalesOrderItem) -> None:
    node = etree.SubElement(parent, "Item", {"actionCode": CREATE})
    for name in _ITEM_LISTS:
        node.set(name, "true")
    _add(node, "SalesOrderItemID", item.item_number)
    _add(node, "SalesOrderItemText", item.text)
    quantity = etree.SubElement(node, "RequestedQuantity")
    quantity.text = _number(item.quantity)
    if item.unit_code:
        quantity.set("unitCode", item.unit_code)
    _add(node, "Material", item.product)
    _add(node, "Plant", item.plant)
    if item.price is not None and item.price_condition_type:
        pricing = etree.SubElement(node, "PricingElement", {"actionCode": CREATE})
        _add(pricing, "ConditionType", item.price_condition_type)
        _add(pricing, "ConditionRateValue", _number(item.price))
        per = etree.SubElement(pricing, "ConditionQuantity")
        per.text = "1"
        if item.unit_code:
            per.set("unitCode", item.unit_code)
    _custom(node, "YY1_CRMOrderItemID", item.custom.crm_order_item_id)
    _custom(node, "YY1_ProjectFlagItem", item.custom.project_flag)
    _custom(node, "YY1_ProjectOpportItem", item.custom.project_opportunity)


def order_element(order: SalesOrder) -> etree._Element:
    """The ``SalesOrder`` node of ``order`` (unqualified, custom fields qualified)."""
    node = etree.Element("SalesOrder", {"actionCode": CREATE}, nsmap={"yy1": CUSTOM_NS})
    for name in _ORDER_LISTS:
        node.set(name, "true")
    area = order.sales_area
    _add(node, "ExternalDocumentID", order.external_document_id)
    _add(node, "SalesOrderType", order.order_type)
    _add(node, "SalesOrganization", area.sales_organization)
    _add(node, "DistributionChannel", area.distribution_channel)
    _add(node, "OrganizationDivision", area.division)
    _add(node, "SalesGroup", order.sales_group)
    _add(node, "SalesOffice", order.sales_office)
    _add(node, "PurchaseOrderByCustomer", order.purchase_order_by_customer)
    _add(node, "CustomerPurchaseOrderType", order.customer_purchase_order_type)
    _add(node, "TransactionCurrency", order.currency)
    _add(node, "CustomerPaymentTerms", order.payment_terms)
    if order.requested_delivery is not None:
        _add(node, "RequestedDeliveryDate", order.requested_delivery.isoformat())
    _add(node, "ShippingCondition", order.shipping_condition)
    partner = etree.SubElement(node, "Partner", {"actionCode": CREATE})
    _add(partner, "PartnerFunction", order.sold_to_function)
    _add(partner, "Customer", order.sold_to)
    for item in order.items:
        _item(node, item)
    custom = order.custom
    _custom(node, "YY1_ProjectFlag", custom.project_flag)
    _custom(node, "YY1_ProjectOpportunity", custom.project_opportunity)
    _custom(node, "YY1_CRMQuoteNo", custom.crm_quote_number)
    _custom(node, "YY1_CRMOrderNo", custom.crm_order_number)
    _custom(node, "YY1_CRMOrderID", custom.crm_order_id)
    return node


def order_xml(order: SalesOrder) -> bytes:
    """``order``'s ``SalesOrder`` node as bytes, ready to be packed into a bulk message."""
    return bytes(etree.tostring(order_element(order), encoding="UTF-8", xml_declaration=False))


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def header_xml(header: BulkHeader) -> bytes:
    """The ``MessageHeader`` node."""
    node = etree.Element("MessageHeader")
    _add(node, "ID", header.message_id)
    _add(node, "UUID", header.message_uuid)
    _add(node, "CreationDateTime", _timestamp(header.created_at))
    _add(node, "SenderBusinessSystemID", header.sender_system)
    _add(node, "RecipientBusinessSystemID", header.recipient_system)
    return bytes(etree.tostring(node, encoding="UTF-8"))


def bulk_request(header: BulkHeader, orders: Iterable[bytes]) -> bytes:
    """The ``SalesOrderBulkRequest`` element with the header and the serialised orders."""
    return b"".join(
        (
            f'<n0:{ROOT} xmlns:n0="{MESSAGE_NS}">'.encode(),
            header_xml(header),
            *orders,
            f"</n0:{ROOT}>".encode(),
        )
    )


# the schema ------------------------------------------------------------------------------------


def _resource(name: str) -> bytes:
    return resources.files("d365sap.resources").joinpath(name).read_bytes()


class _Imports(etree.Resolver):
    """Serves the custom-field schema the main schema imports by file name."""

    def resolve(self, system_url: str, public_id: str, context: Any) -> Any:  # type: ignore[override]
        if system_url.rsplit("/", 1)[-1] == YY1_XSD_RESOURCE.rsplit("/", 1)[-1]:
            return self.resolve_string(_resource(YY1_XSD_RESOURCE), context, base_url=system_url)
        return None


class BulkSchema:
    """The packaged schema of SalesOrderBulkRequest, compiled once."""

    def __init__(self) -> None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        parser.resolvers.add(_Imports())
        document = etree.fromstring(_resource(XSD_RESOURCE), parser, base_url=XSD_RESOURCE)
        self._xsd = etree.XMLSchema(etree.ElementTree(document))
        self._lock = threading.Lock()

    def problems(self, document: bytes) -> list[str]:
        """Every violation of a ``SalesOrderBulkRequest`` document (at most ten), or none."""
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        root = etree.fromstring(document, parser)
        with self._lock:
            if self._xsd.validate(root):
                return []
            entries = list(cast(Sequence[Any], self._xsd.error_log))
        return [
            f"{entry.path}: {entry.message}" if entry.path else str(entry.message)
            for entry in entries[:_PROBLEMS_SHOWN]
        ]


@functools.cache
def bulk_schema() -> BulkSchema:
    """The compiled schema (once per process)."""
    return BulkSchema()


_PROBE_HEADER = BulkHeader(
    message_id="0" * 32,
    message_uuid="00000000-0000-0000-0000-000000000000",
    created_at=datetime(2000, 1, 1),
    sender_system="D365",
)


def order_problems(order_node: bytes) -> list[str]:
    """Schema violations of one serialised ``SalesOrder`` node, checked in a bulk of one."""
    return bulk_schema().problems(bulk_request(_PROBE_HEADER, [order_node]))

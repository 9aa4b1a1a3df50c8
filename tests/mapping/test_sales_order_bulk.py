"""S/4 orders as SalesOrderBulkRequest: valid against the packaged schema, several per message."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from lxml import etree

from d365sap.config_sales_orders import SalesOrderSettings
from d365sap.mapping.sales_order import sales_order
from d365sap.mapping.sales_order_bulk import (
    CUSTOM_NS,
    MESSAGE_NS,
    BulkHeader,
    bulk_request,
    bulk_schema,
    order_problems,
    order_xml,
)
from d365sap.model.sales_order import SalesOrder
from support.sales_order_data import SOLD_TO, line, order

HEADER = BulkHeader(
    message_id="0A1B2C3D4E5F60718293A4B5C6D7E8F9",
    message_uuid="0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9",
    created_at=datetime(2026, 5, 4, 10, 0, 1, 123456),
    sender_system="D365",
    recipient_system="S4HCLNT100",
)
Y = f"{{{CUSTOM_NS}}}"


def mapped(**options: object) -> SalesOrder:
    dynamics = order(
        line("CP-100", "2", line_number=10, project_flag=True, opportunity="OPP-1"),
        line("SK-20", "1.5", line_number=20, price_per_unit=Decimal("89.90")),
    )
    return sales_order(dynamics, SOLD_TO, SalesOrderSettings.model_validate(options))


def test_an_order_node_carries_the_mapping_in_schema_order() -> None:
    source = mapped(price_condition_type="PPR0", plant="1710", sales_group="170")
    node = etree.fromstring(order_xml(source))
    assert node.tag == "SalesOrder" and node.get("actionCode") == "01"
    for name in (
        "itemListCompleteTransmissionIndicator",
        "pricingElementListCompleteTransmissionIndicator",
        "partnerListCompleteTransmissionIndicator",
        "paymentPlanItemListCompleteTransmissionIndicator",
    ):
        assert node.get(name) == "true"
    children = [etree.QName(child).localname for child in node]
    assert children == [
        "SalesOrderType",
        "SalesOrganization",
        "DistributionChannel",
        "OrganizationDivision",
        "SalesGroup",
        "PurchaseOrderByCustomer",
        "TransactionCurrency",
        "RequestedDeliveryDate",
        "Partner",
        "Item",
        "Item",
        "YY1_ProjectFlag",
        "YY1_ProjectOpportunity",
        "YY1_CRMQuoteNo",
        "YY1_CRMOrderNo",
        "YY1_CRMOrderID",
    ]
    assert node.findtext("PurchaseOrderByCustomer") == source.purchase_order_by_customer
    assert node.findtext("RequestedDeliveryDate") == "2026-06-30"
    assert node.findtext("Partner/PartnerFunction") == "AG"
    assert node.findtext("Partner/Customer") == "17100002"
    assert node.findtext(f"{Y}YY1_CRMOrderID") == source.order_id
    assert node.findtext(f"{Y}YY1_ProjectFlag") == "true"
    first, second = node.findall("Item")
    assert first.findtext("SalesOrderItemID") == "10"
    quantity = first.find("RequestedQuantity")
    assert quantity is not None and (quantity.text, quantity.get("unitCode")) == ("2", "EA")
    assert (first.findtext("Material"), first.findtext("Plant")) == ("CP-100", "1710")
    assert first.findtext(f"{Y}YY1_ProjectFlagItem") == "true"
    assert first.findtext(f"{Y}YY1_ProjectOpportItem") == "OPP-1"
    assert first.find("PricingElement") is None  # no price on that line
    assert second.findtext("PricingElement/ConditionType") == "PPR0"
    assert second.findtext("PricingElement/ConditionRateValue") == "89.9"
    assert second.findtext(f"{Y}YY1_CRMOrderItemID") == source.items[1].custom.crm_order_item_id
    assert order_problems(order_xml(source)) == []


def test_several_orders_make_one_valid_bulk_message() -> None:
    nodes = [order_xml(mapped()) for _ in range(3)]
    document = bulk_request(HEADER, nodes)
    assert bulk_schema().problems(document) == []
    root = etree.fromstring(document)
    assert root.tag == f"{{{MESSAGE_NS}}}SalesOrderBulkRequest"
    assert root.findtext("MessageHeader/ID") == HEADER.message_id
    assert root.findtext("MessageHeader/UUID") == HEADER.message_uuid
    assert root.findtext("MessageHeader/CreationDateTime") == "2026-05-04T10:00:01.123Z"
    assert root.findtext("MessageHeader/SenderBusinessSystemID") == "D365"
    assert root.findtext("MessageHeader/RecipientBusinessSystemID") == "S4HCLNT100"
    assert len(root.findall("SalesOrder")) == 3


def test_a_broken_order_is_found_on_its_own() -> None:
    broken = mapped().model_copy(update={"order_type": "TOOLONG"})
    problems = order_problems(order_xml(broken))
    assert problems and "SalesOrderType" in problems[0]
    assert bulk_schema().problems(bulk_request(HEADER, [order_xml(mapped())])) == []

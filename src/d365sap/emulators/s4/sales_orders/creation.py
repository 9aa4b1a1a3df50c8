"""Saving one checked order as records of API_SALES_ORDER_SRV, numbered from the number range.

The order is written the way a deep insert would be (header with partners, pricing elements and
items, each item with its partners, pricing elements and one schedule line) and goes through the
same EDMX check as any OData write, in one store transaction: it lands completely or not at all.
What the sender leaves out S/4 determines: currency, payment terms, incoterms and shipping
condition from the customer's sales area, ship-to, bill-to and payer from the sold-to party,
item category, description, product group and plant from the product, dates from today.

Amounts: an item pricing element is worth rate x quantity / pricing unit, the item's net value is
the sum of its elements, a header element counts with its rate, and the order's net value is the
sum of all of them. No pricing procedure runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from d365sap.emulators.s4.edm import EntitySet
from d365sap.emulators.s4.errors import ODataError
from d365sap.emulators.s4.hosting import ODataHost
from d365sap.emulators.s4.payload import Mode, parse_entity
from d365sap.emulators.s4.sales_orders.checks import (
    CUSTOMER_FUNCTIONS,
    SOLD_TO,
    ResolvedItem,
    ResolvedOrder,
    check_order,
)
from d365sap.emulators.s4.sales_orders.masterdata import (
    ISO_TO_SAP_UNIT,
    SAP_TO_ISO_UNIT,
    MasterData,
    alpha,
)
from d365sap.emulators.s4.sales_orders.message import (
    MessageHeader,
    OrderRequest,
    PartnerRequest,
    PricingRequest,
)
from d365sap.emulators.s4.sales_orders.outcome import (
    INFORMATION,
    LogItem,
    Message,
    OrderOutcome,
    error,
)
from d365sap.emulators.settings import SalesOrderBulkSettings

ORDER_SET = "A_SalesOrder"
ITEM_SET = "A_SalesOrderItem"
_CENT = Decimal("0.001")
_ORDER_TYPE_TEXT = {"OR": "Standard Order"}
_ITEM_CATEGORY = {"NORM": "TAN", "LEIS": "TAD"}
_FROM_SALES_AREA = (
    ("TransactionCurrency", "Currency"),
    ("CustomerPaymentTerms", "CustomerPaymentTerms"),
    ("ShippingCondition", "ShippingCondition"),
    ("IncotermsClassification", "IncotermsClassification"),
    ("IncotermsTransferLocation", "IncotermsTransferLocation"),
    ("IncotermsLocation1", "IncotermsLocation1"),
    ("IncotermsLocation2", "IncotermsLocation2"),
    ("IncotermsVersion", "IncotermsVersion"),
    ("CustomerGroup", "CustomerGroup"),
)
_ITEM_RENAMED = {"Plant": "ProductionPlant"}
_NOT_COPIED = frozenset({"SalesOrderID", "SalesOrderItemID", "HigherLevelItem"})


def _typed(entity_set: EntitySet, name: str, text: str) -> Any:
    """The JSON value of a SOAP field for the OData property ``name``."""
    kind = entity_set.properties[name].edm_type
    if kind == "Edm.Boolean":
        return text.strip().lower() in ("true", "1")
    if kind == "Edm.DateTime":
        return f"{text}T00:00:00" if len(text) == 10 else text
    return text


def _copy(entity_set: EntitySet, fields: Mapping[str, str], suffix: str) -> dict[str, Any]:
    """Fields of the request whose property exists (custom fields with their API suffix)."""
    values: dict[str, Any] = {}
    for name, text in fields.items():
        if name in _NOT_COPIED or text == "":
            continue
        target = _ITEM_RENAMED.get(name, name) if entity_set.name == ITEM_SET else name
        if name.startswith("YY1_"):
            target = f"{name}{suffix}"
        if target in entity_set.properties:
            values[target] = _typed(entity_set, target, text)
    return values


def _money(value: Decimal) -> str:
    return str(value.quantize(_CENT))


def _pricing_rows(
    elements: list[PricingRequest], currency: str | None, quantity: Decimal | None
) -> tuple[list[dict[str, Any]], Decimal]:
    rows: list[dict[str, Any]] = []
    total = Decimal(0)
    for step, element in enumerate(elements, start=1):
        rate = element.rate if element.rate is not None else Decimal(0)
        per = Decimal(element.quantity or 1)
        amount = rate * quantity / per if quantity is not None else rate
        total += amount
        row: dict[str, Any] = {
            "PricingProcedureStep": f"{step * 10:03d}",
            "PricingProcedureCounter": "001",
            "ConditionType": element.condition_type,
            "ConditionRateValue": str(rate),
            "ConditionCurrency": currency,
            "ConditionIsManuallyChanged": True,
            "ConditionAmount": _money(amount),
            "TransactionCurrency": currency,
        }
        if element.quantity is not None:
            row["ConditionQuantity"] = str(element.quantity)
        if element.quantity_unit:
            row["ConditionQuantityUnit"] = ISO_TO_SAP_UNIT[element.quantity_unit]
        rows.append(row)
    return rows, total


def _partner_rows(partners: Mapping[str, PartnerRequest]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for function, partner in partners.items():
        row: dict[str, Any] = {"PartnerFunction": function}
        if function in CUSTOMER_FUNCTIONS and partner.party:
            row["Customer"] = alpha(partner.party)
        for name, value in (
            ("Supplier", partner.supplier),
            ("Personnel", partner.personnel),
            ("ContactPerson", partner.contact_person),
        ):
            if value:
                row[name] = value
        rows.append(row)
    return rows


class OrderBook:
    """Checks and saves the orders of bulk messages in the API_SALES_ORDER_SRV store."""

    def __init__(
        self, host: ODataHost, master: MasterData, settings: SalesOrderBulkSettings
    ) -> None:
        self.host = host
        self.master = master
        self.settings = settings

    def process(self, order: OrderRequest, header: MessageHeader, user: str) -> OrderOutcome:
        """Create ``order`` or explain why not; never raises for a business problem."""
        outcome = OrderOutcome(
            position=order.position,
            external_document_id=order.fields.get("ExternalDocumentID"),
            purchase_order_by_customer=order.fields.get("PurchaseOrderByCustomer"),
            crm_order_id=order.custom.get("YY1_CRMOrderID"),
        )
        resolved, errors = check_order(order, self.master, self.settings.order_types)
        if resolved is None:
            outcome.log = errors
            return outcome
        where = f"SalesOrder[{order.position}]"
        document = self._document(resolved, header)
        with self.host.store.lock:
            number = self._next_number()
            if number is None:
                outcome.log = [
                    error(
                        Message.NUMBER_RANGE_EXHAUSTED,
                        "Number range for sales orders "
                        f"({self.settings.number_range_from}-{self.settings.number_range_to}) "
                        "is exhausted",
                        where,
                    )
                ]
                return outcome
            document["SalesOrder"] = number
            entity_set = self.host.model.entity_sets[ORDER_SET]
            try:
                parsed = parse_entity(self.host.model, entity_set, document, Mode.SEED)
                self.host.writer.seed(entity_set, parsed, user)
            except ODataError as rejected:
                target = rejected.details[0].target if rejected.details else ""
                outcome.log = [
                    error(Message.DATA_REJECTED, f"{rejected.message} ({target})", where)
                ]
                return outcome
        text = _ORDER_TYPE_TEXT.get(order.fields.get("SalesOrderType", ""), "Sales Order")
        outcome.sales_order = number
        outcome.log = [LogItem(Message.SAVED, INFORMATION, f"{text} {number} has been saved")]
        return outcome

    def _next_number(self) -> str | None:
        low, high = self.settings.number_range_from, self.settings.number_range_to
        taken = [
            int(record.values["SalesOrder"])
            for record in self.host.store.rows(ORDER_SET)
            if str(record.values["SalesOrder"]).isdigit()
            and low <= int(record.values["SalesOrder"]) <= high
        ]
        candidate = max(taken, default=low - 1) + 1
        return str(candidate) if candidate <= high else None

    def _document(self, resolved: ResolvedOrder, header: MessageHeader) -> dict[str, Any]:
        """The order as a deep-insert document, without its number (drawn under the lock)."""
        model = self.host.model
        order_set, item_set = model.entity_sets[ORDER_SET], model.entity_sets[ITEM_SET]
        request = resolved.request
        today = date.today().isoformat() + "T00:00:00"
        values = _copy(order_set, request.fields, "_SDH")
        values.update(_copy(order_set, request.custom, "_SDH"))
        values.update(_copy(order_set, request.incoterms, "_SDH"))
        area = resolved.sales_area.values
        for target, source in _FROM_SALES_AREA:
            if values.get(target) is None and area.get(source):
                values[target] = area[source]
        for name in ("SalesOrderDate", "PricingDate", "RequestedDeliveryDate"):
            values.setdefault(name, today)
        currency = values.get("TransactionCurrency")
        partners = dict(resolved.partners)
        for function in ("WE", "RE", "RG"):
            partners.setdefault(function, partners[SOLD_TO])
        items = [self._item(item_set, entry, values, currency) for entry in resolved.items]
        header_rows, header_total = _pricing_rows(request.pricing, currency, None)
        total = sum((Decimal(i["NetAmount"]) for i in items), Decimal(0)) + header_total
        values.update(
            {
                "SoldToParty": resolved.sold_to,
                "CreationDate": today,
                "LastChangeDateTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "SenderBusinessSystemName": header.sender_system,
                "TotalNetAmount": _money(total),
                "OverallSDProcessStatus": "A",
                "OverallTotalDeliveryStatus": "A",
                "OverallDeliveryStatus": "A",
                "OverallSDDocumentRejectionSts": "A",
                "TotalCreditCheckStatus": "",
                "to_Partner": _partner_rows(partners),
                "to_PricingElement": header_rows,
                "to_Item": items,
            }
        )
        return values

    def _item(
        self,
        item_set: EntitySet,
        entry: ResolvedItem,
        order: Mapping[str, Any],
        currency: str | None,
    ) -> dict[str, Any]:
        request = entry.request
        product, sales = entry.product.values, entry.sales.values
        values = _copy(item_set, request.fields, "_SDI")
        values.update(_copy(item_set, request.custom, "_SDI"))
        values.update(_copy(item_set, request.incoterms, "_SDI"))
        for name in ("IncotermsClassification", "IncotermsTransferLocation"):
            if values.get(name) is None and order.get(name):
                values[name] = order[name]
        quantity = request.quantity or Decimal(0)
        rows, net = _pricing_rows(request.pricing, currency, quantity)
        values.setdefault("PurchaseOrderByCustomer", order.get("PurchaseOrderByCustomer"))
        values.setdefault("PricingDate", order.get("PricingDate"))
        values.setdefault("CustomerPaymentTerms", order.get("CustomerPaymentTerms"))
        values.setdefault(
            "SalesOrderItemCategory",
            _ITEM_CATEGORY.get(str(sales.get("ItemCategoryGroup") or ""), "TAN"),
        )
        description = self.master.description(str(product["Product"]))
        if description:
            values.setdefault("SalesOrderItemText", description)
        if product.get("ProductGroup"):
            values.setdefault("MaterialGroup", product["ProductGroup"])
        if sales.get("SupplyingPlant"):
            values.setdefault("ProductionPlant", sales["SupplyingPlant"])
        values.update(
            {
                "SalesOrderItem": entry.number,
                "HigherLevelItem": entry.higher_level,
                "Material": product["Product"],
                "RequestedQuantity": str(quantity),
                "RequestedQuantityUnit": entry.sap_unit,
                "RequestedQuantitySAPUnit": entry.sap_unit,
                "RequestedQuantityISOUnit": SAP_TO_ISO_UNIT.get(entry.sap_unit),
                "TransactionCurrency": currency,
                "NetAmount": _money(net),
                "SDProcessStatus": "A",
                "DeliveryStatus": "A",
                "to_Partner": _partner_rows(entry.partners),
                "to_PricingElement": rows,
                "to_ScheduleLine": [
                    {
                        "ScheduleLine": "1",
                        "RequestedDeliveryDate": order.get("RequestedDeliveryDate"),
                        "ConfirmedDeliveryDate": order.get("RequestedDeliveryDate"),
                        "OrderQuantityUnit": entry.sap_unit,
                        "OrderQuantitySAPUnit": entry.sap_unit,
                        "OrderQuantityISOUnit": SAP_TO_ISO_UNIT.get(entry.sap_unit),
                        "ScheduleLineOrderQuantity": str(quantity),
                        "ConfdOrderQtyByMatlAvailCheck": str(quantity),
                    }
                ],
            }
        )
        return values

"""The business checks S/4 runs on one order before it saves it, all of them, not just the first.

An order needs its sales document type, a sales area, a sold-to party that is a customer of that
sales area (not blocked, not flagged for deletion), partners of known functions naming existing
customers, and at least one item; every item a product that exists, is not flagged for deletion
and is sold in the order's sales organization and distribution channel, a positive quantity in a
unit of the product, and item numbers that are unique. Only creation is emulated: action codes
other than ``01`` (create) and ``04`` (save) are refused, as is an order number chosen by the
sender (sales orders are numbered internally).

Every failed check becomes an error in the order's log naming the element of the request
(``SalesOrder[1]/Item[2]/Material``); an order with any error is not created.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from d365sap.emulators.s4.sales_orders.masterdata import ISO_TO_SAP_UNIT, MasterData, alpha
from d365sap.emulators.s4.sales_orders.message import (
    ItemRequest,
    OrderRequest,
    PartnerRequest,
    PricingRequest,
)
from d365sap.emulators.s4.sales_orders.outcome import LogItem, Message, error
from d365sap.emulators.s4.store import Record

CREATING_ACTIONS = frozenset({"01", "04"})
CUSTOMER_FUNCTIONS = frozenset({"AG", "WE", "RE", "RG"})
PERSONNEL_FUNCTIONS = frozenset({"VE", "ZM"})
CONTACT_FUNCTIONS = frozenset({"AP"})
ENGLISH_FUNCTIONS = {"SP": "AG", "SH": "WE", "BP": "RE", "PY": "RG", "ER": "ZM", "CP": "AP"}
"""Partner functions in their English form, as SAP's conversion shows them, to the stored form."""
SOLD_TO = "AG"
_SALES_AREA = ("SalesOrganization", "DistributionChannel", "OrganizationDivision")


@dataclass
class ResolvedItem:
    """An item that passed the checks, with what the checks looked up."""

    request: ItemRequest
    number: str
    product: Record
    sales: Record
    sap_unit: str
    higher_level: str | None
    partners: dict[str, PartnerRequest] = field(default_factory=dict)


@dataclass
class ResolvedOrder:
    """An order that passed the checks."""

    request: OrderRequest
    sold_to: str
    sales_area: Record
    partners: dict[str, PartnerRequest]
    items: list[ResolvedItem]


class _Checker:
    """Runs the checks of one order and collects the errors."""

    def __init__(self, order: OrderRequest, master: MasterData, order_types: list[str]) -> None:
        self.order = order
        self.master = master
        self.order_types = order_types
        self.errors: list[LogItem] = []
        self.where = f"SalesOrder[{order.position}]"

    def fail(self, message: Message, note: str, element: str) -> None:
        self.errors.append(error(message, note, element))

    def run(self) -> ResolvedOrder | None:
        order = self.order
        if order.action not in CREATING_ACTIONS:
            self.fail(
                Message.ACTION_NOT_SUPPORTED,
                f"Action code {order.action} is not supported: this system only creates sales "
                "orders (01 create, 04 save)",
                f"{self.where}/@actionCode",
            )
        if order.fields.get("SalesOrderID"):
            self.fail(
                Message.EXTERNAL_NUMBER,
                f"Sales order number {order.fields['SalesOrderID']} cannot be given: sales "
                "orders are numbered internally",
                f"{self.where}/SalesOrderID",
            )
        order_type = self._required("SalesOrderType", "Sales document type")
        if order_type and order_type not in self.order_types:
            self.fail(
                Message.ORDER_TYPE_UNKNOWN,
                f"Sales document type {order_type} is not defined "
                f"(known: {', '.join(self.order_types)})",
                f"{self.where}/SalesOrderType",
            )
        area = [
            self._required(name, label)
            for name, label in zip(_SALES_AREA, _AREA_LABELS, strict=True)
        ]
        partners = self._partners(order.partners, self.where)
        sold_to, sales_area = self._sold_to(partners, area)
        for index, pricing in enumerate(order.pricing, start=1):
            self._pricing(pricing, f"{self.where}/PricingElement[{index}]")
        items = self._items(area)
        if self.errors or sold_to is None or sales_area is None:
            return None
        return ResolvedOrder(order, sold_to, sales_area, partners, items)

    def _required(self, name: str, label: str) -> str | None:
        value = self.order.fields.get(name, "")
        if not value:
            self.fail(Message.FIELD_MISSING, f"{label} is missing", f"{self.where}/{name}")
            return None
        return value

    def _partners(self, given: list[PartnerRequest], where: str) -> dict[str, PartnerRequest]:
        found: dict[str, PartnerRequest] = {}
        for index, partner in enumerate(given, start=1):
            place = f"{where}/Partner[{index}]"
            if partner.action not in CREATING_ACTIONS:
                self.fail(
                    Message.ACTION_NOT_SUPPORTED,
                    f"Action code {partner.action} is not supported for a partner of a new order",
                    f"{place}/@actionCode",
                )
            function = self._function(partner, place)
            if function is None:
                continue
            if function in found:
                self.fail(
                    Message.PARTNER_INVALID,
                    f"Partner function {function} is given more than once",
                    f"{place}/PartnerFunction",
                )
                continue
            found[function] = partner
            self._party(function, partner, place)
        return found

    def _function(self, partner: PartnerRequest, place: str) -> str | None:
        raw = (partner.function or "").upper()
        if not raw:
            self.fail(Message.FIELD_MISSING, "Partner function is missing", place)
            return None
        function = ENGLISH_FUNCTIONS.get(raw, raw)
        known = CUSTOMER_FUNCTIONS | PERSONNEL_FUNCTIONS | CONTACT_FUNCTIONS
        if function not in known:
            self.fail(
                Message.PARTNER_INVALID,
                f"Partner function {raw} is not defined for sales orders",
                f"{place}/PartnerFunction",
            )
            return None
        return function

    def _party(self, function: str, partner: PartnerRequest, place: str) -> None:
        if function in CUSTOMER_FUNCTIONS:
            party = partner.party
            if not party:
                self.fail(
                    Message.FIELD_MISSING,
                    f"Partner function {function} needs a customer",
                    f"{place}/Customer",
                )
            elif self.master.customer(party) is None:
                self.fail(
                    Message.CUSTOMER_UNKNOWN,
                    f"Customer {party} does not exist",
                    f"{place}/{'Customer' if partner.customer else 'BusinessPartnerID'}",
                )
        elif function in PERSONNEL_FUNCTIONS and not partner.personnel:
            self.fail(
                Message.FIELD_MISSING,
                f"Partner function {function} needs a personnel number",
                f"{place}/Personnel",
            )
        elif function in CONTACT_FUNCTIONS and not partner.contact_person:
            self.fail(
                Message.FIELD_MISSING,
                f"Partner function {function} needs a contact person",
                f"{place}/ContactPerson",
            )

    def _sold_to(
        self, partners: dict[str, PartnerRequest], area: list[str | None]
    ) -> tuple[str | None, Record | None]:
        partner = partners.get(SOLD_TO)
        if partner is None:
            self.fail(
                Message.SOLD_TO_MISSING,
                "Sold-to party is missing: give a Partner with PartnerFunction AG (or SP)",
                f"{self.where}/Partner",
            )
            return None, None
        party = partner.party
        customer = self.master.customer(party) if party else None
        if party is None or customer is None or None in area:
            return None, None
        organization, channel, division = (value or "" for value in area)
        sales_area = self.master.sales_area(party, organization, channel, division)
        place = f"{self.where}/Partner"
        if sales_area is None or sales_area.values.get("DeletionIndicator"):
            self.fail(
                Message.SALES_AREA_MISSING,
                f"Sold-to party {alpha(party)} is not maintained for sales area "
                f"{organization}/{channel}/{division}",
                place,
            )
            return None, None
        block = customer.values.get("OrderIsBlockedForCustomer") or sales_area.values.get(
            "OrderIsBlockedForCustomer"
        )
        if block:
            self.fail(
                Message.CUSTOMER_BLOCKED,
                f"Sold-to party {alpha(party)} is blocked for sales orders (block {block})",
                place,
            )
            return None, None
        return alpha(party), sales_area

    def _items(self, area: list[str | None]) -> list[ResolvedItem]:
        if not self.order.items:
            self.fail(Message.NO_ITEMS, "The sales order has no items", f"{self.where}/Item")
            return []
        resolved: list[ResolvedItem] = []
        numbers: set[str] = set()
        highest = 0
        for item in self.order.items:
            place = f"{self.where}/Item[{item.position}]"
            number = self._item_number(item, place, numbers, highest)
            if number is not None:
                numbers.add(number)
                highest = max(highest, int(number))
            checked = self._item(item, place, area)
            if checked is not None and number is not None:
                product, sales, unit = checked
                partners = self._partners(item.partners, place)
                higher = item.fields.get("HigherLevelItem")
                resolved.append(
                    ResolvedItem(
                        item,
                        number,
                        product,
                        sales,
                        unit,
                        alpha(higher) if higher else None,
                        partners,
                    )
                )
        for entry in resolved:
            if entry.higher_level is not None and entry.higher_level not in numbers:
                self.fail(
                    Message.ITEM_NUMBER_INVALID,
                    f"Higher-level item {entry.higher_level} does not exist in the order",
                    f"{self.where}/Item[{entry.request.position}]/HigherLevelItem",
                )
        return resolved

    def _item_number(
        self, item: ItemRequest, place: str, taken: set[str], highest: int
    ) -> str | None:
        given = item.fields.get("SalesOrderItemID")
        number = alpha(given) if given else str((highest // 10 + 1) * 10)
        if number == "0" or number in taken:
            self.fail(
                Message.ITEM_NUMBER_INVALID,
                f"Item number {given} is {'zero' if number == '0' else 'used twice'}",
                f"{place}/SalesOrderItemID",
            )
            return None
        return number

    def _item(
        self, item: ItemRequest, place: str, area: list[str | None]
    ) -> tuple[Record, Record, str] | None:
        if item.action not in CREATING_ACTIONS:
            self.fail(
                Message.ACTION_NOT_SUPPORTED,
                f"Action code {item.action} is not supported for an item of a new order",
                f"{place}/@actionCode",
            )
        for index, pricing in enumerate(item.pricing, start=1):
            self._pricing(pricing, f"{place}/PricingElement[{index}]")
        quantity_ok = self._quantity(item.quantity, place)
        material = item.fields.get("Material", "")
        if not material:
            self.fail(Message.FIELD_MISSING, "Product is missing", f"{place}/Material")
            return None
        product = self.master.product(material)
        if product is None:
            self.fail(
                Message.PRODUCT_UNKNOWN, f"Product {material} does not exist", f"{place}/Material"
            )
            return None
        if product.values.get("IsMarkedForDeletion"):
            self.fail(
                Message.PRODUCT_DELETED,
                f"Product {material} is flagged for deletion",
                f"{place}/Material",
            )
            return None
        organization, channel = area[0], area[1]
        if organization is None or channel is None:
            return None
        sales = self.master.product_sales(material, organization, channel)
        if sales is None or sales.values.get("IsMarkedForDeletion"):
            self.fail(
                Message.PRODUCT_NOT_IN_SALES_AREA,
                f"Product {material} is not defined for sales organization {organization}, "
                f"distribution channel {channel}",
                f"{place}/Material",
            )
            return None
        unit = self._unit(item, product, sales, place)
        if unit is None or not quantity_ok:
            return None
        return product, sales, unit

    def _quantity(self, quantity: Decimal | None, place: str) -> bool:
        if quantity is None:
            self.fail(
                Message.FIELD_MISSING, "Requested quantity is missing", f"{place}/RequestedQuantity"
            )
            return False
        if quantity <= 0:
            self.fail(
                Message.QUANTITY_NOT_POSITIVE,
                f"Requested quantity {quantity} is not positive",
                f"{place}/RequestedQuantity",
            )
            return False
        return True

    def _unit(self, item: ItemRequest, product: Record, sales: Record, place: str) -> str | None:
        allowed = {
            u for u in (sales.values.get("SalesMeasureUnit"), product.values.get("BaseUnit")) if u
        }
        if item.unit is None:
            return str(sales.values.get("SalesMeasureUnit") or product.values.get("BaseUnit"))
        unit = ISO_TO_SAP_UNIT.get(item.unit)
        if unit is None:
            self.fail(
                Message.UNIT_INVALID,
                f"Unit of measure {item.unit} is not an ISO code known to this system",
                f"{place}/RequestedQuantity/@unitCode",
            )
            return None
        if unit not in allowed:
            self.fail(
                Message.UNIT_INVALID,
                f"Unit of measure {item.unit} ({unit}) is not defined for product "
                f"{product.values['Product']} (units: {', '.join(sorted(allowed))})",
                f"{place}/RequestedQuantity/@unitCode",
            )
            return None
        return unit

    def _pricing(self, pricing: PricingRequest, place: str) -> None:
        if pricing.action not in CREATING_ACTIONS:
            self.fail(
                Message.ACTION_NOT_SUPPORTED,
                f"Action code {pricing.action} is not supported for a pricing element of a new "
                "order",
                f"{place}/@actionCode",
            )
        if not pricing.condition_type:
            self.fail(
                Message.CONDITION_INVALID, "Condition type is missing", f"{place}/ConditionType"
            )
        if pricing.quantity_unit is not None and pricing.quantity_unit not in ISO_TO_SAP_UNIT:
            self.fail(
                Message.UNIT_INVALID,
                f"Unit of measure {pricing.quantity_unit} is not an ISO code known to this system",
                f"{place}/ConditionQuantity/@unitCode",
            )
        if pricing.quantity == 0:
            self.fail(
                Message.CONDITION_INVALID,
                "Condition pricing unit 0 is not allowed",
                f"{place}/ConditionQuantity",
            )


_AREA_LABELS = ("Sales organization", "Distribution channel", "Division")


def check_order(
    order: OrderRequest, master: MasterData, order_types: list[str]
) -> tuple[ResolvedOrder | None, list[LogItem]]:
    """The resolved order, or None and every error found."""
    checker = _Checker(order, master, order_types)
    resolved = checker.run()
    if checker.errors:
        return None, checker.errors
    return resolved, []

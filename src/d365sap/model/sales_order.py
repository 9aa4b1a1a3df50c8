"""Sales orders: the Dynamics order as d365sap reads it, and the canonical order S/4 receives.

:class:`DynamicsOrder` is what the Dynamics side says about one submitted order and its lines,
whether it came as a push to the legacy endpoint or was read from Dataverse: ids, numbers, the
customer account, currency, dates and the values of the columns that feed S/4's custom fields.

:class:`SalesOrder` is the order in S/4's terms, built from a :class:`DynamicsOrder`, the
customer's S/4 keys from the key registry and the configuration: order type and sales area,
sold-to party, the purchase order reference, items with product, quantity and ISO unit, and the
eight YY1 custom fields of the Microsoft Dynamics integration. The bulk mapping turns it into a
``SalesOrder`` node of SalesOrderBulkRequest; it knows no wire format itself.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DynamicsOrderLine(_Frozen):
    """One order product (``salesorderdetail``)."""

    line_id: UUID
    line_number: int | None = None
    sequence: int | None = None
    product_number: str | None = None
    description: str | None = None
    quantity: Decimal
    unit: str | None = Field(default=None, description="Dynamics unit name (uom), e.g. Each")
    price_per_unit: Decimal | None = None
    project_flag: bool | None = None
    opportunity: str | None = None


class DynamicsOrder(_Frozen):
    """One Dynamics order (``salesorder``) with its lines, as submitted."""

    order_id: UUID
    order_number: str
    name: str | None = None
    erp_system_type: str | None = Field(
        default=None, description="the order's SAP system as the package routes it (S4HC)"
    )
    state: int | None = Field(default=None, description="statecode; 1 is Submitted")
    customer_id: UUID | None = Field(default=None, description="the ordering account")
    sold_to: str | None = Field(
        default=None, description="S/4 customer given by the sender instead of the key registry"
    )
    sales_organization: str | None = None
    distribution_channel: str | None = None
    division: str | None = None
    currency: str | None = None
    requested_delivery: date | None = None
    quote_number: str | None = None
    opportunity: str | None = None
    project_flag: bool | None = None
    lines: tuple[DynamicsOrderLine, ...] = ()


class SalesArea(_Frozen):
    """S/4 sales organisation, distribution channel and division."""

    sales_organization: str
    distribution_channel: str
    division: str

    def __str__(self) -> str:
        return f"{self.sales_organization}/{self.distribution_channel}/{self.division}"


class SoldTo(_Frozen):
    """The S/4 customer an order is for, and the sales area it is ordered in."""

    customer: str
    sales_area: SalesArea
    source: str = Field(description="where the keys came from: key registry or the sender")


class OrderCustomFields(_Frozen):
    """The header's YY1 fields of the Dynamics integration."""

    project_flag: bool | None = None
    project_opportunity: str | None = None
    crm_quote_number: str | None = None
    crm_order_number: str | None = None
    crm_order_id: str | None = None


class ItemCustomFields(_Frozen):
    """The item's YY1 fields of the Dynamics integration."""

    crm_order_item_id: str | None = None
    project_flag: bool | None = None
    project_opportunity: str | None = None


class SalesOrderItem(_Frozen):
    """One S/4 order item."""

    item_number: str
    product: str
    quantity: Decimal
    unit_code: str | None = None
    text: str | None = None
    plant: str | None = None
    price: Decimal | None = None
    price_condition_type: str | None = None
    custom: ItemCustomFields = Field(default_factory=ItemCustomFields)


class SalesOrder(_Frozen):
    """One S/4 sales order as SalesOrderBulkRequest_In receives it."""

    order_id: str = Field(description="the Dynamics order id: the reference S/4 echoes")
    order_type: str
    sales_area: SalesArea
    sold_to: str
    sold_to_function: str = "AG"
    purchase_order_by_customer: str
    external_document_id: str | None = None
    customer_purchase_order_type: str | None = None
    sales_group: str | None = None
    sales_office: str | None = None
    currency: str | None = None
    requested_delivery: date | None = None
    payment_terms: str | None = None
    shipping_condition: str | None = None
    items: tuple[SalesOrderItem, ...]
    custom: OrderCustomFields = Field(default_factory=OrderCustomFields)

    @property
    def line_count(self) -> int:
        """How many items the order has."""
        return len(self.items)

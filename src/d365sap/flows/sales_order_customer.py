"""Who orders: the S/4 sold-to party and sales area of a Dynamics order's customer.

The customer flows record, per Dataverse account and target system, which S/4 customer it
became and which of its sales areas exist (the key registry, :mod:`d365sap.engine.xref`). An
order can go to S/4 only once its customer is there: the sold-to party is the registry's
customer number, the sales area the registry's (confirmed) sales area of that customer. A
customer with several sales areas orders in the one configured as ``[sales_orders] sales_area``.

A pushed order may name the S/4 customer and sales area itself (``soldtoparty`` with the sales
area); then the registry is not asked.
"""

from __future__ import annotations

from d365sap.engine.xref import KeyEntry, KeyRegistry
from d365sap.engine.xref_sql import CONFIRMED
from d365sap.errors import PermanentError
from d365sap.model.sales_order import DynamicsOrder, SalesArea, SoldTo

S4_TARGET = "s4hc"


def parse_sales_area(text: str | None) -> SalesArea | None:
    """``1710/10/00`` as a :class:`SalesArea` (``None`` for no text)."""
    if not text:
        return None
    organization, channel, division = text.split("/")
    return SalesArea(
        sales_organization=organization, distribution_channel=channel, division=division
    )


def _area(entry: KeyEntry) -> SalesArea | None:
    area = entry.sales_area
    if area is None:
        return None
    return SalesArea(
        sales_organization=area.sales_org,
        distribution_channel=area.distribution_channel,
        division=area.division,
    )


class CustomerKeys:
    """Finds the S/4 keys of an order's customer."""

    def __init__(self, registry: KeyRegistry, *, preferred: SalesArea | None = None) -> None:
        self.registry = registry
        self.preferred = preferred

    def sold_to(self, order: DynamicsOrder) -> SoldTo | None:
        """The sold-to party and sales area; ``None`` while the customer is not synchronised.

        Raises :class:`PermanentError` when the customer has several sales areas and none is
        configured to choose between them.
        """
        if order.sold_to:
            assert order.sales_organization is not None
            assert order.distribution_channel is not None
            assert order.division is not None
            return SoldTo(
                customer=order.sold_to,
                sales_area=SalesArea(
                    sales_organization=order.sales_organization,
                    distribution_channel=order.distribution_channel,
                    division=order.division,
                ),
                source="sender",
            )
        if order.customer_id is None:
            raise PermanentError("the order names no customer", status=400)
        entries = self.registry.entries(
            target_system=S4_TARGET,
            account_id=str(order.customer_id),
            state=CONFIRMED,
            limit=None,
        )
        areas: list[tuple[SalesArea, str]] = []
        for entry in entries:
            area = _area(entry)
            if area is not None and entry.customer:
                areas.append((area, entry.customer))
        if self.preferred is not None:
            areas = [(area, customer) for area, customer in areas if area == self.preferred]
        if not areas:
            return None
        if len(areas) > 1:
            listed = ", ".join(sorted(str(area) for area, _ in areas))
            raise PermanentError(
                f"customer {order.customer_id} has several S/4 sales areas ({listed}); "
                "name the one to order in as [sales_orders] sales_area",
                status=422,
            )
        area, customer = areas[0]
        return SoldTo(customer=customer, sales_area=area, source="key registry")

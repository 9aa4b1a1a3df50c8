"""Reading S/4HANA Cloud's API_SALES_ORDER_SRV: which Dynamics orders S/4 has created.

SalesOrderBulkRequest_In answers only "received". When no confirmation channel is configured
(the package's guide leaves S/4's outbound services deactivated, G6), d365sap finds its orders
afterwards by the custom field S/4 keeps from the request: ``YY1_CRMOrderID_SDH``, the Dynamics
order id. One request looks up several orders (``… eq 'a' or … eq 'b'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from d365sap.connectors.odata_v2 import string_literal
from d365sap.connectors.s4_odata import S4ODataClient
from d365sap.errors import PermanentError

ORDER_SET = "A_SalesOrder"
ORDER_ID_FIELD = "YY1_CRMOrderID_SDH"
_SELECTED = (
    "SalesOrder",
    ORDER_ID_FIELD,
    "PurchaseOrderByCustomer",
    "SalesOrderType",
    "OverallSDProcessStatus",
    "CreationDate",
)


@dataclass(frozen=True)
class FoundOrder:
    """An order S/4 holds for a Dynamics order."""

    sales_order: str
    order_id: str
    purchase_order: str | None
    status: str | None


class SalesOrderReader(S4ODataClient):
    """API_SALES_ORDER_SRV, read-only."""

    async def find_orders(self, order_ids: Sequence[str]) -> dict[str, list[FoundOrder]]:
        """Per Dynamics order id, the S/4 orders carrying it (oldest number first)."""
        wanted = [order_id for order_id in dict.fromkeys(order_ids) if order_id]
        found: dict[str, list[FoundOrder]] = {order_id: [] for order_id in wanted}
        if not wanted:
            return found
        condition = " or ".join(f"{ORDER_ID_FIELD} eq {string_literal(o)}" for o in wanted)
        params = {"$filter": condition, "$select": ",".join(_SELECTED)}
        response = await self._send("GET", self.url(ORDER_SET), params=params)
        if response.status_code != 200:
            raise self._fail(response)
        try:
            results = response.json()["d"]["results"]
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(
                f"{self.system}: unexpected reply to GET {ORDER_SET}: {response.text[:200]}",
                status=response.status_code,
            ) from exc
        for entity in results if isinstance(results, list) else []:
            order_id = str(entity.get(ORDER_ID_FIELD) or "")
            number = entity.get("SalesOrder")
            if order_id in found and isinstance(number, str) and number:
                found[order_id].append(
                    FoundOrder(
                        sales_order=number,
                        order_id=order_id,
                        purchase_order=entity.get("PurchaseOrderByCustomer") or None,
                        status=entity.get("OverallSDProcessStatus") or None,
                    )
                )
        for orders in found.values():
            orders.sort(key=lambda order: (len(order.sales_order), order.sales_order))
        return found

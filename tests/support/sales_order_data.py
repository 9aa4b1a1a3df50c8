"""Sample Dynamics orders and helpers around the S/4 emulator's sales order admin routes."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import httpx2

from d365sap.model.sales_order import DynamicsOrder, DynamicsOrderLine, SalesArea, SoldTo

ACCOUNT = uuid.UUID("e2f3a4b5-c6d7-4e8f-9a0b-1c2d3e4f5a6c")
AREA = SalesArea(sales_organization="1710", distribution_channel="10", division="00")
SOLD_TO = SoldTo(customer="17100002", sales_area=AREA, source="key registry")
SOAP_PATH = "/sap/bc/srt/scs_ext/sap/salesorderbulkrequest_in"
SO_SERVICE = "/sap/opu/odata/sap/API_SALES_ORDER_SRV"
S4_USER = ("S4_COMM_USER", "Welcome1!")


def line(product: str | None = "CP-100", quantity: str = "2", **changes: Any) -> DynamicsOrderLine:
    values: dict[str, Any] = {
        "line_id": uuid.uuid4(),
        "product_number": product,
        "quantity": Decimal(quantity),
        "unit": "Each",
    }
    values.update(changes)
    return DynamicsOrderLine(**values)


def order(*lines: DynamicsOrderLine, **changes: Any) -> DynamicsOrder:
    values: dict[str, Any] = {
        "order_id": uuid.uuid4(),
        "order_number": f"ORD-{uuid.uuid4().hex[:6].upper()}",
        "erp_system_type": "S4HC",
        "state": 1,
        "customer_id": ACCOUNT,
        "currency": "USD",
        "requested_delivery": date(2026, 6, 30),
        "quote_number": "QUO-1",
        "opportunity": "OPP-1",
        "project_flag": True,
        "lines": lines or (line(),),
    }
    values.update(changes)
    return DynamicsOrder(**values)


def pushed_json(dynamics: DynamicsOrder) -> bytes:
    """``dynamics`` as the legacy push's JSON (with its sold-to party when it names one)."""
    import json

    document: dict[str, Any] = {
        "erpsystemtype": dynamics.erp_system_type,
        "salesorderid": str(dynamics.order_id),
        "ordernumber": dynamics.order_number,
        "customerid": str(dynamics.customer_id) if dynamics.customer_id else None,
        "transactioncurrency": dynamics.currency,
        "lines": [
            {
                "salesorderdetailid": str(item.line_id),
                "productnumber": item.product_number,
                "quantity": str(item.quantity),
                "uom": item.unit,
            }
            for item in dynamics.lines
        ],
    }
    if dynamics.sold_to:
        document.update(
            soldtoparty=dynamics.sold_to,
            salesorganization=dynamics.sales_organization,
            distributionchannel=dynamics.distribution_channel,
            division=dynamics.division,
        )
    return json.dumps({k: v for k, v in document.items() if v is not None}).encode()


class S4Admin:
    """The S/4 emulator's admin routes for sales orders and faults."""

    def __init__(self, url: str) -> None:
        self.url = url

    def reset(self) -> None:
        httpx2.post(f"{self.url}/emulator/reset").raise_for_status()
        httpx2.delete(f"{self.url}/emulator/faults").raise_for_status()

    def next_fault(self, kind: str, count: int = 1, status: int | None = None) -> None:
        shot: dict[str, Any] = {"kind": kind, "count": count}
        if status is not None:
            shot["status"] = status
        httpx2.post(f"{self.url}/emulator/faults/next", json=shot).raise_for_status()

    def messages(self) -> list[dict[str, Any]]:
        answer = httpx2.get(f"{self.url}/emulator/sales-orders/messages")
        answer.raise_for_status()
        return list(answer.json()["messages"])

    def wait(self, timeout: float = 15.0) -> None:
        answer = httpx2.post(
            f"{self.url}/emulator/sales-orders/wait", params={"timeout": timeout}, timeout=30
        )
        assert answer.json()["idle"], self.messages()

    def orders(self, order_id: str) -> list[dict[str, Any]]:
        answer = httpx2.get(
            f"{self.url}{SO_SERVICE}/A_SalesOrder",
            params={"$format": "json", "$filter": f"YY1_CRMOrderID_SDH eq '{order_id}'"},
            auth=S4_USER,
        )
        answer.raise_for_status()
        return list(answer.json()["d"]["results"])

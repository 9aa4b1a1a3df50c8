"""``/emulator/sales-orders/*`` and ``/emulator/products``: what the SOAP service received and did.

Unauthenticated like every admin route of the emulators (they listen on loopback) and not part
of the emulated SAP contract.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query

from d365sap.emulators.s4.sales_orders.system import SalesOrderSystem


def sales_order_router(system: SalesOrderSystem) -> APIRouter:
    """The admin routes bound to one emulator's sales order system."""
    router = APIRouter(prefix="/emulator", tags=["emulator"])

    @router.get("/sales-orders/messages")
    def messages() -> dict[str, Any]:
        """Received bulk messages, oldest first, with their state and each order's outcome."""
        return {"messages": system.inbound.messages()}

    @router.get("/sales-orders/messages/{seq}")
    def message(seq: int) -> dict[str, Any]:
        """One message with its request body and the confirmations sent for it."""
        found = system.inbound.message(seq)
        if found is None:
            raise HTTPException(404, f"no message {seq}")
        return found

    @router.get("/sales-orders/confirmations")
    def confirmations() -> dict[str, Any]:
        """Confirmation deliveries with their attempts."""
        return {"confirmations": system.sender.deliveries()}

    @router.get("/sales-orders/confirmations/{delivery_id}")
    def confirmation(delivery_id: int) -> dict[str, Any]:
        """One delivery with the posted XML."""
        found = system.sender.delivery(delivery_id)
        if found is None:
            raise HTTPException(404, f"no confirmation {delivery_id}")
        return found

    @router.get("/sales-orders/errors")
    def errors() -> dict[str, Any]:
        """The web service error log: every refused request by transaction id."""
        return {"errors": system.error_log.entries()}

    @router.post("/sales-orders/wait")
    async def wait(timeout: float = Query(default=10.0, gt=0, le=300)) -> dict[str, Any]:
        """Wait until every message is processed and every confirmation settled."""
        return {"idle": await system.inbound.wait_idle(timeout)}

    @router.get("/products")
    def products() -> dict[str, Any]:
        """The product master orders are checked against."""
        return {"products": system.master.products()}

    return router

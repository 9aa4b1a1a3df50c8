"""Inspection and control routes under ``/emulator``: what arrived, what got posted, reset.

These are the emulator's own routes, not SAP's: demos and tests use them to see IDoc numbers,
statuses and the customer master as posted, and to return to the seed between scenarios. They need
no authentication because the emulator is meant to listen on loopback.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from d365sap.emulators.erp.auth import SYSTEM_ID
from d365sap.emulators.erp.state import ErpState
from d365sap.emulators.settings import ErpEmulatorSettings


def _not_found(detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=404)


def admin_router(state: ErpState, settings: ErpEmulatorSettings) -> APIRouter:
    """The ``/emulator`` routes bound to one emulator's state."""
    router = APIRouter(prefix="/emulator", tags=["emulator"])

    @router.get("/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "system": SYSTEM_ID,
            "sap_client": settings.sap_client,
            **state.counts(),
        }

    @router.get("/idocs")
    def list_idocs() -> dict[str, Any]:
        return {"idocs": state.idocs()}

    @router.get("/idocs/{docnum}", response_model=None)
    def get_idoc(docnum: str) -> dict[str, Any] | JSONResponse:
        found = state.idoc(docnum)
        return found if found is not None else _not_found(f"IDoc {docnum} does not exist")

    @router.get("/customers")
    def list_customers() -> dict[str, Any]:
        return {"customers": state.customers()}

    @router.get("/customers/{kunnr}", response_model=None)
    def get_customer(kunnr: str) -> dict[str, Any] | JSONResponse:
        found = state.customer(kunnr)
        return found if found is not None else _not_found(f"Customer {kunnr} does not exist")

    @router.post("/reset")
    def reset() -> dict[str, str]:
        state.reset()
        return {"status": "reset"}

    return router

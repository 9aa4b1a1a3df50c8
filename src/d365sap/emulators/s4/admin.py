"""``/emulator/*``: inspection and control routes for demos and tests.

They are unauthenticated on purpose (the emulator listens on loopback) and never part of the
emulated SAP contract: journal of modifying requests, reset to seed, CSRF expiry, health.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from d365sap.emulators.s4.state import SERVICE_ROOT, EmulatorState


def admin_router(state: EmulatorState) -> APIRouter:
    """The admin routes bound to ``state``."""
    router = APIRouter(prefix="/emulator", tags=["emulator"])

    @router.get("/health")
    def health() -> dict[str, Any]:
        """Liveness plus the number of entities per entity set of every hosted service."""
        return {
            "status": "ok",
            "service": SERVICE_ROOT,
            "sap_system_id": state.settings.sap_system_id,
            "sap_client": state.settings.sap_client,
            "services": [host.root for host in state.hosts.values()],
            "entities": state.entity_counts(),
        }

    @router.get("/requests")
    def requests() -> dict[str, Any]:
        """The journal of modifying OData requests, oldest first."""
        return {"requests": state.journal.entries()}

    @router.delete("/requests", status_code=204)
    def clear_requests() -> Response:
        """Empty the journal."""
        state.journal.clear()
        return Response(status_code=204)

    @router.post("/reset")
    def reset() -> dict[str, Any]:
        """Back to the seed data (and an empty journal)."""
        state.reset()
        return {"status": "reset", "entities": state.entity_counts()}

    @router.post("/csrf/expire")
    def expire_csrf() -> dict[str, Any]:
        """Invalidate every CSRF token; clients must fetch a new one."""
        return {"status": "expired", "tokens": state.csrf.expire_all()}

    return router

"""``/emulator/faults``: read, replace, clear and queue injected faults while the emulator runs.

Configuration sets the faults an emulator starts with; a test steering a running emulator needs to
change them between scenarios without a restart, and to see how many faults it actually injected.
The routes are the same for both emulators; each one only differs in the kinds it supports.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from d365sap.emulators.faults import FaultController, FaultSettings, OneShot


def _unprocessable(problems: list[tuple[str, str, Any]]) -> JSONResponse:
    """FastAPI's own 422 shape, so clients read every validation error the same way."""
    detail = [
        {"type": "value_error", "loc": ["body", where], "msg": message, "input": given}
        for where, message, given in problems
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def fault_router(controller: FaultController) -> APIRouter:
    """The fault routes bound to one emulator's controller."""
    router = APIRouter(prefix="/emulator/faults", tags=["emulator"])

    @router.get("")
    def current() -> dict[str, Any]:
        """Settings in force, queued one-shot faults and counters of injected faults by kind."""
        return controller.snapshot()

    @router.put("", response_model=None)
    def replace(settings: FaultSettings) -> dict[str, Any] | JSONResponse:
        """Replace the settings as a whole (omitted fields are off); queue and counters stay."""
        problems = settings.unsupported(controller.supported)
        if problems:
            return _unprocessable([(f, m, getattr(settings, f)) for f, m in problems])
        controller.replace(settings)
        return controller.snapshot()

    @router.delete("")
    def clear() -> dict[str, Any]:
        """All faults off, queue emptied, counters reset."""
        controller.clear()
        return controller.snapshot()

    @router.post("/next", response_model=None)
    def next_requests(shot: OneShot) -> dict[str, Any] | JSONResponse:
        """Give the next ``count`` requests the fault applies to the fault ``kind``."""
        if shot.kind not in controller.supported:
            supported = ", ".join(sorted(kind.value for kind in controller.supported))
            message = f"{shot.kind.value} faults are not available here; one of {supported}"
            return _unprocessable([("kind", message, shot.kind.value)])
        controller.queue(shot)
        return controller.snapshot()

    return router

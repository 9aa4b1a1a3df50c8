"""``GET /api/dataverse/stats``: what this service process did with Dataverse.

For operators and the load benchmark: the native flow's Dataverse client (requests, 429
answers, token renewals), the deployment-wide throttle as this process saw it (requests let
through, waits and the seconds spent waiting; the stored pause and the requests counted in the
window), and the delta poll (rounds, messages submitted, failures, where each table's change
tracking stands). Counters are this process's since it started.
"""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from d365sap.service import Service

router = APIRouter(prefix="/api")


def _plain(value: object) -> dict[str, Any] | None:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return None


@router.get("/dataverse/stats")
async def dataverse_stats(request: Request) -> JSONResponse:
    """Dataverse client, throttle and delta poll figures of this process."""
    service: Service = request.app.state.service
    parts = service.dataverse
    if parts is None:
        return JSONResponse({"flow": False})
    client = parts.client
    throttle = client.throttle
    body: dict[str, Any] = {
        "flow": True,
        "client": _plain(client.stats),
        "throttle": _plain(getattr(throttle, "stats", None)),
    }
    state = getattr(throttle, "state", None)
    if callable(state):
        body["throttle_state"] = _plain(await service.store.call(state))
    poller = service.poller
    if poller is not None:
        stats = poller.stats
        body["poll"] = {
            "interval_seconds": poller.interval_seconds,
            "rounds": stats.rounds,
            "rebaselines": stats.rebaselines,
            "submitted": stats.submitted,
            "duplicates": stats.duplicates,
            "errors": stats.errors,
            "last_error": stats.last_error,
            "checkpoints": {name: asdict(report) for name, report in stats.reports.items()},
        }
    return JSONResponse(body)

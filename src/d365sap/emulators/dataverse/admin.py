"""``/emulator/*`` of the Dataverse emulator: inspection and control for demos and tests.

Unauthenticated on purpose (the emulator listens on loopback) and never part of the emulated
Web API: health and row counts, reset to the seed, replacing the seed, and rows exactly as
stored (every column, lookups with the table they point at, the row version).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from d365sap.emulators.dataverse.environment import API_ROOT, DataverseEnvironment
from d365sap.emulators.dataverse.seed import SeedError, apply_seed
from d365sap.emulators.dataverse.store import Row, Store
from d365sap.emulators.dataverse.values import to_json
from d365sap.emulators.dataverse.writes import Writer


def _stored(row: Row) -> dict[str, Any]:
    return {name: to_json(value) for name, value in row.items()}


def _not_found(what: str) -> JSONResponse:
    return JSONResponse({"detail": f"{what} not found"}, status_code=404)


def admin_router(environment: DataverseEnvironment) -> APIRouter:
    """The admin routes bound to ``environment``."""
    router = APIRouter(prefix="/emulator", tags=["emulator"])
    store = environment.store

    @router.get("/health")
    def health() -> dict[str, Any]:
        """Liveness, where the Web API is, and the number of rows per table."""
        return {
            "status": "ok",
            "web_api": API_ROOT + "/",
            "resource_url": environment.issuer.resource_url,
            "tenant_id": environment.issuer.settings.tenant_id,
            "seed": environment.seed_source,
            "version": store.version,
            "rows": store.counts(),
        }

    @router.post("/reset")
    def reset() -> dict[str, Any]:
        """Back to the seed (faults, tokens and webhooks stay)."""
        environment.reset()
        return {"status": "reset", "rows": store.counts()}

    @router.put("/seed", response_model=None)
    def replace_seed(document: Any = Body(...)) -> dict[str, Any] | JSONResponse:  # noqa: B008
        """Use ``document`` as the seed from now on and reset to it; 422 if it is unusable."""
        trial = Store(environment.schema)
        writer = Writer(
            environment.schema,
            trial,
            enforce_business_required=environment.settings.enforce_business_required,
            base_currency=environment.settings.base_currency,
        )
        try:
            apply_seed(environment.schema, trial, writer, document, "request body")
        except SeedError as exc:
            detail = [{"type": "value_error", "loc": ["body"], "msg": str(exc), "input": None}]
            return JSONResponse({"detail": detail}, status_code=422)
        environment.seed_document = document
        environment.seed_source = "PUT /emulator/seed"
        environment.reset()
        return {"status": "seeded", "rows": store.counts()}

    @router.get("/rows/{entity_set}", response_model=None)
    def rows(entity_set: str) -> dict[str, Any] | JSONResponse:
        """Every row of one table as stored, in creation order."""
        table = environment.schema.by_set.get(entity_set)
        if table is None:
            return _not_found(f"entity set {entity_set}")
        return {"value": [_stored(row) for row in store.rows(table.logical_name)]}

    @router.get("/rows/{entity_set}/{row_id}", response_model=None)
    def row(entity_set: str, row_id: str) -> dict[str, Any] | JSONResponse:
        """One row as stored."""
        table = environment.schema.by_set.get(entity_set)
        if table is None:
            return _not_found(f"entity set {entity_set}")
        found = store.get(table.logical_name, row_id.lower())
        if found is None:
            return _not_found(f"{table.logical_name} {row_id}")
        return _stored(found)

    return router

"""The service's FastAPI application: inbound endpoints, the message API and health.

The lifespan assembles the :class:`~d365sap.service.Service` (store, clients, flows, runtime)
from the settings, starts its workers, and stops everything on shutdown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from d365sap import __version__
from d365sap.config import Settings
from d365sap.engine.store import MessageStore
from d365sap.service import Service
from d365sap.web import api, dataverse_stats, inbound, sales_orders, webhooks
from d365sap.web.auth import BasicAuthenticator


def create_app(settings: Settings, *, store: MessageStore | None = None) -> FastAPI:
    """Build the service app; ``store`` may be shared with the caller (tests, the demo)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service(settings, store=store)
        app.state.settings = settings
        app.state.service = service
        app.state.store = service.store
        app.state.authenticator = BasicAuthenticator(settings.inbound)
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title="d365sap", version=__version__, lifespan=lifespan)
    app.include_router(inbound.router)
    app.include_router(api.router)
    app.include_router(webhooks.router)
    app.include_router(dataverse_stats.router)
    app.include_router(sales_orders.router)

    @app.get("/health", include_in_schema=False)
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    return app

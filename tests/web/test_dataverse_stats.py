"""``GET /api/dataverse/stats`` of a service without the native flow (with it: end-to-end tests)."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest
from fastapi import FastAPI

from d365sap.config import Settings
from d365sap.service import Service
from d365sap.web import dataverse_stats

pytestmark = pytest.mark.anyio


async def test_without_the_flow(tmp_path: Path) -> None:
    settings = Settings()
    settings.store.url = f"sqlite:///{tmp_path / 'store.db'}"
    settings.dataverse_flow.enabled = False
    app = FastAPI()
    app.include_router(dataverse_stats.router)
    service = Service(settings, serve_jobs=False)
    app.state.service = service
    try:
        async with httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app), base_url="http://service"
        ) as http:
            response = await http.get("/api/dataverse/stats")
    finally:
        await service.stop()
    assert response.status_code == 200
    assert response.json() == {"flow": False}

"""One ERP emulator per test module on a loopback port; each test starts from the seed."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

from d365sap.emulators.erp.app import create_app
from d365sap.emulators.settings import ErpEmulatorSettings
from d365sap.web.serving import BackgroundServer, serving
from emulators.erp.erp_support import AUTH


@pytest.fixture(scope="module")
def erp_server() -> Iterator[BackgroundServer]:
    with serving(create_app(ErpEmulatorSettings()), name="erp-emulator") as server:
        yield server


@pytest.fixture
def erp(erp_server: BackgroundServer) -> Iterator[httpx2.Client]:
    """A client with the default IDoc user, against an emulator reset to its seed."""
    with httpx2.Client(base_url=erp_server.url, auth=AUTH, timeout=10.0) as client:
        client.post("/emulator/reset").raise_for_status()
        yield client

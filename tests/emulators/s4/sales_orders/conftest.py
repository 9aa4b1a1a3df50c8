"""An S/4 emulator for the SalesOrderBulkRequest_In tests; every test starts from the seed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from d365sap.emulators.s4.app import create_app
from d365sap.emulators.settings import S4EmulatorSettings
from d365sap.web.serving import BackgroundServer, serving
from emulators.s4.sales_orders.so_support import SalesOrderClient


@pytest.fixture(scope="session")
def so_server() -> Iterator[BackgroundServer]:
    with serving(create_app(S4EmulatorSettings()), name="s4-sales-orders") as server:
        yield server


@pytest.fixture
def so(so_server: BackgroundServer) -> Iterator[SalesOrderClient]:
    client = SalesOrderClient(so_server.url)
    client.reset()
    client.admin("DELETE", "faults")
    yield client
    client.close()

"""One emulator server for the whole S/4 test package; every test starts from the seed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from d365sap.emulators.s4.app import create_app
from d365sap.emulators.settings import S4EmulatorSettings
from d365sap.web.serving import BackgroundServer, serving
from emulators.s4.s4_support import S4


@pytest.fixture(scope="session")
def s4_server() -> Iterator[BackgroundServer]:
    with serving(create_app(S4EmulatorSettings()), name="s4-emulator") as server:
        yield server


@pytest.fixture
def s4(s4_server: BackgroundServer) -> Iterator[S4]:
    client = S4(s4_server.url)
    client.reset()
    yield client
    client.close()

"""End-to-end fixtures: both emulators and the service on loopback ports, talking real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from d365sap.config import IdocControlSettings, Settings
from d365sap.demo import DemoEnvironment
from support.e2e import MakeStack, Stack


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[MakeStack]:
    stacks: list[Stack] = []

    def start(**overrides: Any) -> Stack:
        """A stack; ``dataverse=True`` adds the Dataverse emulator, its webhooks and the flow."""
        settings = Settings()
        settings.emulators.s4_port = 0
        settings.emulators.erp_port = 0
        settings.emulators.dataverse_port = 0
        settings.erp.control = overrides.pop("control", IdocControlSettings())
        with_dataverse = bool(overrides.pop("dataverse", False))
        for section, values in overrides.items():
            target = getattr(settings, section)
            for name, value in values.items():
                setattr(target, name, value)
        environment = DemoEnvironment(
            settings,
            store_path=tmp_path / f"store{len(stacks)}.db",
            with_dataverse=with_dataverse,
            tls_directory=tmp_path / "dataverse-tls",
        )
        environment.start(service_port=0)
        stack = Stack(environment)
        stacks.append(stack)
        return stack

    yield start
    for stack in stacks:
        stack.close()


@pytest.fixture
def stack(make_stack: MakeStack) -> Stack:
    """The default stack: package control values with MSGFN '/' so IDocs match the golden files."""
    return make_stack(control=IdocControlSettings(msgfn="/"))

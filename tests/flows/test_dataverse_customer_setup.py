"""When the service runs the native customer flow, and what it is built from."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from d365sap.config import Settings
from d365sap.errors import ConfigError
from d365sap.flows.dataverse_customer import DataverseCustomerFlow
from d365sap.flows.dataverse_messages import FLOW_NAME
from d365sap.flows.dataverse_setup import dataverse_flow_enabled
from d365sap.service import Service

DATAVERSE = {"environment_url": "https://org.crm4.dynamics.com", "client_secret": SecretStr("s")}


def test_the_flow_runs_when_dataverse_is_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("D365SAP_DATAVERSE__CLIENT_SECRET", raising=False)
    assert not dataverse_flow_enabled(Settings())
    assert dataverse_flow_enabled(Settings(dataverse=DATAVERSE))
    assert not dataverse_flow_enabled(
        Settings(dataverse=DATAVERSE, dataverse_flow={"enabled": False})
    )
    assert dataverse_flow_enabled(Settings(dataverse_flow={"enabled": True}))
    # Configured but without a credential (the shipped example without its variable): off.
    assert not dataverse_flow_enabled(
        Settings(dataverse={"environment_url": DATAVERSE["environment_url"]})
    )
    # Configured through the environment alone counts as configured.
    monkeypatch.setenv("D365SAP_DATAVERSE__CLIENT_SECRET", "from-the-environment")
    assert dataverse_flow_enabled(Settings())


@pytest.mark.anyio
async def test_the_service_registers_the_flow_with_its_parts(tmp_path: Path) -> None:
    settings = Settings(
        store={"url": f"sqlite:///{tmp_path / 'store.db'}"},
        dataverse={**DATAVERSE, "batch_size": 7},
        dataverse_flow={"write_back": {"linger_seconds": 0.5}},
        runtime={"retry": {"max_attempts": 3}},
    )
    service = Service(settings, serve_jobs=False)
    try:
        flow = service.flows[FLOW_NAME]
        assert isinstance(flow, DataverseCustomerFlow)
        assert flow.content_types == ("application/json",)
        assert flow.options.max_attempts == 3
        assert flow.write_back.batch_size == 7
        assert flow.write_back.linger == 0.5
        assert service.dataverse is not None
        assert service.dataverse.client.environment_url == "https://org.crm4.dynamics.com"
        assert "customer" in service.flows
    finally:
        await service.stop()


def test_without_a_credential_the_service_says_which_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("D365SAP_DATAVERSE__CLIENT_SECRET", raising=False)
    settings = Settings(
        store={"url": f"sqlite:///{tmp_path / 'store.db'}"},
        dataverse={"environment_url": "https://org.crm4.dynamics.com"},
        dataverse_flow={"enabled": True},
    )
    with pytest.raises(ConfigError) as raised:
        Service(settings, serve_jobs=False)
    assert raised.value.problems[0][0] == "dataverse.client_secret"


@pytest.mark.anyio
async def test_a_service_without_dataverse_has_no_native_flow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("D365SAP_DATAVERSE__CLIENT_SECRET", raising=False)
    settings = Settings(store={"url": f"sqlite:///{tmp_path / 'store.db'}"})
    service = Service(settings, serve_jobs=False)
    try:
        assert FLOW_NAME not in service.flows
        assert service.dataverse is None
    finally:
        await service.stop()

"""The connector built from [dataverse] settings: credentials, CA file, throttle limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from d365sap.config import DataverseSettings, load_settings
from d365sap.connectors.dataverse_setup import dataverse_client, token_provider
from d365sap.emulators.dataverse.identity import DEMO_CLIENT_SECRET
from d365sap.emulators.tls import TlsFiles, ensure_tls
from d365sap.engine.store import MessageStore
from d365sap.engine.throttle import SharedThrottle, ThrottleLimits
from d365sap.errors import ConfigError
from support.dataverse_api import ACCOUNT_US1
from support.dataverse_server import RunningDataverse, dataverse_server
from support.entra import make_app_certificate


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls(tmp_path_factory.mktemp("dataverse-tls"))


@pytest.fixture(scope="module")
def dataverse(tls: TlsFiles) -> Iterator[RunningDataverse]:
    with dataverse_server(tls) as running:
        yield running


def _fields(error: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return [field for field, _ in error.value.problems]


def test_a_credential_is_needed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as nothing:
        token_provider(DataverseSettings())
    monkeypatch.delenv("DV_SECRET", raising=False)
    with pytest.raises(ConfigError) as unset:
        token_provider(DataverseSettings(client_secret_env="DV_SECRET"))
    with pytest.raises(ConfigError) as unreadable:
        token_provider(DataverseSettings(client_secret_file=tmp_path / "missing"))
    with pytest.raises(ConfigError) as no_ca:
        token_provider(
            DataverseSettings(client_secret_file=_secret(tmp_path), ca_file=tmp_path / "no.pem")
        )
    assert _fields(nothing) == ["dataverse.client_secret"]
    assert _fields(unset) == ["dataverse.client_secret_env"]
    assert _fields(unreadable) == ["dataverse.client_secret_file"]
    assert _fields(no_ca) == ["dataverse.ca_file"]


def _secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret"
    path.write_text(DEMO_CLIENT_SECRET + "\n")
    return path


def test_settings_refuse_two_credentials_and_name_the_problems(tmp_path: Path) -> None:
    config = tmp_path / "d365sap.toml"
    config.write_text(
        "[dataverse]\n"
        "environment_url = 'http://org.crm.dynamics.com'\n"
        "client_secret_env = 'X'\n"
        f"private_key_file = '{tmp_path / 'key.pem'}'\n"
        "certificate_thumbprint = 'AB'\n"
        "page_size = 6000\n"
    )
    with pytest.raises(ConfigError) as refused:
        load_settings(config)
    fields = _fields(refused)
    assert "dataverse.environment_url" in fields
    assert "dataverse.certificate_thumbprint" in fields
    assert "dataverse.page_size" in fields
    config.write_text(
        f"[dataverse]\nclient_secret_env = 'X'\nprivate_key_file = '{tmp_path / 'key.pem'}'\n"
        "certificate_thumbprint = '" + "A" * 40 + "'\n"
    )
    with pytest.raises(ConfigError) as both:
        load_settings(config)
    assert _fields(both) == ["dataverse"]
    assert "exclude each other" in str(both.value)


def test_a_certificate_credential_is_read_from_files(tmp_path: Path) -> None:
    cert = make_app_certificate(tmp_path)
    key_file = tmp_path / "key.pem"
    key_file.write_text(cert.private_key_pem)
    provider = token_provider(
        DataverseSettings(private_key_file=key_file, certificate_file=cert.cert_file)
    )
    provider.close()
    with pytest.raises(ConfigError) as missing:
        token_provider(
            DataverseSettings(
                private_key_file=tmp_path / "gone.pem", certificate_thumbprint=cert.thumbprint
            )
        )
    assert _fields(missing) == ["dataverse.private_key_file"]


@pytest.mark.anyio
@pytest.mark.e2e
async def test_a_client_from_settings_reads_the_emulator(
    dataverse: RunningDataverse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("D365SAP_DATAVERSE__CLIENT_SECRET", DEMO_CLIENT_SECRET)
    monkeypatch.setenv("D365SAP_DATAVERSE__ENVIRONMENT_URL", dataverse.url)
    monkeypatch.setenv("D365SAP_DATAVERSE__AUTHORITY", dataverse.url)
    monkeypatch.setenv("D365SAP_DATAVERSE__CA_FILE", str(dataverse.tls.ca_file))
    monkeypatch.setenv("D365SAP_DATAVERSE__THROTTLE__LEASE_SIZE", "5")
    monkeypatch.delenv("D365SAP_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    store = MessageStore.open(f"sqlite:///{tmp_path / 'store.db'}")
    limits = ThrottleLimits(**settings.dataverse.throttle.model_dump(exclude={"max_retries"}))
    throttle = SharedThrottle(store, "dataverse", limits)
    tokens = token_provider(settings.dataverse)
    try:
        async with dataverse_client(settings.dataverse, tokens, throttle=throttle) as client:
            row = await client.get("accounts", ACCOUNT_US1, select=["name"])
    finally:
        tokens.close()
        store.close()
    assert row["name"] == "Inlandskunde US 1"
    assert (throttle.stats.leases, throttle.stats.requests) == (1, 1)
    assert throttle.state().requests_in_window == 5

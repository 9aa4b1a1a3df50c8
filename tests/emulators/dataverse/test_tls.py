"""The emulator on a real TLS loopback port: msal gets a token, the Web API answers over HTTPS.

Also ``d365sap emulators`` itself: it serves the Dataverse emulator over TLS beside the S/4 and
ERP emulators, with the environment URL of the port it bound as the tokens' audience.
"""

from __future__ import annotations

import asyncio
import io
import re
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from typer.testing import CliRunner

from d365sap import cli
from d365sap.connectors.dataverse_token import MsalTokenProvider
from d365sap.emulators.dataverse.app import create_app
from d365sap.emulators.dataverse.identity import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET
from d365sap.emulators.settings import DataverseEmulatorSettings
from d365sap.emulators.tls import TlsFiles, ensure_tls
from d365sap.web.serving import BackgroundServer
from support.dataverse_api import ACCOUNT_US1

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls(tmp_path_factory.mktemp("dataverse-tls"))


@pytest.fixture(scope="module")
def server(tls: TlsFiles) -> Iterator[BackgroundServer]:
    app = create_app(DataverseEmulatorSettings())
    running = BackgroundServer(
        app, name="dataverse", ssl_certfile=tls.cert_file, ssl_keyfile=tls.key_file
    )
    with running:
        app.state.dataverse.issuer.resource_url = running.url
        yield running


def _provider(server: BackgroundServer, tls: TlsFiles) -> MsalTokenProvider:
    return MsalTokenProvider(
        authority=server.url,
        tenant=DataverseEmulatorSettings().entra.tenant_id,
        client_id=DEMO_CLIENT_ID,
        environment_url=server.url,
        client_secret=DEMO_CLIENT_SECRET,
        ca_file=tls.ca_file,
    )


def test_msal_token_and_web_api_over_tls(server: BackgroundServer, tls: TlsFiles) -> None:
    token = asyncio.run(_provider(server, tls).token())
    context = ssl.create_default_context(cafile=str(tls.ca_file))
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    with httpx2.Client(verify=context, headers=headers, timeout=10.0) as client:
        root = f"{server.url}/api/data/v9.2/"
        row = client.get(f"{root}accounts({ACCOUNT_US1})?$select=name").json()
        assert row["name"] == "Inlandskunde US 1"
        assert row["@odata.context"] == f"{root}$metadata#accounts(name)/$entity"
        created = client.post(
            f"{root}accounts",
            json={"name": "Over TLS", "accountnumber": "TLS-1"},
            headers={"Prefer": "return=representation"},
        )
        assert created.status_code == 201, created.text
        assert created.json()["accountnumber"] == "TLS-1"
        anonymous = httpx2.get(f"{root}accounts", verify=context, timeout=10.0)
        assert anonymous.status_code == 401


def test_clients_that_do_not_trust_the_ca_are_refused(server: BackgroundServer) -> None:
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(f"{server.url}/emulator/health", timeout=10.0)


def test_cli_serves_dataverse_over_tls_beside_sap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "d365sap.toml"
    tls_dir = tmp_path / "tls"
    config.write_text(
        "[emulators]\ns4_port = 0\nerp_port = 0\ndataverse_port = 0\n\n"
        f"[emulators.dataverse]\ntls_directory = '{tls_dir.as_posix()}'\n"
    )
    seen: dict[str, object] = {}

    def probe() -> None:
        """Instead of waiting for Ctrl-C: call the running emulator like a client would."""
        health_url = seen["url"] = _dataverse_url(capture.getvalue())
        context = ssl.create_default_context(cafile=str(tls_dir / "ca.pem"))
        seen["health"] = httpx2.get(
            f"{health_url}/emulator/health", verify=context, timeout=30.0
        ).json()

    capture = io.StringIO()
    monkeypatch.setattr("d365sap.demo.wait_forever", probe)
    monkeypatch.setattr(cli, "console", cli.Console(file=capture, width=200))
    result = CliRunner().invoke(cli.app, ["emulators", "--config", str(config)])
    assert result.exit_code == 0, result.output
    printed = capture.getvalue()
    assert "S/4HANA Cloud OData" in printed
    assert "SAP ERP IDoc SOAP" in printed
    assert "oauth2/v2.0/token" in printed
    health = seen["health"]
    assert isinstance(health, dict)
    assert health["resource_url"] == seen["url"]
    assert health["rows"]["account"] == 4
    assert (tls_dir / "ca.pem").exists()


def _dataverse_url(printed: str) -> str:
    match = re.search(
        r"Dataverse Web API\s*│?\s*(https://127\.0\.0\.1:\d+)/api/data/v9\.2/", printed
    )
    assert match is not None, printed
    return match.group(1)

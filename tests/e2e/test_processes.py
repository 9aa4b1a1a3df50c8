"""``d365sap emulators`` and ``d365sap serve`` as separate processes, wired by configuration."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from support.examples import example

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx2.get(url, timeout=1.0).status_code < 500:
                return
        except httpx2.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(url)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[dict[str, str]]:
    s4_port, erp_port, service_port = free_port(), free_port(), free_port()
    config = tmp_path / "d365sap.toml"
    config.write_text(
        f"""
[service]
port = {service_port}

[[inbound.users]]
name = "dynamics"
password_env = "TEST_DYNAMICS_PASSWORD"

[store]
url = "sqlite:///{tmp_path / "store.db"}"
log_payloads = true

[s4]
base_url = "http://127.0.0.1:{s4_port}/sap/opu/odata/sap/API_BUSINESS_PARTNER"
user = "S4_COMM_USER"
password_env = "TEST_S4_PASSWORD"

[erp]
idoc_url = "http://127.0.0.1:{erp_port}/sap/bc/srt/idoc?sap-client=001"
user = "IDOC_USER"
password_env = "TEST_ERP_PASSWORD"

[emulators]
s4_port = {s4_port}
erp_port = {erp_port}
dataverse_port = 0
""",
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "D365SAP_CONFIG": str(config),
        "TEST_DYNAMICS_PASSWORD": "dyn-pw",
        "TEST_S4_PASSWORD": "Welcome1!",
        "TEST_ERP_PASSWORD": "Welcome1!",
    }
    started: list[subprocess.Popen[bytes]] = []
    try:
        for command in ("emulators", "serve"):
            started.append(
                subprocess.Popen(
                    [sys.executable, "-m", "d365sap", command],
                    cwd=tmp_path,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            if command == "emulators":
                wait_for(f"http://127.0.0.1:{s4_port}/emulator/health")
                wait_for(f"http://127.0.0.1:{erp_port}/emulator/health")
        wait_for(f"http://127.0.0.1:{service_port}/health")
        yield {
            "service": f"http://127.0.0.1:{service_port}",
            "erp": f"http://127.0.0.1:{erp_port}",
            "config": str(config),
        }
    finally:
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def test_serve_against_emulators_with_masked_payload_log(processes: dict[str, str]) -> None:
    with httpx2.Client(timeout=30.0) as client:
        response = client.post(
            f"{processes['service']}/http/CustomerSalesData_CRM_to_S4HC_ERP",
            content=example("in_erpaccounts_ECC.xml"),
            headers={"Content-Type": "text/xml"},
            auth=("dynamics", "dyn-pw"),
        )
        assert response.status_code == 200, response.text
        result = response.json()
        assert result["outcome"] == "idoc_sent"
        assert response.headers["x-message-id"] == result["message_id"]
        idoc = client.get(f"{processes['erp']}/emulator/idocs/{result['idoc_number']}").json()
        assert str(idoc["status"]) == "53"

        message = client.get(f"{processes['service']}/api/messages/{result['message_id']}").json()
        assert message["status"] == "done"
        assert [s["name"] for s in message["steps"]] == ["parse", "route", "erp.send_idoc"]
        stages = {p["stage"]: p["body"] for p in message["payloads"]}
        assert {"inbound", "mapped.idoc"} <= set(stages)
        for body in stages.values():
            assert "Muster Pumpentechnik" not in body  # names are personal data: masked
        assert "100123" in stages["mapped.idoc"]  # keys stay readable

        listing = subprocess.run(
            [sys.executable, "-m", "d365sap", "messages", "list", "--config", processes["config"]],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "COLUMNS": "250"},
        )
        assert listing.returncode == 0, listing.stderr
        assert result["message_id"] in listing.stdout and "idoc_sent" in listing.stdout
        shown = subprocess.run(
            [
                sys.executable,
                "-m",
                "d365sap",
                "messages",
                "show",
                result["message_id"],
                "--config",
                processes["config"],
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "COLUMNS": "250"},
        )
        assert shown.returncode == 0, shown.stderr
        assert "erp.send_idoc" in shown.stdout

"""The service on the procrastinate runtime: PostgreSQL store, two ``d365sap worker`` processes.

The service only stores and defers; the workers (separate processes, started by the command line
as in production) send to the S/4HANA Cloud and SAP ERP emulators. Callers still get the outcome
synchronously: the service's waiters poll the store until a worker has settled the message.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import create_engine, text

from d365sap.config import Settings, load_settings
from d365sap.emulators.erp.app import create_app as create_erp_app
from d365sap.emulators.s4.app import create_app as create_s4_app
from d365sap.web.app import create_app as create_service_app
from d365sap.web.serving import BackgroundServer
from support.examples import example

pytestmark = pytest.mark.e2e

PG_ADMIN_URL = os.environ.get(
    "D365SAP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
INBOUND = "/http/CustomerSalesData_CRM_to_S4HC_ERP"
CALLER = ("dynamics", "dyn-pw")
SECRETS = {
    "TEST_DYNAMICS_PASSWORD": "dyn-pw",
    "TEST_S4_PASSWORD": "Welcome1!",
    "TEST_ERP_PASSWORD": "Welcome1!",
}
WORKERS = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def admin(statement: str) -> None:
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()


@pytest.fixture
def pg_store_url() -> Iterator[str]:
    """A new, empty PostgreSQL database: the service migrates it and installs procrastinate."""
    try:
        admin("select 1")
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable in CI: {exc}")
        pytest.skip("PostgreSQL not reachable")
    name = f"d365sap_e2e_{uuid.uuid4().hex[:12]}"
    admin(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def write_config(path: Path, store_url: str, s4_port: int, erp_port: int, port: int) -> None:
    path.write_text(
        f"""
[service]
port = {port}

[[inbound.users]]
name = "dynamics"
password_env = "TEST_DYNAMICS_PASSWORD"

[store]
url = "{store_url}"

[runtime]
kind = "procrastinate"
poll_interval_seconds = 0.2
heartbeat_seconds = 1.0
stalled_seconds = 5.0
sync_wait_seconds = 30.0

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
""",
        encoding="utf-8",
    )


@dataclass
class Deployment:
    settings: Settings
    service: str
    s4: str
    erp: str
    workers: list[subprocess.Popen[bytes]]
    logs: list[Path]

    def worker_logs(self) -> str:
        return "\n".join(log.read_text(encoding="utf-8", errors="replace") for log in self.logs)


def registered_workers(store_url: str) -> int:
    engine = create_engine(store_url)
    try:
        with engine.connect() as connection:
            exists = connection.execute(text("SELECT to_regclass('procrastinate_workers')"))
            if exists.scalar() is None:
                return 0
            count = connection.execute(text("SELECT count(*) FROM procrastinate_workers"))
            return int(count.scalar_one())
    finally:
        engine.dispose()


@pytest.fixture
def deployment(
    tmp_path: Path, pg_store_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Deployment]:
    s4_port, erp_port, service_port = free_port(), free_port(), free_port()
    config = tmp_path / "d365sap.toml"
    write_config(config, pg_store_url, s4_port, erp_port, service_port)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    settings = load_settings(config, check_secrets=True)
    emu = settings.emulators
    servers = [
        BackgroundServer(create_s4_app(emu.s4), port=s4_port, name="s4").start(),
        BackgroundServer(create_erp_app(emu.erp), port=erp_port, name="erp").start(),
    ]
    workers: list[subprocess.Popen[bytes]] = []
    logs: list[Path] = []
    try:
        # The service first: it migrates the new database and installs procrastinate's schema.
        service = BackgroundServer(create_service_app(settings), port=service_port, name="service")
        servers.append(service.start())
        for index in range(WORKERS):
            log = tmp_path / f"worker{index}.log"
            logs.append(log)
            with log.open("wb") as sink:
                workers.append(
                    subprocess.Popen(
                        [sys.executable, "-m", "d365sap", "worker", "--config", str(config)],
                        cwd=tmp_path,
                        env={**os.environ, **SECRETS},
                        stdout=sink,
                        stderr=subprocess.STDOUT,
                    )
                )
        queues = len(settings.runtime.concurrency)
        deadline = time.monotonic() + 30
        while registered_workers(pg_store_url) < WORKERS * queues:
            assert all(w.poll() is None for w in workers), "a worker exited at start"
            assert time.monotonic() < deadline, "workers did not register"
            time.sleep(0.1)
        yield Deployment(
            settings,
            service.url,
            servers[0].url,
            servers[1].url,
            workers,
            logs,
        )
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        for server in reversed(servers):
            server.stop()


def post(client: httpx2.Client, url: str, body: bytes, **headers: str) -> httpx2.Response:
    return client.post(
        f"{url}{INBOUND}",
        content=body,
        headers={"Content-Type": "application/xml", **headers},
        auth=CALLER,
    )


def test_examples_are_answered_synchronously_by_separate_workers(deployment: Deployment) -> None:
    service = deployment.service
    with httpx2.Client(timeout=60.0) as client:
        s4 = post(client, service, example("in_erpaccountdetails_S4HC.xml"))
        assert s4.status_code == 201, (s4.text, deployment.worker_logs())
        assert s4.json()["outcome"] == "created"

        changed = example("in_erpaccountdetails_S4HC.xml").replace(
            b"<salesgroup>170</salesgroup>", b"<salesgroup>171</salesgroup>"
        )
        updated = post(client, service, changed)
        assert updated.status_code == 200, updated.text
        assert updated.json()["outcome"] == "updated"

        for name in ("in_erpaccountdetails_ECC.xml", "in_erpaccounts_ECC.xml"):
            answer = post(client, service, example(name))
            assert answer.status_code == 200, (name, answer.text)
            result = answer.json()
            assert result["outcome"] == "idoc_sent"
            idoc = client.get(f"{deployment.erp}/emulator/idocs/{result['idoc_number']}").json()
            assert str(idoc["status"]) == "53"

        area = client.get(
            f"{deployment.s4}/sap/opu/odata/sap/API_BUSINESS_PARTNER/A_CustomerSalesArea("
            "Customer='17100001',SalesOrganization='1710',DistributionChannel='10',"
            "Division='00')",
            params={"$format": "json"},
            auth=("S4_COMM_USER", "Welcome1!"),
        )
        assert area.status_code == 200
        assert area.json()["d"]["SalesGroup"] == "171"

        message: dict[str, Any] = client.get(
            f"{service}/api/messages/{s4.headers['x-message-id']}"
        ).json()
        assert message["status"] == "done" and message["attempts"] == 1
    queues = len(deployment.settings.runtime.concurrency)  # one worker per queue per process
    assert registered_workers(deployment.settings.store.url) == WORKERS * queues
    assert all(worker.poll() is None for worker in deployment.workers)


def test_respond_async_then_follow_the_message(deployment: Deployment) -> None:
    with httpx2.Client(timeout=60.0) as client:
        accepted = post(
            client, deployment.service, example("in_erpaccounts_ECC.xml"), Prefer="respond-async"
        )
        assert accepted.status_code == 202, accepted.text
        location = accepted.headers["location"]
        deadline = time.monotonic() + 30
        while True:
            message = client.get(f"{deployment.service}{location}").json()
            if message["status"] == "done":
                break
            assert time.monotonic() < deadline, (message, deployment.worker_logs())
            time.sleep(0.1)
        assert message["outcome"] == "idoc_sent"


def test_workers_stop_cleanly_on_sigterm(deployment: Deployment) -> None:
    for worker in deployment.workers:
        worker.send_signal(signal.SIGTERM)
    for worker in deployment.workers:
        assert worker.wait(timeout=20) == 0, deployment.worker_logs()
    assert registered_workers(deployment.settings.store.url) == 0  # unregistered on the way out

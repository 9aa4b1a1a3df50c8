"""The runtime contract's fixture: a running runtime, its store and the scripted flow.

``harness`` is parametrised over both runtimes: ``embedded`` on a SQLite file and
``procrastinate`` on a fresh PostgreSQL database (cloned from a template that already holds the
store's tables and procrastinate's schema, to keep each test fast). Without PostgreSQL the
procrastinate half is skipped, except in CI (``CI`` set), where it fails.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest
from sqlalchemy import create_engine, select, text

from d365sap.engine.embedded import EmbeddedRuntime
from d365sap.engine.intake import Intake
from d365sap.engine.procrastinate_runtime import ProcrastinateRuntime
from d365sap.engine.procrastinate_schema import conninfo_from_url, install_schema
from d365sap.engine.runtime import Runtime
from d365sap.engine.store import MessageStore
from d365sap.engine.tables import JobRow
from d365sap.engine.types import Flow
from d365sap.engine.views import FINAL_STATUSES, MessageView
from engine.contract.scripted import FLOW, QUEUE, Journal, ScriptedFlow, payload, processor

PG_ADMIN_URL = os.environ.get(
    "D365SAP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SCRIPTED_WORKER = Path(__file__).with_name("scripted.py")


def postgres_or_skip() -> None:
    """Skip without PostgreSQL; in CI its absence is a failure."""
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL is not reachable in CI: {exc}")
        pytest.skip("PostgreSQL not reachable")


def pg_url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def admin_execute(statement: str) -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(statement))
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A database with the store's tables and procrastinate's schema, to clone per test."""
    postgres_or_skip()
    name = f"d365sap_contract_tpl_{uuid.uuid4().hex[:10]}"
    admin_execute(f'CREATE DATABASE "{name}"')
    try:
        store = MessageStore.open(pg_url(name))
        store.close()
        # Requested from inside the async harness fixture: install from a loop of its own.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, install_schema(conninfo_from_url(pg_url(name)))).result()
        yield name
    finally:
        admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test; its SQLAlchemy URL."""
    template: str = request.getfixturevalue("pg_template")
    name = f"d365sap_contract_{uuid.uuid4().hex[:12]}"
    admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield pg_url(name)
    finally:
        admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def store(pg_database: str) -> Iterator[MessageStore]:
    """Here: a store on a fresh PostgreSQL database that also holds procrastinate's schema."""
    opened = MessageStore.open(pg_database)
    yield opened
    opened.close()


@pytest.fixture
async def procrastinate(pg_database: str, tmp_path: Path) -> AsyncIterator[Harness]:
    """A running procrastinate harness on a fresh database."""
    async with running_harness("procrastinate", pg_database, tmp_path) as running:
        yield running


@asynccontextmanager
async def running_harness(kind: str, url: str, tmp_path: Path) -> AsyncIterator[Harness]:
    """A started harness, stopped and closed afterwards."""
    running = Harness(kind, url, Journal(tmp_path / "journal.jsonl"))
    try:
        await running.start()
        yield running
    finally:
        try:
            await running.stop()
        finally:
            running.close()


class Harness:
    """A store, the scripted flow and one runtime, with the moves the contract tests need."""

    def __init__(self, kind: str, url: str, journal: Journal) -> None:
        self.kind = kind
        self.url = url
        self.journal = journal
        self.store = MessageStore.open(url)
        self.processor = processor(self.store, journal)
        self.flows: dict[str, Flow] = {FLOW: ScriptedFlow(journal)}
        self.runtime: Runtime = self.new_runtime()
        self.intake = Intake(self.store, self.flows, self.runtime)
        self._running = False
        self._workers: list[subprocess.Popen[bytes]] = []

    def new_runtime(self) -> Runtime:
        if self.kind == "embedded":
            return EmbeddedRuntime(
                self.processor,
                concurrency={QUEUE: 4},
                default_concurrency=4,
                poll_interval=0.05,
                lease_seconds=5.0,
                grace_seconds=0.2,
            )
        return ProcrastinateRuntime(
            self.processor,
            store_url=self.url,
            concurrency={QUEUE: 4},
            poll_interval=0.1,
            heartbeat_seconds=0.5,
            stalled_seconds=2.0,
            shutdown_grace_seconds=0.5,
            workers_in_process=True,
        )

    # -- the runtime's life ---------------------------------------------------------------------

    async def start(self) -> None:
        await self.runtime.start()
        self._running = True
        runtime = self.runtime
        if isinstance(runtime, ProcrastinateRuntime):
            await self._wait_for(lambda: QUEUE in runtime.serving_queues, "workers")

    async def stop(self) -> None:
        if self._running:
            await self.runtime.stop()
            self._running = False

    async def restart(self) -> None:
        """A new runtime instance on the same store (a restarted service)."""
        await self.stop()
        self.runtime = self.new_runtime()
        self.intake.runtime = self.runtime
        await self.start()

    def spawn_worker(self) -> subprocess.Popen[bytes]:
        """A ``d365sap worker``-like process for the scripted flow (procrastinate only)."""
        process = subprocess.Popen(
            [sys.executable, str(SCRIPTED_WORKER), self.url, str(self.journal.path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self._workers.append(process)
        return process

    def close(self) -> None:
        for process in self._workers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self._workers:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stderr is not None:
                process.stderr.close()
        self.store.close()

    # -- messages -------------------------------------------------------------------------------

    async def submit(
        self,
        label: str,
        key: str | None = "A",
        plan: list[str] | None = None,
        *,
        source_id: str | None = None,
        **options: Any,
    ) -> str:
        submitted = await self.intake.submit(
            FLOW,
            payload(label, key, plan, **options),
            content_type="application/json",
            correlation_id=f"corr-{label}",
            source_id=source_id,
        )
        return submitted.message.id

    async def settled(self, message_id: str, timeout: float = 15.0) -> MessageView:
        """The message once final (done, failed, discarded, superseded)."""
        deadline = time.monotonic() + timeout
        while True:
            view = await anyio.to_thread.run_sync(lambda: self.store.get(message_id))
            assert view is not None
            if view.status in FINAL_STATUSES:
                return view
            if time.monotonic() > deadline:
                raise AssertionError(f"not settled in {timeout} s: {view.status}")
            await asyncio.sleep(0.03)

    async def status(self, message_id: str, wanted: str, timeout: float = 15.0) -> MessageView:
        deadline = time.monotonic() + timeout
        while True:
            view = await anyio.to_thread.run_sync(lambda: self.store.status_of(message_id))
            if view is not None and view.status == wanted:
                return view
            if time.monotonic() > deadline:
                raise AssertionError(f"not {wanted} in {timeout} s: {view}")
            await asyncio.sleep(0.03)

    def pending_jobs(self) -> int:
        """Jobs still queued, waiting or running for the store's messages."""
        with self.store.sessions() as session:
            if self.kind == "embedded":
                return len(session.scalars(select(JobRow.id)).all())
            runtime = self.runtime
            assert isinstance(runtime, ProcrastinateRuntime)
            return sum(runtime.pending_jobs(session).values())

    async def no_pending_jobs(self, timeout: float = 5.0) -> None:
        await self._wait_for(lambda: self.pending_jobs() == 0, "no pending jobs", timeout)

    @staticmethod
    async def _wait_for(condition: Any, what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.02)


@pytest.fixture(params=["embedded", "procrastinate"])
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    if request.param == "embedded":
        url = f"sqlite:///{tmp_path / 'store.db'}"
    else:
        url = request.getfixturevalue("pg_database")
    async with running_harness(request.param, url, tmp_path) as running:
        yield running

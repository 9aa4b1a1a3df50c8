"""The worker processes' procrastinate pool, and the cheap look a polling worker takes first."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from procrastinate import PsycopgConnector

from d365sap.engine import procrastinate_pool
from d365sap.engine.procrastinate_jobs import jobs_ready
from d365sap.engine.procrastinate_pool import worker_connector
from d365sap.engine.procrastinate_schema import conninfo_from_url
from d365sap.engine.store import MessageStore
from engine.contract.test_procrastinate_claims import claim, defer, worker_id

pytestmark = pytest.mark.anyio


@pytest.fixture
async def connector(pg_database: str) -> AsyncIterator[PsycopgConnector]:
    opened = worker_connector(conninfo_from_url(pg_database), max_size=1)
    await opened.open_async()
    yield opened
    await opened.close_async()


async def test_a_look_sees_only_waiting_due_jobs_of_its_queues(
    store: MessageStore, connector: PsycopgConnector
) -> None:
    assert not await jobs_ready(connector, ["q"])
    defer(store, "later", "A", run_at=datetime.now(UTC) + timedelta(hours=1))
    defer(store, "elsewhere", "B", queue="other")
    assert not await jobs_ready(connector, ["q"])
    assert await jobs_ready(connector, ["q", "other"])
    defer(store, "now", "C")
    assert await jobs_ready(connector, ["q"])
    assert [job.task_kwargs for job in claim(store, worker_id(store))] == [{"message_id": "now"}]
    assert not await jobs_ready(connector, ["q"])  # running, not waiting


async def test_pool_connections_commit_each_statement(connector: PsycopgConnector) -> None:
    await connector.execute_query_async("CREATE TABLE pool_probe (n int)")
    await connector.execute_query_async("INSERT INTO pool_probe VALUES (1)")
    async with connector.pool.connection() as connection:
        assert connection.autocommit
        status = connection.info.transaction_status
        rows = await (await connection.execute("SELECT count(*) FROM pool_probe")).fetchall()
    assert rows == [(1,)]
    assert status.name == "IDLE"  # nothing left open between statements


async def test_workers_still_hear_announced_jobs(connector: PsycopgConnector) -> None:
    heard: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    async def on_notification(*, channel: str, payload: str) -> None:
        await heard.put((channel, payload))

    listening = asyncio.create_task(
        connector.listen_notify(on_notification=on_notification, channels=["probe_channel"])
    )
    try:
        for _ in range(100):  # until the listener's LISTEN is in place
            await connector.execute_query_async("SELECT pg_notify('probe_channel', 'hello')")
            with contextlib.suppress(TimeoutError):
                assert await asyncio.wait_for(heard.get(), 0.05) == ("probe_channel", "hello")
                break
        else:
            raise AssertionError(f"nothing heard; listener: {listening}")
    finally:
        listening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listening


async def test_a_connection_dropped_while_idle_is_replaced_at_checkout(
    connector: PsycopgConnector, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await connector.execute_query_one_async("SELECT pg_backend_pid() AS pid")
    async with await psycopg.AsyncConnection.connect(
        conninfo_from_url(pg_database), autocommit=True
    ) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s)", [first["pid"]])
    monkeypatch.setattr(procrastinate_pool, "IDLE_PING_SECONDS", 0.0)  # everything idle
    again = await connector.execute_query_one_async("SELECT pg_backend_pid() AS pid")
    assert again["pid"] != first["pid"]


async def test_a_connection_in_steady_use_is_not_tested(
    connector: PsycopgConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    tested: list[object] = []

    async def counting(connection: object) -> None:
        tested.append(connection)

    monkeypatch.setattr(procrastinate_pool.AsyncConnectionPool, "check_connection", counting)
    await connector.execute_query_async("SELECT 1")  # the pool's new connection: tested
    tested.clear()
    for _ in range(3):
        await connector.execute_query_async("SELECT 1")
    assert tested == []
    monkeypatch.setattr(procrastinate_pool, "IDLE_PING_SECONDS", 0.0)  # now it sat "idle"
    await connector.execute_query_async("SELECT 1")
    assert len(tested) == 1

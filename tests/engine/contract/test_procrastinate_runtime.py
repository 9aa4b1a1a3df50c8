"""What only the procrastinate runtime has: its schema, its job rows, its worker plan and CLI."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from typer.testing import CliRunner

from d365sap.cli import app
from d365sap.engine.db import make_engine, migrate
from d365sap.engine.procrastinate_jobs import TASK_NAME
from d365sap.engine.procrastinate_runtime import ProcrastinateRuntime, WorkerPlan, plan_workers
from d365sap.engine.procrastinate_schema import (
    SchemaOutdatedError,
    conninfo_from_url,
    install_schema,
)
from d365sap.engine.views import DONE, RETRYING
from engine.contract.conftest import Harness, admin_execute, pg_url, postgres_or_skip
from engine.contract.scripted import QUEUE

pytestmark = pytest.mark.anyio


@pytest.fixture
def empty_database() -> Iterator[str]:
    postgres_or_skip()
    name = f"d365sap_schema_{uuid.uuid4().hex[:12]}"
    admin_execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_url(name)
    finally:
        admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_worker_plan_per_queue() -> None:
    settings = {"s4hc": 8, "erp": 4, "default": 2}
    assert plan_workers(settings, default=2) == [
        WorkerPlan("default", 2),
        WorkerPlan("erp", 4),
        WorkerPlan("s4hc", 8),
    ]
    assert plan_workers(settings, default=2, queues=["s4hc", "s4hc"]) == [WorkerPlan("s4hc", 8)]
    assert plan_workers(settings, default=2, queues=["erp", "new"], override=3) == [
        WorkerPlan("erp", 3),
        WorkerPlan("new", 3),
    ]
    assert plan_workers(settings, default=2, queues=["new"]) == [WorkerPlan("new", 2)]


def test_conninfo_from_the_store_url() -> None:
    url = "postgresql+psycopg://user:p%40ss@db.example:5433/d365?sslmode=require"
    assert conninfo_from_url(url) == "postgresql://user:p%40ss@db.example:5433/d365?sslmode=require"
    with pytest.raises(ValueError, match="postgresql"):
        conninfo_from_url("sqlite:///var/store.db")


async def test_schema_installs_once_beside_the_store_tables(empty_database: str) -> None:
    conninfo = conninfo_from_url(empty_database)
    installed = await asyncio.gather(*(install_schema(conninfo) for _ in range(4)))
    assert sorted(installed) == [False, False, False, True]  # concurrent starts: one installs
    engine = make_engine(empty_database)
    try:
        migrate(engine)  # Alembic after procrastinate
        migrate(engine)
        assert await install_schema(conninfo) is False
        tables = set(inspect(engine).get_table_names())
        assert {"messages", "jobs", "alembic_version"} <= tables
        assert {"procrastinate_jobs", "procrastinate_workers", "procrastinate_events"} <= tables
    finally:
        engine.dispose()


async def test_schema_after_the_store_tables(empty_database: str) -> None:
    engine = make_engine(empty_database)
    try:
        migrate(engine)
        assert await install_schema(conninfo_from_url(empty_database)) is True
        migrate(engine)
        with engine.connect() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        assert len(version) == 1
    finally:
        engine.dispose()


async def test_an_older_procrastinate_schema_is_reported(empty_database: str) -> None:
    conninfo = conninfo_from_url(empty_database)
    await install_schema(conninfo)
    engine = make_engine(empty_database)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP FUNCTION procrastinate_retry_job_v2"))
    finally:
        engine.dispose()
    with pytest.raises(SchemaOutdatedError, match="procrastinate_retry_job_v2"):
        await install_schema(conninfo)


def job_rows(harness: Harness) -> list[tuple[int, str, int, object]]:
    with harness.store.sessions() as session:
        rows = session.execute(
            text(
                "SELECT id, status::text, attempts, scheduled_at FROM procrastinate_jobs "
                "WHERE task_name = :task ORDER BY id"
            ),
            {"task": TASK_NAME},
        ).all()
    return [(int(r[0]), str(r[1]), int(r[2]), r[3]) for r in rows]


async def test_a_retry_is_the_same_job_waiting_in_its_place(procrastinate: Harness) -> None:
    first = await procrastinate.submit("a1", "A", ["transient", "ok"], retry_after=1.0)
    await procrastinate.submit("a2", "A")
    await procrastinate.status(first, RETRYING)
    # The attempt is recorded in the store first, then procrastinate puts the job back: wait for
    # the second of the two commits.
    deadline = time.monotonic() + 10
    rows = job_rows(procrastinate)
    while rows and rows[0][1] == "doing" and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        rows = job_rows(procrastinate)
    assert len(rows) == 2
    (first_job, status, attempts, scheduled_at), (second_job, second_status, _, _) = rows
    assert first_job < second_job  # the retry did not go behind the newer message
    assert (status, attempts, second_status) == ("todo", 1, "todo")
    assert scheduled_at is not None
    await procrastinate.no_pending_jobs()
    assert job_rows(procrastinate) == []  # settled jobs are deleted


async def test_stopping_a_worker_mid_job_puts_the_job_back(procrastinate: Harness) -> None:
    message_id = await procrastinate.submit("m1", "M", ["hang", "ok"])
    await procrastinate.journal.wait_started("m1")
    await procrastinate.stop()  # the grace period runs out: the job is aborted and retried
    assert [row[1] for row in job_rows(procrastinate)] == ["todo"]
    await procrastinate.restart()
    view = await procrastinate.settled(message_id)
    assert view.status == DONE and view.attempts == 2


async def test_a_queue_without_settings_gets_a_worker(procrastinate: Harness) -> None:
    message_id = await procrastinate.submit("n1", "N", queue="unplanned")
    view = await procrastinate.settled(message_id, timeout=10)
    assert view.status == DONE
    runtime = procrastinate.runtime
    assert isinstance(runtime, ProcrastinateRuntime)
    assert "unplanned" in runtime.serving_queues


async def test_a_worker_that_ends_by_itself_is_restarted(procrastinate: Harness) -> None:
    runtime = procrastinate.runtime
    assert isinstance(runtime, ProcrastinateRuntime)
    broken = runtime._workers[QUEUE]
    broken.worker.stop()  # as procrastinate does when its heartbeat cannot reach the database
    await asyncio.wait_for(broken.task, 5)
    await procrastinate._wait_for(lambda: runtime._workers[QUEUE] is not broken, "a new worker")
    message_id = await procrastinate.submit("r1", "R")
    assert (await procrastinate.settled(message_id)).status == DONE


def test_worker_command_refuses_the_embedded_runtime(tmp_path: Path) -> None:
    config = tmp_path / "d365sap.toml"
    config.write_text('[runtime]\nkind = "embedded"\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["worker", "--config", str(config)])
    assert result.exit_code == 2
    assert "procrastinate" in result.output

"""PostgreSQL store operations on the event loop (``engine.loop_engines``) and idle pings."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from d365sap.engine import db
from d365sap.engine.loop_engines import ASYNC_DRIVER, LoopEngines
from d365sap.engine.store import MessageStore
from engine.conftest import PG_ADMIN_URL


def test_only_psycopg_urls_get_loop_engines() -> None:
    assert LoopEngines.for_engine(create_engine("sqlite://")) is None
    assert LoopEngines.for_engine(create_engine("postgresql+psycopg://u@h/d")) is not None


def test_calls_run_on_the_loop_thread_with_its_own_engine(pg_store: MessageStore) -> None:
    outside = pg_store.engine

    def inside() -> tuple[Engine, int, int]:
        with pg_store.fast() as conn:
            value = int(conn.execute(text("SELECT 41 + 1")).scalar_one())
        return pg_store.engine, value, threading.get_ident()

    async def main() -> tuple[Engine, int, int, int]:
        engine, value, thread = await pg_store.call(inside)
        return engine, value, thread, threading.get_ident()

    engine, value, thread, loop_thread = asyncio.run(main())
    assert value == 42
    assert thread == loop_thread  # no worker thread
    assert engine is not outside
    assert engine.url.drivername == ASYNC_DRIVER
    assert pg_store.engine is outside  # code outside call() keeps the plain engine


def test_each_loop_gets_a_working_engine(pg_store: MessageStore) -> None:
    """Pooled async connections belong to their loop: a later loop must not reuse them."""

    def count() -> int:
        with pg_store.read() as conn:
            return int(conn.execute(text("SELECT count(*) FROM messages")).scalar_one())

    async def main() -> tuple[int, Engine]:
        return await pg_store.call(count), await pg_store.call(lambda: pg_store.engine)

    first_count, first = asyncio.run(main())
    second_count, second = asyncio.run(main())
    assert first_count == second_count == 0
    assert first is not second


def test_concurrent_transactions_interleave_on_one_loop(pg_store: MessageStore) -> None:
    """Two transactions in flight at once: each awaits its round trips, neither blocks."""

    def hold(seconds: float) -> None:
        with pg_store.fast() as conn:
            conn.execute(text("SELECT pg_sleep(:s)"), {"s": seconds})

    async def main() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.gather(*(pg_store.call(lambda: hold(0.3)) for _ in range(4)))
        return loop.time() - started

    assert asyncio.run(main()) < 0.9  # four 0.3 s sleeps side by side, not one after another


def test_aclose_closes_the_loops_connections(pg_store: MessageStore) -> None:
    database = pg_store.engine.url.database
    admin = create_engine(PG_ADMIN_URL)

    def connections() -> int:
        with admin.connect() as conn:
            query = text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d")
            return int(conn.execute(query, {"d": database}).scalar_one())

    def touch() -> None:
        with pg_store.read() as conn:
            conn.execute(text("SELECT 1"))

    async def main() -> tuple[int, int]:
        await pg_store.call(touch)
        before = connections()
        await pg_store.aclose()
        deadline = time.monotonic() + 5  # a backend leaves pg_stat_activity shortly after
        while connections() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return before, connections()

    try:
        before, after = asyncio.run(main())
    finally:
        admin.dispose()
    assert before >= 1
    assert after == 0


@pytest.fixture
def pg_engine() -> Iterator[Engine]:
    try:
        engine = db.make_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError:
        pytest.skip("PostgreSQL not reachable")
    yield engine
    engine.dispose()


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(pid: int) -> None:
    admin = create_engine(PG_ADMIN_URL)
    with admin.begin() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


def test_an_idle_connection_is_tested_and_replaced(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)
    first = _backend_pid(pg_engine)
    _terminate(first)
    assert _backend_pid(pg_engine) != first  # the pool noticed and opened another


def test_a_busy_connection_is_not_tested(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the idle test a dropped connection surfaces as an error (and is replaced)."""
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 3600.0)
    first = _backend_pid(pg_engine)
    _terminate(first)
    with pytest.raises(OperationalError):
        _backend_pid(pg_engine)
    assert _backend_pid(pg_engine) != first


def test_the_loop_engine_replaces_an_idle_dropped_connection(
    pg_store: MessageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.0)

    def pid() -> int:
        with pg_store.read() as conn:
            return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())

    async def main() -> tuple[int, int]:
        first = await pg_store.call(pid)
        _terminate(first)
        return first, await pg_store.call(pid)

    first, second = asyncio.run(main())
    assert second != first

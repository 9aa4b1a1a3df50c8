"""Store fixtures: the same tests run on SQLite and, when reachable, on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from d365sap.engine.store import MessageStore

PG_ADMIN_URL = os.environ.get(
    "D365SAP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _postgres_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
    except Exception:
        return False
    return True


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MessageStore]:
    if request.param == "sqlite":
        opened = MessageStore.open(f"sqlite:///{tmp_path / 'store.db'}")
        yield opened
        opened.close()
        return
    with postgres_store() as opened:
        yield opened


@contextmanager
def postgres_store() -> Iterator[MessageStore]:
    """A store on a new PostgreSQL database, dropped afterwards (skips without PostgreSQL)."""
    if not _postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable in CI")
        pytest.skip("PostgreSQL not reachable")
    name = f"d365sap_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    opened = MessageStore.open(url)
    try:
        yield opened
    finally:
        opened.close()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_store() -> Iterator[MessageStore]:
    """A store on PostgreSQL alone."""
    with postgres_store() as opened:
        yield opened

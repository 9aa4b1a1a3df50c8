"""The delta poll's memory of order states, on SQLite and (when reachable) PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from d365sap.engine.checkpoints import CheckpointStore
from d365sap.engine.store import MessageStore
from d365sap.flows.sales_order_triggers import OrderStates

PG_ADMIN_URL = os.environ.get(
    "D365SAP_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MessageStore]:
    if request.param == "sqlite":
        opened = MessageStore.open(f"sqlite:///{tmp_path / 'store.db'}")
        yield opened
        opened.close()
        return
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"d365sap_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception:
        if os.environ.get("CI"):
            raise
        pytest.skip("PostgreSQL not reachable")
    opened = MessageStore.open(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
    try:
        yield opened
    finally:
        opened.close()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_states_are_remembered_and_replaced(store: MessageStore) -> None:
    states = OrderStates(store)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    assert states.get_many([first, second]) == {}
    states.put_many({first: "0", second: "1"})
    states.put_many({first: "1"})
    assert states.get_many([first, second, "unknown"]) == {first: "1", second: "1"}
    states.put_many({})
    assert states.get_many([]) == {}
    # kept apart from the change loader's own versions in the same table
    checkpoints = CheckpointStore(store)
    assert checkpoints.version_count("dataverse:salesorders") == 0

"""The row store: one version counter, stamps, unique alternate keys, atomic change sets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from d365sap.emulators.dataverse.errors import WebApiError
from d365sap.emulators.dataverse.events import RowChange
from d365sap.emulators.dataverse.messages import Caller
from d365sap.emulators.dataverse.store import Origin, Store
from d365sap.emulators.dataverse.tables import build_schema

ORIGIN = Origin(Caller(user_id="u-1", client_id="c-1"), "req-1")
A1 = "00000000-0000-0000-0000-0000000000a1"
A2 = "00000000-0000-0000-0000-0000000000a2"
C1 = "00000000-0000-0000-0000-0000000000c1"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> Store:
    return Store(build_schema(), first_version=500, clock=clock)


@pytest.fixture
def heard(store: Store) -> list[RowChange]:
    changes: list[RowChange] = []

    def listener(change: RowChange) -> None:
        changes.append(change)

    store.subscribe(listener)
    return changes


def test_versions_come_from_one_counter_across_tables(store: Store) -> None:
    account = store.insert("account", {"accountid": A1, "name": "A"}, ORIGIN)
    contact = store.insert("contact", {"contactid": C1, "lastname": "B"}, ORIGIN)
    updated = store.update("account", A1, {"name": "A2"}, ORIGIN)
    assert [account["versionnumber"], contact["versionnumber"], updated["versionnumber"]] == [
        500,
        501,
        502,
    ]
    assert store.version == 502


def test_rows_have_every_column_and_the_stamps(store: Store, clock: Clock) -> None:
    row = store.insert("account", {"accountid": A1, "name": "A"}, ORIGIN)
    table = build_schema().table("account")
    assert set(table.property_names()) <= set(row)
    assert row["telephone1"] is None
    assert row["createdon"] == row["modifiedon"] == clock.now
    created = clock.now
    clock.now += timedelta(minutes=5)
    updated = store.update("account", A1, {"telephone1": "+1 555"}, ORIGIN)
    assert updated["createdon"] == created
    assert updated["modifiedon"] == clock.now
    assert row["telephone1"] is None, "a stored row is never changed in place"


def test_listeners_hear_full_rows_with_caller_and_request(
    store: Store, heard: list[RowChange]
) -> None:
    store.insert("account", {"accountid": A1, "name": "A"}, ORIGIN)
    store.update("account", A1, {"name": "B", "telephone1": None}, ORIGIN)
    store.delete("account", A1, ORIGIN)
    assert [c.kind for c in heard] == ["Create", "Update", "Delete"]
    create, update, delete = heard
    assert create.before is None
    assert create.after is not None
    assert create.after["name"] == "A"
    assert (create.table, create.entity_set, create.row_id) == ("account", "accounts", A1)
    assert update.before is not None
    assert update.after is not None
    assert (update.before["name"], update.after["name"]) == ("A", "B")
    assert update.changed_columns == frozenset({"name"})
    assert update.version == update.after["versionnumber"]
    assert delete.after is None
    assert delete.version > update.version
    assert {(c.caller, c.request_id) for c in heard} == {(ORIGIN.caller, "req-1")}


def test_a_failed_transaction_leaves_nothing_and_announces_nothing(
    store: Store, heard: list[RowChange]
) -> None:
    store.insert("account", {"accountid": A1, "name": "before"}, ORIGIN)
    heard.clear()

    def change_set() -> None:
        with store.transaction():
            store.update("account", A1, {"name": "changed", "accountnumber": "K-1"}, ORIGIN)
            store.insert(
                "account", {"accountid": A2, "name": "new", "accountnumber": "K-2"}, ORIGIN
            )
            store.delete("account", A1, ORIGIN)
            raise RuntimeError("change set fails")

    with pytest.raises(RuntimeError):
        change_set()
    row = store.get("account", A1)
    assert row is not None
    assert row["name"] == "before"
    assert store.get("account", A2) is None
    assert heard == []
    key = build_schema().table("account").alternate_keys[0]
    assert store.find("account", key, {"accountnumber": "K-1"}) is None
    store.insert("account", {"accountid": A2, "name": "again", "accountnumber": "K-2"}, ORIGIN)


def test_a_committed_transaction_announces_after_the_last_write(
    store: Store, heard: list[RowChange]
) -> None:
    with store.transaction():
        store.insert("account", {"accountid": A1, "name": "A"}, ORIGIN)
        assert heard == []
        store.insert("account", {"accountid": A2, "name": "B"}, ORIGIN)
    assert [c.row_id for c in heard] == [A1, A2]


def test_an_inner_failure_undoes_only_the_inner_part(store: Store, heard: list[RowChange]) -> None:
    with store.transaction():
        store.insert("account", {"accountid": A1, "name": "outer"}, ORIGIN)

        def inner() -> None:
            with store.transaction():
                store.insert("account", {"accountid": A2, "name": "inner"}, ORIGIN)
                store.insert("account", {"accountid": A2, "name": "inner again"}, ORIGIN)

        with pytest.raises(WebApiError):
            inner()
    assert store.get("account", A1) is not None
    assert store.get("account", A2) is None
    assert [c.row_id for c in heard] == [A1]


def test_alternate_keys_are_unique_without_regard_to_case(store: Store) -> None:
    store.insert("account", {"accountid": A1, "name": "A", "accountnumber": "ACC-1"}, ORIGIN)
    with pytest.raises(WebApiError) as caught:
        store.insert("account", {"accountid": A2, "name": "B", "accountnumber": "acc-1"}, ORIGIN)
    assert caught.value.status == 412
    assert caught.value.code == "0x80060892"
    assert "accountnumber" in caught.value.message
    key = build_schema().table("account").alternate_keys[0]
    found = store.find("account", key, {"accountnumber": "Acc-1"})
    assert found is not None
    assert found["accountid"] == A1


def test_rows_without_key_values_do_not_collide(store: Store) -> None:
    store.insert("account", {"accountid": A1, "name": "A"}, ORIGIN)
    store.insert("account", {"accountid": A2, "name": "B", "accountnumber": ""}, ORIGIN)
    assert store.counts()["account"] == 2


def test_changing_a_key_value_frees_the_old_one(store: Store) -> None:
    store.insert("account", {"accountid": A1, "name": "A", "accountnumber": "K-1"}, ORIGIN)
    store.update("account", A1, {"accountnumber": "K-9"}, ORIGIN)
    store.insert("account", {"accountid": A2, "name": "B", "accountnumber": "K-1"}, ORIGIN)
    with pytest.raises(WebApiError):
        store.update("account", A2, {"accountnumber": "k-9"}, ORIGIN)


def test_a_taken_primary_key_is_a_duplicate_record(store: Store) -> None:
    store.insert("account", {"accountid": A1, "name": "A"}, ORIGIN)
    with pytest.raises(WebApiError) as caught:
        store.insert("account", {"accountid": A1, "name": "A"}, ORIGIN)
    assert (caught.value.status, caught.value.code) == (412, "0x80040237")


def test_a_failing_listener_does_not_break_the_write(store: Store) -> None:
    calls: list[str] = []

    def broken(change: RowChange) -> None:
        calls.append(change.row_id)
        raise RuntimeError("listener bug")

    unsubscribe = store.subscribe(broken)
    store.insert("account", {"accountid": A1, "name": "A"}, ORIGIN)
    unsubscribe()
    store.insert("account", {"accountid": A2, "name": "B"}, ORIGIN)
    assert calls == [A1]
    assert store.counts()["account"] == 2


def test_clear_drops_rows_and_keys_but_keeps_counting(store: Store) -> None:
    store.insert("account", {"accountid": A1, "name": "A", "accountnumber": "K"}, ORIGIN)
    version = store.version
    store.clear()
    assert store.rows("account") == []
    row = store.insert("account", {"accountid": A1, "name": "A", "accountnumber": "K"}, ORIGIN)
    assert row["versionnumber"] == version + 1

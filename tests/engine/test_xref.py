"""The key registry on SQLite and PostgreSQL: reserve before the write, confirm after."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import pytest

from d365sap.engine.store import MessageStore
from d365sap.engine.xref import KeyRegistry, RecordKey, SalesArea
from d365sap.errors import ConflictError, NotFoundError, ValidationError

AREA = SalesArea("1710", "10", "00")
OTHER_AREA = SalesArea("1710", "20", "00")


def _id() -> str:
    return str(uuid.uuid4())


def _area_key(account: str, detail: str | None = None, area: SalesArea = AREA) -> RecordKey:
    return RecordKey("s4hc", account, area, detail or _id())


def test_reserve_is_idempotent_per_message(store: MessageStore) -> None:
    registry = KeyRegistry(store)
    key = _area_key(_id())
    first = registry.reserve(key, "m1")
    again = registry.reserve(key, "m1")
    other = registry.reserve(key, "m2")
    assert (first.outcome, first.mine) == ("reserved", True)
    assert (again.outcome, again.mine) == ("retry", True)
    assert again.entry == first.entry
    assert (other.outcome, other.mine) == ("in_progress", False)
    assert other.entry.reserved_by == "m1"
    assert first.entry.state == "reserved" and first.entry.customer is None


def test_confirm_records_the_sap_keys_and_later_messages_update(store: MessageStore) -> None:
    registry = KeyRegistry(store)
    account = _id()
    customer_key = RecordKey("s4hc", account)
    area_key = _area_key(account)
    registry.reserve(customer_key, "m1")
    registry.reserve(area_key, "m1")
    bp = registry.confirm(customer_key, "m1", business_partner="1000042", customer="1000042")
    area = registry.confirm(area_key, "m1", customer="1000042")
    later = registry.reserve(area_key, "m7")
    assert (bp.state, bp.business_partner, bp.confirmed_by) == ("confirmed", "1000042", "m1")
    assert bp.confirmed_at is not None and bp.sales_area is None
    assert area.sales_area == AREA and area.detail_id == area_key.detail_id
    assert (later.outcome, later.mine, later.entry.customer) == ("confirmed", False, "1000042")
    assert registry.confirm(area_key, "m1", customer="1000042") == area  # repeated: same entry
    with pytest.raises(ConflictError, match="already confirmed"):
        registry.confirm(area_key, "m1", customer="1000043")


def test_confirm_needs_the_reservation_of_the_same_message(store: MessageStore) -> None:
    registry = KeyRegistry(store)
    key = _area_key(_id())
    with pytest.raises(NotFoundError):
        registry.confirm(key, "m1", customer="1")
    registry.reserve(key, "m1")
    with pytest.raises(ConflictError, match="reserved by message m1"):
        registry.confirm(key, "m2", customer="1")
    with pytest.raises(ValidationError) as no_number:
        registry.confirm(key, "m1")
    assert no_number.value.field == "customer"
    assert registry.lookup(key).state == "reserved"  # type: ignore[union-attr]


def test_one_detail_and_one_sap_customer_per_record(store: MessageStore) -> None:
    registry = KeyRegistry(store)
    detail = _id()
    account = _id()
    registry.reserve(_area_key(account, detail), "m1")
    with pytest.raises(ConflictError, match=f"detail {detail}"):
        registry.reserve(_area_key(_id(), detail), "m2")  # the same detail for another account
    with pytest.raises(ConflictError, match="not"):
        registry.reserve(_area_key(account, _id()), "m1")  # that sales area has another detail
    first = _area_key(_id())
    second = _area_key(_id())
    registry.reserve(first, "m3")
    registry.confirm(first, "m3", customer="17100001")
    registry.reserve(second, "m4")
    with pytest.raises(ConflictError, match="17100001"):
        registry.confirm(second, "m4", customer="17100001")
    assert registry.lookup(second).state == "reserved"  # type: ignore[union-attr]
    with pytest.raises(ConflictError, match="17100001"):
        registry.reserve(_area_key(_id()), "m5", customer="17100001")
    # the same SAP customer in another sales area is another record
    other = _area_key(first.account_id, area=OTHER_AREA)
    registry.reserve(other, "m3", customer="17100001")
    assert registry.confirm(other, "m3").customer == "17100001"


def test_concurrent_reservations_let_exactly_one_message_write(store: MessageStore) -> None:
    registry = KeyRegistry(store)
    key = _area_key(_id())
    outcomes: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def reserve(message: str) -> None:
        try:
            barrier.wait()
            outcomes.append(registry.reserve(key, message).outcome)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reserve, args=(f"m{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert Counter(outcomes) == {"reserved": 1, "in_progress": 7}


def test_release_and_transfer(store: MessageStore) -> None:
    registry = KeyRegistry(store)
    key = _area_key(_id())
    registry.reserve(key, "m1")
    assert registry.release(key, "m2") is False
    assert registry.release(key, "m1") is True
    assert registry.lookup(key) is None
    assert registry.reserve(key, "m2").outcome == "reserved"
    assert registry.transfer(key, "m1", "m3") is False
    assert registry.transfer(key, "m2", "m3") is True
    assert registry.reserve(key, "m3").outcome == "retry"
    registry.confirm(key, "m3", customer="42")
    assert registry.release(key, "m3") is False  # a confirmed entry stays
    assert registry.transfer(key, "m3", "m4") is False


def test_lookups_both_ways_and_listing(store: MessageStore) -> None:
    registry = KeyRegistry(store)
    account = _id()
    customer_key = RecordKey("ecc", account)
    area_key = RecordKey("ecc", account, SalesArea("1000", "10", "00"), _id())
    registry.reserve(customer_key, "m1", customer="100123")
    registry.confirm(customer_key, "m1")
    registry.reserve(area_key, "m1", customer="100123")
    assert registry.by_detail("ecc", area_key.detail_id.upper()) == registry.lookup(area_key)  # type: ignore[union-attr]
    assert registry.by_detail("s4hc", area_key.detail_id or "") is None
    found = registry.by_target("ecc", customer="100123")
    assert {entry.key for entry in found} == {customer_key, area_key}
    assert registry.by_target("ecc", business_partner="100123") == []
    assert [e.key for e in registry.entries(state="reserved", account_id=account)] == [area_key]
    assert len(registry.entries(target_system="ecc", account_id=account)) == 2
    assert registry.entries(target_system="s4hc", account_id=account) == []
    with pytest.raises(ValidationError) as state:
        registry.entries(state="pending")
    assert state.value.field == "state"


def test_bad_keys_name_the_field() -> None:
    with pytest.raises(ValidationError) as account:
        RecordKey("s4hc", "not-a-guid")
    with pytest.raises(ValidationError) as area:
        SalesArea("1710", "", "00")
    with pytest.raises(ValidationError) as detail:
        RecordKey("s4hc", _id(), None, _id())
    with pytest.raises(ValidationError) as system:
        RecordKey(" ", _id())
    assert account.value.field == "account_id"
    assert area.value.field == "sales_area.distribution_channel"
    assert detail.value.field == "detail_id"
    assert system.value.field == "target_system"
    upper = str(uuid.uuid4()).upper()
    assert RecordKey("s4hc", upper).account_id == upper.lower()


def test_a_creation_reserves_its_customer_and_sales_areas_together(store: MessageStore) -> None:
    registry = KeyRegistry(store)
    account = _id()
    customer_key = RecordKey("s4hc", account)
    areas = [_area_key(account), _area_key(account, area=OTHER_AREA)]
    first, held = registry.reserve_creation(customer_key, areas, "m1", customer=None)
    assert first.outcome == "reserved"
    assert [r.outcome for r in held] == ["reserved", "reserved"]
    again, held_again = registry.reserve_creation(customer_key, areas, "m1", customer=None)
    assert again.outcome == "retry" and [r.outcome for r in held_again] == ["retry", "retry"]
    other, other_held = registry.reserve_creation(customer_key, areas, "m2", customer=None)
    assert other.outcome == "in_progress" and other_held == []  # areas left alone
    entries = registry.confirm_creation(
        customer_key, areas, "m1", customer="17100009", business_partner="17100009"
    )
    assert [(e.state, e.customer) for e in entries] == [("confirmed", "17100009")] * 3
    assert entries[0].business_partner == "17100009" and entries[1].business_partner is None
    # repeated (an attempt cut off after it committed): the same entries, nothing changed
    assert registry.confirm_creation(customer_key, areas, "m1", customer="17100009") == entries
    assert {e.key for e in registry.of_account(account)} == {customer_key, *areas}
    later, later_held = registry.reserve_creation(customer_key, areas, "m3", customer=None)
    assert later.outcome == "confirmed" and later_held == []


def test_a_creation_that_conflicts_reserves_nothing(store: MessageStore) -> None:
    registry = KeyRegistry(store)
    detail = _id()
    registry.reserve(_area_key(_id(), detail), "m1")
    account = _id()
    customer_key = RecordKey("s4hc", account)
    with pytest.raises(ConflictError, match=f"detail {detail}"):
        registry.reserve_creation(customer_key, [_area_key(account, detail)], "m2", customer=None)
    assert registry.of_account(account) == []  # the customer's reservation was rolled back


def test_confirming_a_creation_with_a_number_taken_elsewhere_names_it(
    store: MessageStore,
) -> None:
    registry = KeyRegistry(store)
    taken = _area_key(_id())
    registry.reserve(taken, "m1")
    registry.confirm(taken, "m1", customer="17100001")
    account = _id()
    customer_key = RecordKey("s4hc", account)
    area = _area_key(account)
    registry.reserve_creation(customer_key, [area], "m2", customer=None)
    with pytest.raises(ConflictError, match="17100001"):
        registry.confirm_creation(customer_key, [area], "m2", customer="17100001")
    # record by record: the customer itself is confirmed, its sales area stays reserved
    assert registry.lookup(customer_key).state == "confirmed"  # type: ignore[union-attr]
    assert registry.lookup(area).state == "reserved"  # type: ignore[union-attr]
    with pytest.raises(ConflictError, match="reserved by message m2"):
        registry.confirm(area, "m3", customer="17100002")

"""What the native customer flow remembers in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest

from d365sap.config_create import CustomerNumberRange
from d365sap.engine.checkpoints import CheckpointStore
from d365sap.engine.store import MessageStore
from d365sap.flows.sync_state import Applied, AppliedDigests, NumberCounter, digest

ROW = "3F2E1D0C-9B8A-4765-8432-10FEDCBA9876"


def test_digests_are_stable_and_short_enough_for_the_action() -> None:
    first = digest("sales_area", {"b": 1, "a": [1, 2]})
    assert first == digest("sales_area", {"a": [1, 2], "b": 1})
    assert first != digest("general", {"a": [1, 2], "b": 1})
    assert len(Applied(ROW, first, "idoc_sent", None).version()) <= 64


def test_applied_digests_are_kept_per_row(store: MessageStore) -> None:
    applied = AppliedDigests(store)
    assert applied.get(ROW) is None
    applied.put([Applied(ROW, digest(1), "created", "m-1")])
    found = applied.get(ROW.lower())
    assert found == Applied(ROW.lower(), digest(1), "created", "m-1")
    # A later message replaces it; within one call the last entry of a row wins.
    applied.put(
        [Applied(ROW, digest(2), "updated", "m-2"), Applied(ROW, digest(3), "idoc_sent", "m-3")]
    )
    assert applied.get(ROW) == Applied(ROW.lower(), digest(3), "idoc_sent", "m-3")
    applied.forget(ROW)
    assert applied.get(ROW) is None


def test_applied_digests_stay_out_of_the_change_loaders_way(store: MessageStore) -> None:
    AppliedDigests(store).put([Applied(ROW, digest(1), "created", "m-1")])
    checkpoints = CheckpointStore(store)
    assert checkpoints.version_count("dataverse:sap_erpaccountdetails") == 0
    checkpoints.reset("dataverse:sap_erpaccountdetails")
    assert AppliedDigests(store).get(ROW) is not None


def test_the_number_counter_hands_out_each_number_once(store: MessageStore) -> None:
    numbers = CustomerNumberRange(**{"from": "900000", "to": "900049"})
    counters = [NumberCounter(store, numbers) for _ in range(2)]  # two processes, one store
    drawn: list[str] = []
    lock = threading.Lock()

    def draw(counter: NumberCounter) -> None:
        for _ in range(10):
            number = counter.next_number()
            with lock:
                drawn.append(number)

    threads = [threading.Thread(target=draw, args=(counters[n % 2],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(drawn) == [str(n) for n in range(900000, 900040)]


def test_an_exhausted_range_is_refused_and_another_range_starts_fresh(
    store: MessageStore,
) -> None:
    small = NumberCounter(store, CustomerNumberRange(**{"from": "0000900000", "to": "900001"}))
    assert [small.next_number(), small.next_number()] == ["900000", "900001"]
    with pytest.raises(ValueError, match="900000-900001 is exhausted"):
        small.next_number()
    other = NumberCounter(store, CustomerNumberRange(**{"from": "800000", "to": "899999"}))
    assert other.next_number() == "800000"

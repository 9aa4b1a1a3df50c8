"""The shared throttle on SQLite and PostgreSQL: one pause for every caller, one budget for all.

"Processes" are separate MessageStore instances on the same database. Most tests run on a
simulated clock (sleeping advances it), so waits of minutes take no time; the last one races
real tasks and threads against the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from d365sap.engine.store import MessageStore
from d365sap.engine.throttle import SharedThrottle, ThrottleLimits
from d365sap.errors import TransientError

pytestmark = pytest.mark.anyio


class Clock:
    """Simulated time shared by the throttles of one test."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def other(store: MessageStore) -> Iterator[MessageStore]:
    """A second process's store on the same database."""
    url = store.engine.url.render_as_string(hide_password=False)
    opened = MessageStore.open(url)
    yield opened
    opened.close()


def throttle(store: MessageStore, clock: Clock, **limits: float) -> SharedThrottle:
    chosen = ThrottleLimits(**limits)  # type: ignore[arg-type]
    return SharedThrottle(store, "dataverse", chosen, clock=clock, sleep=clock.sleep)


async def test_budget_is_taken_in_leases_and_waits_for_the_window(store: MessageStore) -> None:
    clock = Clock()
    gate = throttle(store, clock, max_requests=10, window_seconds=60, lease_size=4)
    for _ in range(10):
        await gate.acquire()
    assert clock.slept == []
    assert (gate.stats.leases, gate.stats.requests) == (3, 10)  # 4 + 4 + 2
    assert gate.state().requests_in_window == 10
    clock.now += 5
    await gate.acquire()  # waits until the first lease leaves the window
    assert clock.slept == [pytest.approx(55.0)]
    assert gate.stats.budget_waits == 1
    assert gate.stats.waited_seconds == pytest.approx(55.0)


async def test_two_processes_share_one_budget(store: MessageStore, other: MessageStore) -> None:
    clock = Clock()
    first = throttle(store, clock, max_requests=10, window_seconds=60, lease_size=3)
    second = throttle(other, clock, max_requests=10, window_seconds=60, lease_size=3)
    for _ in range(6):
        await first.acquire()
    for _ in range(4):
        await second.acquire()
    assert clock.slept == []
    assert second.state().requests_in_window == 10
    await second.acquire()
    assert clock.slept == [pytest.approx(60.0)]


async def test_a_429_pauses_every_caller(store: MessageStore, other: MessageStore) -> None:
    clock = Clock()
    hit = throttle(store, clock, pause_check_seconds=0)
    bystander = throttle(other, clock, pause_check_seconds=0)
    await hit.acquire()
    await bystander.acquire()
    await hit.pause(30)
    await hit.pause(5)  # a shorter pause never shortens the one in force
    await bystander.acquire()
    assert clock.slept == [pytest.approx(30.0)]
    assert bystander.stats.waited_seconds == pytest.approx(30.0)
    assert bystander.state().paused_until == pytest.approx(clock.now)
    await hit.acquire()
    assert clock.slept == [pytest.approx(30.0)]  # the pause is over for everyone


async def test_a_pause_reaches_other_processes_within_the_check_interval(
    store: MessageStore, other: MessageStore
) -> None:
    clock = Clock()
    hit = throttle(store, clock)
    bystander = throttle(other, clock, pause_check_seconds=2)
    await bystander.acquire()
    await hit.pause(10)
    clock.now += 2
    await bystander.acquire()
    assert clock.slept == [pytest.approx(8.0)]


async def test_waits_longer_than_allowed_fail_as_transient(store: MessageStore) -> None:
    clock = Clock()
    gate = throttle(store, clock, max_wait_seconds=60, pause_check_seconds=0)
    await gate.pause(120)
    with pytest.raises(TransientError) as paused:
        await gate.acquire()
    assert paused.value.retry_after == pytest.approx(120.0)
    assert paused.value.status == 429
    assert clock.slept == []
    full = throttle(store, clock, max_requests=2, window_seconds=300, max_wait_seconds=10)
    clock.now += 121
    await full.acquire()
    await full.acquire()
    with pytest.raises(TransientError, match="budget"):
        await full.acquire()


async def test_an_unspent_lease_lapses(store: MessageStore) -> None:
    clock = Clock()
    gate = throttle(store, clock, max_requests=100, lease_size=20, lease_seconds=5)
    await gate.acquire()
    clock.now += 6
    await gate.acquire()
    assert gate.stats.leases == 2
    assert gate.state().requests_in_window == 40  # the lapsed lease still counts: safe side


async def test_concurrent_processes_never_exceed_the_budget(
    store: MessageStore, other: MessageStore
) -> None:
    limits = ThrottleLimits(max_requests=60, window_seconds=600, lease_size=7, max_wait_seconds=0)
    gates = [SharedThrottle(store, "race", limits), SharedThrottle(other, "race", limits)]
    granted = 0
    refused = 0

    async def take(gate: SharedThrottle) -> None:
        nonlocal granted, refused
        try:
            await gate.acquire()
        except TransientError:
            refused += 1
        else:
            granted += 1

    await asyncio.gather(*(take(gates[n % 2]) for n in range(120)))
    assert granted == 60
    assert refused == 60
    assert gates[0].state().requests_in_window == 60


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_requests"):
        ThrottleLimits(max_requests=0)
    with pytest.raises(ValueError, match="window_seconds"):
        ThrottleLimits(window_seconds=0)

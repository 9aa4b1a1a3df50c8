"""429 storms against the emulator's service protection, survived through the shared throttle.

Two clients stand for two worker processes: each has its own token provider, connection pool
and MessageStore, the stores on one database. The emulator's limits are per user, and both
clients are the same application user, as the workers of one deployment are.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from d365sap.connectors.dataverse import DataverseClient
from d365sap.emulators.dataverse.protection import ServiceProtectionSettings
from d365sap.emulators.settings import DataverseEmulatorSettings
from d365sap.emulators.tls import TlsFiles, ensure_tls
from d365sap.engine.store import MessageStore
from d365sap.engine.throttle import SharedThrottle, ThrottleLimits
from d365sap.errors import TransientError
from support.dataverse_api import ACCOUNT_MUSTER
from support.dataverse_server import RunningDataverse, dataverse_server

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls(tmp_path_factory.mktemp("dataverse-tls"))


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[MessageStore, MessageStore]]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    first, second = MessageStore.open(url), MessageStore.open(url)
    yield first, second
    first.close()
    second.close()


def _protected(max_requests: int, window_seconds: float) -> DataverseEmulatorSettings:
    limits = ServiceProtectionSettings(max_requests=max_requests, window_seconds=window_seconds)
    return DataverseEmulatorSettings(protection=limits)


def _throttled_count(dataverse: RunningDataverse) -> int:
    users = dataverse.admin("GET", "/emulator/limits").json()["users"]
    return sum(int(user["throttled"]["requests"]) for user in users.values())


class SignallingThrottle(SharedThrottle):
    """Says when it has recorded a pause, so a test can act right after."""

    paused = asyncio.Event()

    async def pause(self, seconds: float) -> None:
        await super().pause(seconds)
        self.paused.set()


async def _get(client: DataverseClient) -> str:
    row = await client.get("accounts", ACCOUNT_MUSTER, select=["name"])
    return str(row["accountid"])


async def test_a_429_seen_by_one_worker_pauses_the_other(
    tls: TlsFiles, stores: tuple[MessageStore, MessageStore]
) -> None:
    limits = ThrottleLimits(max_requests=1000, pause_check_seconds=0)
    hit = SignallingThrottle(stores[0], "dataverse", limits)
    hit.paused = asyncio.Event()
    bystander = SharedThrottle(stores[1], "dataverse", limits)
    with dataverse_server(tls, _protected(8, 2.0)) as dataverse:
        async with (
            dataverse.client(throttle=hit) as first,
            dataverse.client(throttle=bystander) as second,
        ):
            await _get(second)  # both have their token and a connection before the storm
            for _ in range(7):
                await _get(first)  # the window is full now

            async def after_the_pause() -> str:
                await hit.paused.wait()
                return await _get(second)

            results = await asyncio.gather(_get(first), after_the_pause())
        throttled = _throttled_count(dataverse)
    assert results == [ACCOUNT_MUSTER, ACCOUNT_MUSTER]
    assert first.stats.throttled == 1
    assert second.stats.throttled == 0  # it never sent a request into the pause
    assert throttled == 1
    assert bystander.stats.waits >= 1
    assert bystander.stats.waited_seconds > 0.5
    assert hit.stats.pauses_reported == 1


async def test_the_budget_keeps_two_workers_under_the_limit(
    tls: TlsFiles, stores: tuple[MessageStore, MessageStore]
) -> None:
    limits = ThrottleLimits(max_requests=8, window_seconds=1.0, lease_size=2, lease_seconds=0.5)
    throttles = [SharedThrottle(store, "dataverse", limits) for store in stores]
    with dataverse_server(tls, _protected(12, 1.0)) as dataverse:
        async with (
            dataverse.client(throttle=throttles[0]) as first,
            dataverse.client(throttle=throttles[1]) as second,
        ):
            await asyncio.gather(_get(first), _get(second))  # tokens and connections first
            started = time.monotonic()
            results = await asyncio.gather(*(_get(c) for c in [first, second] * 10))
            elapsed = time.monotonic() - started
        throttled = _throttled_count(dataverse)
    assert results == [ACCOUNT_MUSTER] * 20
    assert throttled == 0
    assert first.stats.throttled == second.stats.throttled == 0
    assert elapsed >= 2.0  # 22 requests at 8 per second: the third second is needed
    assert sum(t.stats.budget_waits for t in throttles) >= 2


async def test_an_injected_429_storm_is_survived(
    tls: TlsFiles, stores: tuple[MessageStore, MessageStore]
) -> None:
    limits = ThrottleLimits(pause_check_seconds=0.1)
    throttles = [SharedThrottle(store, "dataverse", limits) for store in stores]
    with dataverse_server(tls) as dataverse:
        dataverse.admin("PUT", "/emulator/faults", json={"retry_after_seconds": 1})
        async with (
            dataverse.client(throttle=throttles[0]) as first,
            dataverse.client(throttle=throttles[1]) as second,
        ):
            await asyncio.gather(_get(first), _get(second))
            dataverse.admin(
                "POST", "/emulator/faults/next", json={"kind": "retry_after", "count": 24}
            )
            results = await asyncio.gather(*(_get(c) for c in [first, second] * 4))
        faults = dataverse.admin("GET", "/emulator/faults").json()
    assert results == [ACCOUNT_MUSTER] * 8
    assert first.stats.throttled + second.stats.throttled == 24
    assert all(t.stats.waited_seconds >= 1.0 for t in throttles)
    assert faults["counters"]["retry_after"] == 24


async def test_a_request_throttled_too_often_fails_as_transient(
    tls: TlsFiles, stores: tuple[MessageStore, MessageStore]
) -> None:
    gate = SharedThrottle(stores[0], "dataverse", ThrottleLimits(pause_check_seconds=0))
    with dataverse_server(tls) as dataverse:
        dataverse.admin("PUT", "/emulator/faults", json={"retry_after_seconds": 1})
        async with dataverse.client(throttle=gate, max_throttle_retries=1) as client:
            await _get(client)
            dataverse.admin(
                "POST", "/emulator/faults/next", json={"kind": "retry_after", "count": 2}
            )
            with pytest.raises(TransientError) as throttled:
                await _get(client)
    assert throttled.value.status == 429
    assert throttled.value.retry_after == 1.0
    assert client.stats.throttled == 2

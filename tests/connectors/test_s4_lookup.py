"""Existence checks sharing one OData query, against the S/4 emulator over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx2
import pytest

from d365sap.connectors.s4_lookup import KeyLookup
from d365sap.connectors.s4_odata import S4ODataClient
from d365sap.emulators.s4.app import create_app
from d365sap.emulators.settings import S4EmulatorSettings
from d365sap.errors import TransientError
from d365sap.web.serving import BackgroundServer, serving

pytestmark = pytest.mark.anyio

ROOT = "/sap/opu/odata/sap/API_BUSINESS_PARTNER"
KEY = ("Customer", "SalesOrganization", "DistributionChannel", "Division")


def area(customer: str) -> dict[str, str]:
    return dict(zip(KEY, (customer, "1710", "10", "00"), strict=True))


@pytest.fixture(scope="module")
def s4_server() -> Iterator[BackgroundServer]:
    with serving(create_app(S4EmulatorSettings()), name="s4-lookup") as server:
        yield server


@pytest.fixture
async def s4(s4_server: BackgroundServer) -> AsyncIterator[S4ODataClient]:
    httpx2.post(s4_server.url + "/emulator/reset", timeout=5.0).raise_for_status()
    httpx2.delete(s4_server.url + "/emulator/faults", timeout=5.0)
    async with S4ODataClient(
        s4_server.url + ROOT, user="S4_COMM_USER", password="Welcome1!"
    ) as client:
        yield client
    httpx2.delete(s4_server.url + "/emulator/faults", timeout=5.0)


async def test_keys_asked_for_together_share_one_query(s4: S4ODataClient) -> None:
    lookup = KeyLookup(s4, "A_CustomerSalesArea", KEY)

    found = await asyncio.gather(
        *(lookup.find(area(c)) for c in ("17100003", "17199999", "17100002", "17100003"))
    )

    assert lookup.queries == 1
    assert [f.entity["Customer"] if f.entity else None for f in found] == [
        "17100003",
        None,
        "17100002",
        "17100003",
    ]
    assert all(f.status == 200 and f.shared_with == 2 for f in found)  # three distinct keys
    assert found[0].entity is not None and found[0].entity["__metadata"]["etag"]


async def test_a_key_asked_for_alone_is_one_query_of_its_own(s4: S4ODataClient) -> None:
    lookup = KeyLookup(s4, "A_CustomerSalesArea", KEY)

    first = await lookup.find(area("17100002"))
    second = await lookup.find(area("17199999"))

    assert lookup.queries == 2
    assert first.entity is not None and first.shared_with == 0
    assert second.entity is None


async def test_a_query_names_at_most_max_keys(s4: S4ODataClient) -> None:
    lookup = KeyLookup(s4, "A_CustomerSalesArea", KEY, max_keys=2, max_in_flight=1)
    customers = ("17100001", "17100002", "17100003", "17100004", "17100005")

    found = await asyncio.gather(*(lookup.find(area(c)) for c in customers))

    assert lookup.queries == 3
    assert all(f.shared_with <= 1 for f in found)
    assert [f.entity is not None for f in found] == [
        f.entity is not None for f in [await lookup.find(area(c)) for c in customers]
    ]


async def test_a_failed_query_fails_every_key_that_shared_it(
    s4: S4ODataClient, s4_server: BackgroundServer
) -> None:
    lookup = KeyLookup(s4, "A_CustomerSalesArea", KEY)
    httpx2.put(
        s4_server.url + "/emulator/faults", json={"error_rate": {"503": 1.0}}, timeout=5.0
    ).raise_for_status()

    outcomes = await asyncio.gather(
        *(lookup.find(area(c)) for c in ("17100002", "17100003")), return_exceptions=True
    )

    assert all(isinstance(o, TransientError) and o.status == 503 for o in outcomes)
    assert lookup.queries == 0


async def test_a_lookup_needs_the_whole_key(s4: S4ODataClient) -> None:
    lookup = KeyLookup(s4, "A_CustomerSalesArea", KEY)
    with pytest.raises(ValueError, match="exactly the key"):
        await lookup.find({"Customer": "17100002"})

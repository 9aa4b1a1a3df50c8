"""S/4 OData client: CSRF once per session, one refetch on expiry, ETags, error classification.

These are unit tests on an in-process transport; the end-to-end tests run the same client
against the S/4 emulator over loopback.
"""

from __future__ import annotations

import json

import httpx2
import pytest

from d365sap.connectors.s4_odata import S4ODataClient
from d365sap.errors import ConflictError, PermanentError, TransientError

pytestmark = pytest.mark.anyio

BASE = "http://s4.test/sap/opu/odata/sap/API_BUSINESS_PARTNER"


class FakeS4:
    """Issues tokens, expires them on request, and records what it saw."""

    def __init__(self) -> None:
        self.token = "T1"
        self.fetches = 0
        self.requests: list[httpx2.Request] = []
        self.expire_next_write = False
        self.post_status = 201
        self.post_body: dict[str, object] = {"d": {"__metadata": {"etag": 'W/"1"'}}}

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if request.headers.get("x-csrf-token") == "Fetch":
            self.fetches += 1
            self.token = f"T{self.fetches}"
            return httpx2.Response(
                200, headers={"x-csrf-token": self.token, "set-cookie": "SAP_SESSIONID=abc; Path=/"}
            )
        if request.method == "GET":
            body = {"d": {"results": [{"Customer": "1", "__metadata": {"etag": 'W/"7"'}}]}}
            return httpx2.Response(200, json=body)
        if self.expire_next_write:
            self.expire_next_write = False
            self.token = "expired"
        if request.headers.get(
            "x-csrf-token"
        ) != self.token or "SAP_SESSIONID" not in request.headers.get("cookie", ""):
            return httpx2.Response(
                403, headers={"x-csrf-token": "Required"}, text="CSRF token validation failed"
            )
        if request.method == "POST":
            return httpx2.Response(self.post_status, json=self.post_body)
        return httpx2.Response(204)


def client(fake: FakeS4) -> S4ODataClient:
    return S4ODataClient(BASE, user="U", password="P", transport=httpx2.MockTransport(fake))


async def test_token_is_fetched_once_per_session() -> None:
    fake = FakeS4()
    async with client(fake) as s4:
        await s4.create("A_CustomerSalesArea", {"Customer": "1"})
        await s4.update("A_CustomerSalesArea", {"Customer": "1"}, {"SalesGroup": "1"})
        await s4.create("A_CustomerSalesArea", {"Customer": "2"})
    assert fake.fetches == 1
    writes = [r for r in fake.requests if r.method in ("POST", "PATCH")]
    assert all(r.headers["x-csrf-token"] == "T1" for r in writes)
    assert all(r.headers["authorization"].startswith("Basic ") for r in fake.requests)


async def test_expired_token_is_refetched_once() -> None:
    fake = FakeS4()
    async with client(fake) as s4:
        await s4.create("A_CustomerSalesArea", {"Customer": "1"})
        fake.expire_next_write = True
        reply = await s4.create("A_CustomerSalesArea", {"Customer": "2"})
    assert reply.status == 201
    assert fake.fetches == 2


async def test_token_rejected_twice_is_transient() -> None:
    fake = FakeS4()

    def always_required(request: httpx2.Request) -> httpx2.Response:
        if request.headers.get("x-csrf-token") == "Fetch":
            return fake(request)
        return httpx2.Response(403, headers={"x-csrf-token": "Required"})

    s4 = S4ODataClient(BASE, transport=httpx2.MockTransport(always_required))
    with pytest.raises(TransientError, match="CSRF"):
        await s4.create("A_CustomerSalesArea", {})
    await s4.aclose()


async def test_query_filter_and_update_if_match() -> None:
    fake = FakeS4()
    async with client(fake) as s4:
        found = await s4.query(
            "A_CustomerSalesArea", equals={"Customer": "O'1"}, select=["Customer"]
        )
        await s4.update("A_CustomerSalesArea", {"Customer": "O'1"}, {"X": 1}, etag='W/"7"')
    assert found.entities[0]["Customer"] == "1"
    get = fake.requests[0]
    assert get.url.params["$filter"] == "Customer eq 'O''1'"
    assert get.url.params["$select"] == "Customer"
    patch = next(r for r in fake.requests if r.method == "PATCH")
    assert patch.headers["if-match"] == 'W/"7"'
    assert patch.url.raw_path.decode().endswith("A_CustomerSalesArea(Customer='O%27%271')")
    assert json.loads(patch.content) == {"X": 1}


async def test_create_conflict_and_business_error() -> None:
    fake = FakeS4()
    fake.post_status = 400
    fake.post_body = {"error": {"code": "X/1", "message": {"value": "Entity already exists"}}}
    async with client(fake) as s4:
        with pytest.raises(ConflictError, match="already exists"):
            await s4.create("A_CustomerSalesArea", {})
        fake.post_body = {"error": {"code": "X/2", "message": {"value": "Customer 9 unknown"}}}
        with pytest.raises(PermanentError, match="Customer 9 unknown") as caught:
            await s4.create("A_CustomerSalesArea", {})
    assert not isinstance(caught.value, ConflictError)


async def test_connection_errors_are_transient() -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    s4 = S4ODataClient(BASE, transport=httpx2.MockTransport(refuse))
    with pytest.raises(TransientError, match="connection failed"):
        await s4.query("A_CustomerSalesArea")
    await s4.aclose()

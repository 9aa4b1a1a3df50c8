"""Creating customers in S/4HANA Cloud: the client and the mapping against the emulator on loopback.

The emulator numbers partners from a configured range (3000000-3999999 here, not its default), so
the tests show that the numbers come from S/4, not from the client.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest

from d365sap.config_create import S4CreateSettings
from d365sap.connectors.s4_odata import S4ODataClient, created_partner
from d365sap.emulators.s4.app import create_app
from d365sap.emulators.settings import S4EmulatorSettings
from d365sap.errors import PermanentError, TransientError
from d365sap.mapping.s4_business_partner import business_partner_payload, external_reference
from d365sap.model.new_customer import (
    CustomerAddress,
    DataverseReferences,
    NewCustomer,
    NewCustomerGeneral,
    NewCustomerSalesArea,
)
from d365sap.web.serving import BackgroundServer, serving

pytestmark = pytest.mark.anyio

SERVICE = "/sap/opu/odata/sap/API_BUSINESS_PARTNER"
ACCOUNT_ID = "9f0e8d7c-6b5a-4c3d-9e2f-1a0b9c8d7e6f"


@pytest.fixture(scope="module")
def s4_server() -> Iterator[BackgroundServer]:
    settings = S4EmulatorSettings(bp_number_range_from=3000000, bp_number_range_to=3999999)
    with serving(create_app(settings), name="s4-emulator-create") as server:
        yield server


@pytest.fixture
def s4(s4_server: BackgroundServer) -> str:
    httpx2.post(s4_server.url + "/emulator/reset").raise_for_status()
    httpx2.delete(s4_server.url + "/emulator/faults").raise_for_status()
    return s4_server.url


def client(url: str) -> S4ODataClient:
    return S4ODataClient(url + SERVICE, user="S4_COMM_USER", password="Welcome1!")


def customer(account_id: str = ACCOUNT_ID) -> NewCustomer:
    return NewCustomer(
        system_type="S4HC",
        general=NewCustomerGeneral(
            name1="Neukunde Pumpen AG",
            search_term="NEUKUNDE",
            email="einkauf@neukunde.example",
            address=CustomerAddress(street="Ruhrallee 1", city="Essen", country="DE"),
        ),
        sales_areas=(
            NewCustomerSalesArea(
                sales_organization="1010",
                distribution_channel="10",
                division="00",
                currency="EUR",
                customer_group="01",
            ),
            NewCustomerSalesArea(
                sales_organization="1010", distribution_channel="20", division="00"
            ),
        ),
        source=DataverseReferences(account_id=account_id, erp_account_id="e-1"),
    )


def body(account_id: str = ACCOUNT_ID) -> dict[str, object]:
    return business_partner_payload(customer(account_id), S4CreateSettings())


def partners_with(url: str, reference: str) -> int:
    response = httpx2.get(
        url + SERVICE + "/A_BusinessPartner",
        params={
            "$filter": f"BusinessPartnerIDByExtSystem eq '{reference}'",
            "$inlinecount": "allpages",
        },
        auth=("S4_COMM_USER", "Welcome1!"),
        headers={"Accept": "application/json"},
    )
    return int(response.json()["d"]["__count"])


async def test_create_takes_the_numbers_from_s4_and_the_sales_areas_exist(s4: str) -> None:
    async with client(s4) as sap:
        created = await sap.create_business_partner(body())
        assert (created.business_partner, created.customer) == ("3000000", "3000000")
        assert created.sales_areas == (("1010", "10", "00"), ("1010", "20", "00"))
        assert created.etag is not None
        found = await sap.query(
            "A_CustomerSalesArea",
            equals={
                "Customer": "3000000",
                "SalesOrganization": "1010",
                "DistributionChannel": "10",
            },
            select=["Customer", "Currency", "CustomerGroup"],
        )
        assert [(a["Currency"], a["CustomerGroup"]) for a in found.entities] == [("EUR", "01")]
        read = await sap.read("A_Customer", {"Customer": "3000000"})
        assert read.entity is not None and read.entity["CustomerName"] == "Neukunde Pumpen AG"
        again = await sap.create_business_partner(body("11111111-2222-3333-4444-555555555555"))
        assert again.business_partner == "3000001"
    assert sap.csrf_fetches == 1


async def test_find_by_external_reference(s4: str) -> None:
    reference = external_reference(ACCOUNT_ID)
    async with client(s4) as sap:
        assert await sap.find_business_partner(reference) is None
        created = await sap.create_business_partner(body())
        found = await sap.find_business_partner(reference)
    assert found is not None
    assert (found.business_partner, found.customer) == (created.business_partner, "3000000")


async def test_a_lost_answer_is_found_again_instead_of_creating_twice(s4: str) -> None:
    reference = external_reference(ACCOUNT_ID)
    httpx2.post(s4 + "/emulator/faults/next", json={"kind": "drop_after_commit"}).raise_for_status()
    async with client(s4) as sap:
        with pytest.raises(TransientError):
            await sap.create_business_partner(body())
        found = await sap.find_business_partner(reference)
    assert found is not None and found.business_partner == "3000000"
    assert partners_with(s4, reference) == 1


async def test_an_expired_csrf_token_is_fetched_again(s4: str) -> None:
    async with client(s4) as sap:
        await sap.fetch_csrf_token()
        httpx2.post(s4 + "/emulator/faults/next", json={"kind": "csrf_expiry"}).raise_for_status()
        created = await sap.create_business_partner(body())
    assert created.business_partner == "3000000"
    assert sap.csrf_fetches == 2


async def test_s4_rejections_are_permanent_with_s4_text(s4: str) -> None:
    bad = {**body(), "BusinessPartnerCategory": "9"}
    async with client(s4) as sap:
        with pytest.raises(PermanentError) as caught:
            await sap.create_business_partner(bad)
    assert caught.value.status == 400
    assert "category" in (caught.value.backend_message or "").lower()


async def test_server_errors_are_transient(s4: str) -> None:
    async with client(s4) as sap:
        await sap.fetch_csrf_token()
        httpx2.post(
            s4 + "/emulator/faults/next", json={"kind": "error", "status": 503}
        ).raise_for_status()
        with pytest.raises(TransientError, match="503"):
            await sap.create_business_partner(body())
        assert await sap.find_business_partner(external_reference(ACCOUNT_ID)) is None


def test_reply_without_a_number_is_refused() -> None:
    with pytest.raises(PermanentError, match="no BusinessPartner"):
        created_partner({"Customer": "1"}, etag=None, raw=b"{}")
    deferred = created_partner(
        {"BusinessPartner": "7", "Customer": "7", "to_Customer": {"__deferred": {"uri": "x"}}},
        etag=None,
        raw=b"",
    )
    assert (deferred.customer, deferred.sales_areas) == ("7", ())

"""DataverseClient reads against the Dataverse emulator over TLS, tokens from msal.

One row by id and by alternate key, paging with odata.maxpagesize and nextLink (resumable from
a saved link), change tracking with creations, updates and deletions, and an expired delta
token raised as DeltaTokenExpiredError.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from d365sap.connectors.dataverse import DataverseClient
from d365sap.emulators.dataverse.changes import ChangeTrackingSettings
from d365sap.emulators.settings import DataverseEmulatorSettings
from d365sap.emulators.tls import TlsFiles, ensure_tls
from d365sap.errors import DeltaTokenExpiredError, NotFoundError, ValidationError
from support.dataverse_api import ACCOUNT_US1, CONTACT_JANE, ORG_S4_1710
from support.dataverse_server import RunningDataverse, dataverse_server

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls(tmp_path_factory.mktemp("dataverse-tls"))


@pytest.fixture(scope="module")
def dataverse(tls: TlsFiles) -> Iterator[RunningDataverse]:
    with dataverse_server(tls) as running:
        yield running


@pytest.fixture
def expiring(tls: TlsFiles) -> Iterator[RunningDataverse]:
    """An environment whose change log keeps only three changes per table."""
    settings = DataverseEmulatorSettings(
        change_tracking=ChangeTrackingSettings(max_changes_per_table=3)
    )
    with dataverse_server(tls, settings) as running:
        yield running


async def test_get_by_id_and_by_alternate_keys(dataverse: RunningDataverse) -> None:
    async with dataverse.client() as client:
        by_id = await client.get("accounts", ACCOUNT_US1, select=["name", "accountnumber"])
        by_key = await client.get("accounts", {"accountnumber": "ACC-1001"}, select=["name"])
        org = await client.get(
            "sap_linkederporgs",
            {
                "sap_erpsystemtype": 100000000,
                "sap_vkorg": "1710",
                "sap_vtweg": "10",
                "sap_spart": "00",
            },
            select=["sap_name"],
        )
        expanded = await client.get(
            "contacts",
            uuid.UUID(CONTACT_JANE),
            select=["fullname"],
            expand=["parentcustomerid_account($select=name)"],
        )
    assert by_id["name"] == by_key["name"] == "Inlandskunde US 1"
    assert by_id["accountnumber"] == "ACC-1001"
    assert by_key["accountid"] == ACCOUNT_US1
    assert org["sap_linkederporgid"] == ORG_S4_1710
    assert by_id["@odata.etag"].startswith('W/"')
    assert expanded["fullname"] == "Jane O'Neil"
    assert expanded["parentcustomerid_account"]["name"] == "Inlandskunde US 2"


async def test_missing_rows_and_bad_keys(dataverse: RunningDataverse) -> None:
    async with dataverse.client() as client:
        with pytest.raises(NotFoundError) as missing:
            await client.get("accounts", {"accountnumber": "NO-SUCH-ACCOUNT"})
        with pytest.raises(NotFoundError):
            await client.get("accounts", str(uuid.uuid4()))
        with pytest.raises(ValidationError) as not_guid:
            await client.get("accounts", "ACC-1001")
        with pytest.raises(ValidationError) as bad_column:
            await client.get("accounts", ACCOUNT_US1, select=["name; drop"])
        requests_sent = client.stats.requests
    assert missing.value.status == 404
    assert missing.value.code == "0x80040217"
    assert "does not exist" in (missing.value.backend_message or "")
    assert not_guid.value.field == "key"
    assert bad_column.value.field == "select[0]"
    assert requests_sent == 2  # the refused keys never reached Dataverse


async def test_pages_follow_next_links_and_resume(dataverse: RunningDataverse) -> None:
    stored = {row["accountid"] for row in dataverse.rows("accounts")}
    async with dataverse.client(page_size=2) as client:
        pages = [
            page async for page in client.pages("accounts", select=["name"], orderby=["name asc"])
        ]
        resumed = [page async for page in client.pages("accounts", start=pages[0].next_link)]
    assert len(stored) >= 4
    assert all(len(page.rows) <= 2 for page in pages)
    assert [page.next_link is None for page in pages] == [False] * (len(pages) - 1) + [True]
    seen = [row["accountid"] for page in pages for row in page.rows]
    assert sorted(seen) == sorted(stored)
    names = [row["name"] for page in pages for row in page.rows]
    assert names == sorted(names, key=str.lower)
    assert [row["accountid"] for page in resumed for row in page.rows] == seen[2:]


async def test_pages_with_a_filter(dataverse: RunningDataverse) -> None:
    async with dataverse.client() as client:
        pages = [
            page
            async for page in client.pages(
                "accounts", select=["accountnumber"], filter="startswith(accountnumber,'ACC-2')"
            )
        ]
    numbers = sorted(row["accountnumber"] for page in pages for row in page.rows)
    assert numbers == ["ACC-2001", "ACC-2002"]


async def test_changes_report_creations_updates_and_deletions(
    dataverse: RunningDataverse,
) -> None:
    async with dataverse.client() as client:
        first = [page async for page in client.changes("accounts", select=["name"])]
        assert len(first[-1].upserts) == len(dataverse.rows("accounts"))
        assert first[-1].removals == []
        link = first[-1].delta_link
        assert link is not None and "$deltatoken=" in link
        created = await client.create("accounts", {"name": "Delta New"})
        doomed = await client.create("accounts", {"name": "Delta Doomed"})
        await client.update("accounts", ACCOUNT_US1, {"telephone1": "+1 555 0100"})
        await client.delete("accounts", doomed.row_id or "")
        delta = [page async for page in client.changes("accounts", link=link)]
        again = [page async for page in client.changes("accounts", link=delta[-1].delta_link)]
    upserts = {row["accountid"]: row for page in delta for row in page.upserts}
    assert set(upserts) == {created.row_id, ACCOUNT_US1}
    assert upserts[ACCOUNT_US1]["name"] == "Inlandskunde US 1"
    assert set(upserts[ACCOUNT_US1]) <= {"@odata.etag", "name", "accountid"}
    assert [row_id for page in delta for row_id in page.removals] == [doomed.row_id]
    assert delta[-1].delta_link not in (None, link)
    assert again[-1].upserts == [] and again[-1].removals == []


async def test_an_expired_delta_token_is_its_own_error(expiring: RunningDataverse) -> None:
    async with expiring.client() as client:
        first = [page async for page in client.changes("accounts", select=["name"])]
        for number in range(4):  # one more change than the log keeps
            await client.create("accounts", {"name": f"Overflow {number}"})
        with pytest.raises(DeltaTokenExpiredError) as expired:
            async for _ in client.changes("accounts", link=first[-1].delta_link):
                pass
    assert expired.value.code == "0x80044352"
    assert expired.value.status == 400
    assert "full sync" in (expired.value.backend_message or "")


async def test_links_outside_the_environment_are_refused(dataverse: RunningDataverse) -> None:
    async with dataverse.client() as client:
        with pytest.raises(Exception, match="not below the service root"):
            async for _ in client.changes(
                "accounts", link="https://elsewhere.example/api/data/v9.2/accounts"
            ):
                pass
        assert client.stats.requests == 0


def test_page_size_is_checked(dataverse: RunningDataverse) -> None:
    with pytest.raises(ValidationError) as too_big:
        DataverseClient(dataverse.url, dataverse.provider(), page_size=5001)
    assert too_big.value.field == "page_size"

"""Reading an account's rows for the native customer flow, against the emulator in process."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from d365sap.errors import ValidationError
from d365sap.flows.dataverse_assembly import AccountReader, AccountSnapshot
from d365sap.flows.dataverse_messages import DataverseChange
from d365sap.mapping.dataverse_customer import details_message, route_rows
from d365sap.mapping.routing import Route
from support.customer_rows import (
    DETAIL_MUSTER_ECC,
    DETAIL_US1_S4,
    ERP_ACCOUNT_MUSTER_GENERAL,
    ORG_ECC_1000,
    SeedRows,
)
from support.dataverse_api import ACCOUNT_MUSTER, ACCOUNT_US1, WebApi, web_api
from support.dataverse_inprocess import inprocess_client

ERP_ACCOUNT_MUSTER_ECC = "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"


def _change(table: str, row_id: str, account_id: str | None = None) -> DataverseChange:
    return DataverseChange(
        table=table,  # type: ignore[arg-type]
        id=uuid.UUID(row_id),
        account_id=uuid.UUID(account_id) if account_id else None,
        change="Update",  # type: ignore[arg-type]
        source="delta",  # type: ignore[arg-type]
    )


@pytest.mark.anyio
async def test_an_account_is_read_whole_in_two_requests() -> None:
    api = web_api()
    async with inprocess_client(api) as client:
        reader = AccountReader(client, write_back_columns=["sap_syncstatus"])
        snapshot = await reader.read(ACCOUNT_MUSTER)
        assert client.stats.requests == 2  # account with its collections, then the orgs
    assert snapshot.account is not None
    assert snapshot.account["name"] == "Muster Pumpentechnik GmbH"
    assert [r.label for r in snapshot.records()] == [
        f"sap_erpaccountdetail {DETAIL_MUSTER_ECC}",
        f"sap_erpaccount {ERP_ACCOUNT_MUSTER_ECC}",
        f"sap_erpaccount {ERP_ACCOUNT_MUSTER_GENERAL}",
    ]
    assert set(snapshot.orgs) == {ORG_ECC_1000}
    assert snapshot.detail_ids == frozenset({DETAIL_MUSTER_ECC})
    detail = snapshot.records()[0]
    assert detail.row["sap_syncstatus"] == 100_000_000  # write-back columns are read too
    assert detail.rows is not None
    assert route_rows(detail.rows).route == Route.ERP_ACCOUNT_DETAIL
    general = snapshot.records()[2]
    assert general.rows is not None
    assert general.rows.org is None  # this ERP account has no organisation of its own


def _read(api: WebApi, account_id: str) -> AccountSnapshot:
    async def read() -> AccountSnapshot:
        async with inprocess_client(api) as client:
            return await AccountReader(client).read(account_id)

    return asyncio.run(read())


def test_the_rows_build_the_same_message_as_reading_them_one_by_one() -> None:
    api = web_api()
    snapshot = _read(api, ACCOUNT_US1)
    detail = next(r for r in snapshot.records() if r.row_id == DETAIL_US1_S4)
    assert detail.rows is not None
    expected = details_message(SeedRows(api).detail_rows(DETAIL_US1_S4))
    assert details_message(detail.rows) == expected


@pytest.mark.anyio
async def test_the_account_of_a_row_is_found() -> None:
    api = web_api()
    async with inprocess_client(api) as client:
        reader = AccountReader(client)
        located = await reader.locate_account(_change("sap_erpaccountdetail", DETAIL_MUSTER_ECC))
        assert located == ACCOUNT_MUSTER
        assert (
            await reader.locate_account(_change("sap_erpaccount", ERP_ACCOUNT_MUSTER_GENERAL))
            == ACCOUNT_MUSTER
        )
        assert await reader.locate_account(_change("account", ACCOUNT_US1)) == ACCOUNT_US1
        before = client.stats.requests
        given = _change("sap_erpaccountdetail", DETAIL_MUSTER_ECC, ACCOUNT_US1)
        assert await reader.locate_account(given) == ACCOUNT_US1  # the trigger knew it
        assert client.stats.requests == before
        gone = str(uuid.uuid4())
        assert await reader.locate_account(_change("sap_erpaccountdetail", gone)) is None


@pytest.mark.anyio
async def test_a_deleted_account_reads_as_none() -> None:
    api = web_api()
    missing = str(uuid.uuid4())
    async with inprocess_client(api) as client:
        snapshot = await AccountReader(client).read(missing)
    assert snapshot.account is None
    assert snapshot.records() == []
    assert snapshot.detail_ids == frozenset()


def test_inactive_rows_and_rows_of_other_accounts_are_marked() -> None:
    api = web_api()
    _deactivate(api, "sap_erpaccountdetails", DETAIL_MUSTER_ECC)
    snapshot = _read(api, ACCOUNT_MUSTER)
    detail = snapshot.records()[0]
    assert detail.inactive
    assert snapshot.details_of(ERP_ACCOUNT_MUSTER_ECC) == []

    # A detail whose ERP account belongs to another account cannot be assembled.
    other = snapshot.__class__(
        snapshot.account_id,
        snapshot.account,
        erp_accounts=snapshot.erp_accounts[1:],
        details=snapshot.details,
        orgs=snapshot.orgs,
    )
    broken = other.records()[0]
    assert broken.rows is None
    assert isinstance(broken.problem, ValidationError)
    assert broken.problem.field == "sap_erpaccountdetail._sap_erpaccountid_value"


def _deactivate(api: WebApi, entity_set: str, row_id: str) -> None:
    response = api.patch(f"{entity_set}({row_id})", {"statecode": 1, "statuscode": 2})
    assert response.status_code == 204, response.text

"""The native flow's account reads shared in ``$batch`` requests, and its organisation cache."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from d365sap.errors import TransientError, ValidationError
from d365sap.flows.batch_buffer import BatchBuffer
from d365sap.flows.dataverse_assembly import AccountReader, AccountSnapshot
from support.dataverse_api import (
    ACCOUNT_MUSTER,
    ACCOUNT_NORDLICHT,
    ACCOUNT_US1,
    ACCOUNT_US2,
    web_api,
)
from support.dataverse_inprocess import inprocess_client

ACCOUNTS = (ACCOUNT_US1, ACCOUNT_US2, ACCOUNT_MUSTER, ACCOUNT_NORDLICHT)


def _shape(snapshot: AccountSnapshot) -> dict[str, Any]:
    return {
        "account": snapshot.account,
        "erp_accounts": sorted(snapshot.erp_accounts, key=lambda row: row["sap_erpaccountid"]),
        "details": sorted(snapshot.details, key=lambda row: row["sap_erpaccountdetailid"]),
        "orgs": dict(snapshot.orgs),
    }


@pytest.mark.anyio
async def test_batched_reads_give_the_rows_of_single_reads_in_one_request() -> None:
    api = web_api()
    async with inprocess_client(api) as client:
        single = [await AccountReader(client).read(account) for account in ACCOUNTS]
        buffer = BatchBuffer(client, batch_size=100, linger_seconds=0.2)
        reader = AccountReader(client, buffer=buffer, org_cache_seconds=60)
        before = client.stats.requests
        batched = await asyncio.gather(*(reader.read(account) for account in ACCOUNTS))
        assert buffer.requests == 1
        assert buffer.operations == len(ACCOUNTS)
        orgs_read = client.stats.requests - before - 1
        assert 1 <= orgs_read <= len(ACCOUNTS)  # the organisation reads, before the cache fills
        await buffer.close()
    assert any(snapshot.details for snapshot in single)
    assert [_shape(s) for s in batched] == [_shape(s) for s in single]
    assert [[r.label for r in s.records()] for s in batched] == [
        [r.label for r in s.records()] for s in single
    ]


@pytest.mark.anyio
async def test_a_failing_part_fails_only_its_own_submission() -> None:
    api = web_api()
    missing = str(uuid.uuid4())
    async with inprocess_client(api) as client:
        buffer = BatchBuffer(client, batch_size=100, linger_seconds=0.2)
        reader = AccountReader(client, buffer=buffer)
        bad = client.read_operation("accounts", ACCOUNT_US2, select=["nosuchcolumn"])
        good, gone, refused = await asyncio.gather(
            reader.read(ACCOUNT_US1), reader.read(missing), buffer.submit([bad])
        )
        assert buffer.requests == 1
        await buffer.close()
    assert good.account is not None and good.account["accountid"] == ACCOUNT_US1
    assert gone.account is None  # 404 in its part: the account was deleted
    assert refused[0].state == "failed"
    assert refused[0].status == 400
    assert "nosuchcolumn" in str(refused[0].error)


@pytest.mark.anyio
async def test_a_batch_refused_as_a_whole_fails_the_read_for_a_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = web_api()
    async with inprocess_client(api) as client:

        async def throttled(*args: object, **kwargs: object) -> None:
            raise TransientError("Dataverse POST $batch: 429 after the retries", status=429)

        monkeypatch.setattr(client, "_batch_chunk", throttled)
        buffer = BatchBuffer(client, batch_size=100, linger_seconds=0)
        reader = AccountReader(client, buffer=buffer)
        with pytest.raises(TransientError) as caught:
            await reader.read(ACCOUNT_US1)
        assert caught.value.status == 429
        await buffer.close()


@pytest.mark.anyio
async def test_organisations_are_read_again_only_when_the_cache_expired() -> None:
    api = web_api()
    async with inprocess_client(api) as client:
        cached = AccountReader(client, org_cache_seconds=60)
        first = await cached.read(ACCOUNT_MUSTER)
        assert first.orgs
        before = client.stats.requests
        again = await cached.read(ACCOUNT_MUSTER)
        assert client.stats.requests - before == 1  # only the account
        assert again.orgs == first.orgs

        uncached = AccountReader(client)
        await uncached.read(ACCOUNT_MUSTER)
        before = client.stats.requests
        await uncached.read(ACCOUNT_MUSTER)
        assert client.stats.requests - before == 2  # the account and its organisations

        expired = AccountReader(client, org_cache_seconds=60)
        await expired.read(ACCOUNT_MUSTER)
        for org_id, (_, row) in list(expired.orgs._rows.items()):
            expired.orgs._rows[org_id] = (0.0, row)
        before = client.stats.requests
        await expired.read(ACCOUNT_MUSTER)
        assert client.stats.requests - before == 2


@pytest.mark.anyio
async def test_a_read_operation_checks_its_names() -> None:
    api = web_api()
    async with inprocess_client(api) as client:
        with pytest.raises(ValidationError) as caught:
            client.read_operation("accounts", ACCOUNT_US1, select=["bad name"])
        assert caught.value.field == "select[0]"

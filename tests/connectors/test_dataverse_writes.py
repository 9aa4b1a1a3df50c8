"""DataverseClient writes against the Dataverse emulator over TLS.

Creates, updates guarded by If-Match, upserts by alternate key with If-None-Match: * and
If-Match: *, deletes, 412 on a stale or concurrently changed ETag, Dataverse's error codes and
messages kept, transient failures classified, and a token that expires being replaced once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from d365sap.emulators.tls import TlsFiles, ensure_tls
from d365sap.errors import (
    NotFoundError,
    PermanentError,
    PreconditionFailedError,
    TransientError,
    ValidationError,
)
from support.dataverse_api import ACCOUNT_MUSTER, DETAIL_US1, ERP_ACCOUNT_US1, ORG_S4_1710
from support.dataverse_server import RunningDataverse, dataverse_server

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls(tmp_path_factory.mktemp("dataverse-tls"))


@pytest.fixture(scope="module")
def dataverse(tls: TlsFiles) -> Iterator[RunningDataverse]:
    with dataverse_server(tls) as running:
        yield running


@pytest.fixture(autouse=True)
def no_faults(dataverse: RunningDataverse) -> Iterator[None]:
    yield
    dataverse.admin("DELETE", "/emulator/faults")


def _number() -> str:
    return f"T-{uuid.uuid4().hex[:10]}"


async def test_upsert_by_alternate_key_creates_then_updates(dataverse: RunningDataverse) -> None:
    number = _number()
    async with dataverse.client() as client:
        created = await client.upsert(
            "accounts", {"accountnumber": number}, {"name": "Upserted"}, return_row=True
        )
        updated = await client.upsert(
            "accounts", {"accountnumber": number}, {"telephone1": "+49 1"}, return_row=True
        )
        quiet = await client.upsert("accounts", {"accountnumber": number}, {"name": "Renamed"})
    assert (created.status, created.created) == (201, True)
    assert (updated.status, updated.created) == (200, False)
    assert created.row is not None and updated.row is not None
    assert created.row["accountid"] == updated.row["accountid"]
    assert created.etag != updated.etag
    assert (quiet.status, quiet.created) == (204, None)
    assert quiet.row_id == created.row["accountid"]
    stored = [row for row in dataverse.rows("accounts") if row.get("accountnumber") == number]
    assert len(stored) == 1
    assert stored[0]["name"] == "Renamed" and stored[0]["telephone1"] == "+49 1"


async def test_create_only_and_update_only(dataverse: RunningDataverse) -> None:
    number = _number()
    async with dataverse.client() as client:
        with pytest.raises(NotFoundError):
            await client.upsert(
                "accounts", {"accountnumber": number}, {"name": "Never"}, update_only=True
            )
        first = await client.upsert(
            "accounts", {"accountnumber": number}, {"name": "Once"}, create_only=True
        )
        with pytest.raises(PreconditionFailedError) as again:
            await client.upsert(
                "accounts", {"accountnumber": number}, {"name": "Twice"}, create_only=True
            )
        changed = await client.upsert(
            "accounts", {"accountnumber": number}, {"name": "Changed"}, update_only=True
        )
        with pytest.raises(ValidationError):
            await client.upsert(
                "accounts", {"accountnumber": number}, {}, create_only=True, update_only=True
            )
    assert first.created is True
    assert again.value.status == 412
    assert again.value.code == "0x80040237"
    assert again.value.backend_message == "A record with matching key values already exists."
    assert changed.row_id == first.row_id
    names = [r["name"] for r in dataverse.rows("accounts") if r.get("accountnumber") == number]
    assert names == ["Changed"]


async def test_update_with_if_match(dataverse: RunningDataverse) -> None:
    async with dataverse.client() as client:
        made = await client.create("accounts", {"name": "Versioned"}, return_row=True)
        assert made.row is not None
        row_id = made.row["accountid"]
        current = await client.get("accounts", row_id, select=["name"])
        done = await client.update(
            "accounts", row_id, {"name": "V2"}, etag=current["@odata.etag"], return_row=True
        )
        with pytest.raises(PreconditionFailedError) as stale:
            await client.update("accounts", row_id, {"name": "V3"}, etag=current["@odata.etag"])
        with pytest.raises(NotFoundError):  # an update never creates
            await client.update("accounts", str(uuid.uuid4()), {"name": "Ghost"})
        after = await client.get("accounts", row_id, select=["name"])
    assert done.row is not None and done.row["name"] == "V2"
    assert stale.value.code == "0x80060882"
    assert "RowVersion" in (stale.value.backend_message or "")
    assert after["name"] == "V2"


async def test_a_concurrent_change_fails_the_conditional_write(
    dataverse: RunningDataverse,
) -> None:
    async with dataverse.client() as client:
        row = await client.get("accounts", ACCOUNT_MUSTER, select=["name"])
        dataverse.admin("POST", "/emulator/faults/next", json={"kind": "etag_change"})
        with pytest.raises(PreconditionFailedError):
            await client.update(
                "accounts", ACCOUNT_MUSTER, {"name": "Lost"}, etag=row["@odata.etag"]
            )
        fresh = await client.get("accounts", ACCOUNT_MUSTER, select=["name"])
        await client.update("accounts", ACCOUNT_MUSTER, {"name": "Kept"}, etag=fresh["@odata.etag"])
    assert fresh["@odata.etag"] != row["@odata.etag"]
    assert fresh["name"] == row["name"]


async def test_delete_with_and_without_etag(dataverse: RunningDataverse) -> None:
    async with dataverse.client() as client:
        made = await client.create("accounts", {"name": "To delete"})
        row_id = made.row_id or ""
        old = await client.get("accounts", row_id, select=["name"])
        await client.update("accounts", row_id, {"name": "Touched"})
        with pytest.raises(PreconditionFailedError):
            await client.delete("accounts", row_id, etag=old["@odata.etag"])
        await client.delete("accounts", row_id)
        with pytest.raises(NotFoundError):
            await client.get("accounts", row_id)
        with pytest.raises(NotFoundError):
            await client.delete("accounts", row_id)


async def test_write_back_to_an_erp_account_detail_by_its_lookup_key(
    dataverse: RunningDataverse,
) -> None:
    key = {
        "sap_erpaccountid": uuid.UUID(ERP_ACCOUNT_US1),
        "sap_linkederporgid": uuid.UUID(ORG_S4_1710),
    }
    async with dataverse.client() as client:
        result = await client.upsert(
            "sap_erpaccountdetails",
            key,
            {"sap_sapcustomernumber": "17100001", "sap_syncstatus": 100000001},
            update_only=True,
        )
        row = await client.get(
            "sap_erpaccountdetails", DETAIL_US1, select=["sap_sapcustomernumber"]
        )
    assert result.row_id == DETAIL_US1
    assert row["sap_sapcustomernumber"] == "17100001"


async def test_dataverse_rejections_keep_code_and_message(dataverse: RunningDataverse) -> None:
    async with dataverse.client() as client:
        with pytest.raises(PermanentError) as too_long:
            await client.create("accounts", {"name": "x" * 161})
        with pytest.raises(PermanentError) as unknown:
            await client.create("accounts", {"nosuchcolumn": 1})
    assert too_long.value.status == 400
    assert too_long.value.code == "0x80044331"
    assert "'name'" in (too_long.value.backend_message or "")
    assert "nosuchcolumn" in str(unknown.value)
    assert not isinstance(unknown.value, TransientError)


async def test_server_errors_and_timeouts_are_transient(dataverse: RunningDataverse) -> None:
    async with dataverse.client(timeout=0.5) as client:
        dataverse.admin("POST", "/emulator/faults/next", json={"kind": "error", "status": 503})
        with pytest.raises(TransientError) as unavailable:
            await client.get("accounts", ACCOUNT_MUSTER)
        dataverse.admin("PUT", "/emulator/faults", json={"timeout_seconds": 2})
        dataverse.admin("POST", "/emulator/faults/next", json={"kind": "timeout"})
        with pytest.raises(TransientError, match="timed out"):
            await client.get("accounts", ACCOUNT_MUSTER)
        recovered = await client.get("accounts", ACCOUNT_MUSTER, select=["name"])
    assert unavailable.value.status == 503
    assert recovered["accountid"] == ACCOUNT_MUSTER


async def test_an_expired_token_is_replaced_once(dataverse: RunningDataverse) -> None:
    tokens = dataverse.provider()
    async with dataverse.client(tokens) as client:
        await client.get("accounts", ACCOUNT_MUSTER, select=["name"])
        fetched = tokens.requests_to_entra
        assert dataverse.environment.issuer.expire_tokens() >= 1
        row = await client.get("accounts", ACCOUNT_MUSTER, select=["name"])
        again = await client.get("accounts", ACCOUNT_MUSTER, select=["name"])
    assert row["accountid"] == again["accountid"] == ACCOUNT_MUSTER
    assert client.stats.token_refreshes == 1
    assert tokens.requests_to_entra == fetched + 1


async def test_a_token_refused_twice_is_an_error(dataverse: RunningDataverse) -> None:
    class Stale:
        """Always the same token, which the emulator has expired."""

        def __init__(self, token: str) -> None:
            self.value = token
            self.invalidated = 0

        async def token(self) -> str:
            return self.value

        def invalidate(self) -> None:
            self.invalidated += 1

    real = dataverse.provider()
    stale = Stale(await real.token())
    dataverse.environment.issuer.expire_tokens()
    async with dataverse.client(stale) as client:  # type: ignore[arg-type]
        with pytest.raises(PermanentError) as refused:
            await client.get("accounts", ACCOUNT_MUSTER)
    assert refused.value.status == 401
    assert stale.invalidated == 1
    assert client.stats.requests == 2

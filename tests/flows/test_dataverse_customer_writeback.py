"""Write-back of the native customer flow: what is written, and how it is batched.

The planner is pure: record outcomes and the rows as read in, column values out. The buffer is
driven against the Dataverse emulator in process (ASGI): concurrent write-backs share ``$batch``
requests, each caller gets its own operations' results.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from d365sap.config_dataverse_flow import WriteBackSettings
from d365sap.errors import D365SapError, NotFoundError, PermanentError, TransientError
from d365sap.flows.dataverse_assembly import (
    ACCOUNTS,
    DETAILS,
    ERP_ACCOUNTS,
    AccountSnapshot,
    RecordKind,
    SyncRecord,
)
from d365sap.flows.dataverse_result import RecordAction, RecordOutcome, RecordResult
from d365sap.flows.result import error_info
from d365sap.flows.writeback import WriteBack, WriteBackBuffer, WriteBackPlanner
from support.dataverse_api import ACCOUNT_MUSTER, ACCOUNT_US1, ACCOUNT_US2, web_api
from support.dataverse_inprocess import inprocess_client

ACCOUNT = "1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e"
ERP = "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d"
DETAIL = "3f2e1d0c-9b8a-4765-8432-10fedcba9876"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PENDING, SYNCHRONIZED, FAILED, DISCARDED = 100_000_000, 100_000_001, 100_000_002, 100_000_003


def _detail_row(**values: Any) -> dict[str, Any]:
    return {"sap_erpaccountdetailid": DETAIL, "_sap_erpaccountid_value": ERP, **values}


def _outcome(
    action: RecordAction,
    *,
    row: dict[str, Any] | None = None,
    kind: RecordKind = "sales_area",
    error: D365SapError | None = None,
    **values: Any,
) -> RecordOutcome:
    entity_set, row_id = (DETAILS, DETAIL) if kind == "sales_area" else (ERP_ACCOUNTS, ERP)
    record = SyncRecord(kind, entity_set, row_id, row or _detail_row(), None, ERP)
    info = error_info(error) if error is not None else None
    result = RecordResult(table="t", id=row_id, action=action, error=info, **values)
    return RecordOutcome(record, result, error)


def _snapshot(erp_number: str | None = None, account_number: str | None = None) -> AccountSnapshot:
    return AccountSnapshot(
        ACCOUNT,
        {"accountid": ACCOUNT, "accountnumber": account_number},
        erp_accounts=({"sap_erpaccountid": ERP, "sap_number": erp_number},),
    )


def _plan(
    *outcomes: RecordOutcome,
    settings: WriteBackSettings | None = None,
    snapshot: AccountSnapshot | None = None,
    final: bool = False,
) -> dict[tuple[str, str], dict[str, Any]]:
    planner = WriteBackPlanner(settings or WriteBackSettings())
    plan = planner.plan(
        list(outcomes), snapshot or _snapshot(), message_id="m-1", final=final, now=NOW
    )
    return {(item.entity_set, item.row_id): item.values for item in plan}


def test_a_sent_record_gets_number_status_time_and_message() -> None:
    created = _outcome(RecordAction.CREATED, target="s4hc", customer="1000007")
    assert _plan(created) == {
        (DETAILS, DETAIL): {
            "sap_syncstatus": SYNCHRONIZED,
            "sap_sapcustomernumber": "1000007",
            "sap_lastsyncon": "2026-03-01T12:00:00Z",
            "sap_lastmessageid": "m-1",
        },
        (ERP_ACCOUNTS, ERP): {"sap_number": "1000007"},
    }
    # An error left on the row from an earlier failure is cleared.
    row = _detail_row(sap_syncstatus=FAILED, sap_lasterror="boom", sap_sapcustomernumber="1000007")
    updated = _outcome(RecordAction.UPDATED, row=row, customer="1000007")
    assert _plan(updated, snapshot=_snapshot("1000007"))[(DETAILS, DETAIL)] == {
        "sap_syncstatus": SYNCHRONIZED,
        "sap_lasterror": None,
        "sap_lastsyncon": "2026-03-01T12:00:00Z",
        "sap_lastmessageid": "m-1",
    }


def test_an_unchanged_record_writes_only_what_the_row_lacks() -> None:
    synced = _detail_row(sap_syncstatus=SYNCHRONIZED, sap_sapcustomernumber="1000007")
    unchanged = _outcome(RecordAction.UNCHANGED, row=synced, customer="1000007")
    assert _plan(unchanged, snapshot=_snapshot("1000007")) == {}
    lost = _outcome(RecordAction.UNCHANGED, row=_detail_row(), customer="1000007")
    assert _plan(lost, snapshot=_snapshot("1000007")) == {
        (DETAILS, DETAIL): {
            "sap_syncstatus": SYNCHRONIZED,
            "sap_sapcustomernumber": "1000007",
            "sap_lastmessageid": "m-1",
        }
    }


def test_failures_are_pending_while_retried_and_failed_at_the_end() -> None:
    transient = TransientError("S/4HANA Cloud answered 503", status=503)
    retried = _outcome(RecordAction.ERROR, error=transient)
    assert _plan(retried)[(DETAILS, DETAIL)] == {
        "sap_syncstatus": PENDING,
        "sap_lasterror": "S/4HANA Cloud answered 503",
        "sap_lastmessageid": "m-1",
    }
    assert _plan(retried, final=True)[(DETAILS, DETAIL)]["sap_syncstatus"] == FAILED
    rejected = _outcome(RecordAction.ERROR, error=PermanentError("refused", status=400))
    assert _plan(rejected)[(DETAILS, DETAIL)]["sap_syncstatus"] == FAILED
    # The same failure again: the row already says so, nothing is written (no echo loop).
    row = _detail_row(sap_syncstatus=FAILED, sap_lasterror="refused")
    again = _outcome(RecordAction.ERROR, row=row, error=PermanentError("refused", status=400))
    assert _plan(again) == {}


def test_long_errors_are_cut_and_discards_give_their_reason() -> None:
    settings = WriteBackSettings(error_max_length=60)
    error = PermanentError("x" * 500)
    values = _plan(_outcome(RecordAction.ERROR, error=error), settings=settings)
    text = values[(DETAILS, DETAIL)]["sap_lasterror"]
    assert len(text) == 60
    assert text.endswith("…")
    discarded = _outcome(RecordAction.DISCARDED, reason="erpsystemtype '100000009'")
    assert _plan(discarded)[(DETAILS, DETAIL)] == {
        "sap_syncstatus": DISCARDED,
        "sap_lasterror": "erpsystemtype '100000009'",
        "sap_lastmessageid": "m-1",
    }


def test_general_data_is_written_back_only_when_routed() -> None:
    g3 = _outcome(RecordAction.DISCARDED, kind="general", reason="linked to S/4HANA Cloud (G3)")
    assert _plan(g3) == {}
    skipped = _outcome(RecordAction.SKIPPED, reason="inactive in Dynamics")
    assert _plan(skipped) == {}
    sent = _outcome(
        RecordAction.IDOC_SENT, kind="general", row={}, route="erp_account", customer="100123"
    )
    assert _plan(sent)[(ERP_ACCOUNTS, ERP)] == {
        "sap_syncstatus": SYNCHRONIZED,
        "sap_lastsyncon": "2026-03-01T12:00:00Z",
        "sap_lastmessageid": "m-1",
    }


def test_numbers_on_the_erp_account_and_the_account_as_configured() -> None:
    created = _outcome(RecordAction.CREATED, customer="1000007")
    # The ERP account keeps a number it already has.
    assert (ERP_ACCOUNTS, ERP) not in _plan(created, snapshot=_snapshot("17100001"))
    off = WriteBackSettings(erp_account_number=False)
    assert (ERP_ACCOUNTS, ERP) not in _plan(created, settings=off)

    def account(mode: str, current: str | None) -> dict[str, Any] | None:
        settings = WriteBackSettings(account_number=mode)  # type: ignore[arg-type]
        plan = _plan(created, settings=settings, snapshot=_snapshot(None, current))
        return plan.get((ACCOUNTS, ACCOUNT))

    assert account("never", None) is None
    assert account("when_empty", None) == {"accountnumber": "1000007"}
    assert account("when_empty", "ACC-2001") is None
    assert account("always", "ACC-2001") == {"accountnumber": "1000007"}
    assert account("always", "1000007") is None


def test_renamed_and_switched_off_columns() -> None:
    settings = WriteBackSettings(
        status_column="new_status", message_id_column="", synced_on_column=""
    )
    created = _outcome(RecordAction.CREATED, customer="1000007")
    assert _plan(created, settings=settings)[(DETAILS, DETAIL)] == {
        "new_status": SYNCHRONIZED,
        "sap_sapcustomernumber": "1000007",
    }


# The buffer, against the emulator --------------------------------------------------------------


@pytest.mark.anyio
async def test_concurrent_write_backs_share_one_batch_request() -> None:
    api = web_api()
    async with inprocess_client(api) as client:
        buffer = WriteBackBuffer(client, batch_size=100, linger_seconds=0.2)
        writes = [
            [WriteBack(ACCOUNTS, account, {"telephone1": f"+1 555 000{n}"})]
            for n, account in enumerate((ACCOUNT_US1, ACCOUNT_US2, ACCOUNT_MUSTER))
        ]
        results = await asyncio.gather(*(buffer.write(items) for items in writes))
        assert buffer.requests == 1
        assert [[r.state for r in result] for result in results] == [["applied"]] * 3
        assert [r[0].operation.path for r in results] == [
            f"accounts({ACCOUNT_US1})",
            f"accounts({ACCOUNT_US2})",
            f"accounts({ACCOUNT_MUSTER})",
        ]
        row = await client.get(ACCOUNTS, ACCOUNT_US2, select=["telephone1"])
        assert row["telephone1"] == "+1 555 0001"
        await buffer.close()


@pytest.mark.anyio
async def test_a_full_buffer_is_sent_without_waiting() -> None:
    api = web_api()
    async with inprocess_client(api) as client:
        buffer = WriteBackBuffer(client, batch_size=2, linger_seconds=30)
        pair = [
            WriteBack(ACCOUNTS, ACCOUNT_US1, {"fax": "1"}),
            WriteBack(ACCOUNTS, ACCOUNT_US2, {"fax": "2"}),
        ]
        results = await asyncio.wait_for(buffer.write(pair), timeout=5)
        assert [r.ok for r in results] == [True, True]
        assert buffer.requests == 1
        await buffer.close()


@pytest.mark.anyio
async def test_each_caller_gets_its_own_failures() -> None:
    api = web_api()
    missing = "00000000-0000-4000-8000-000000000001"
    async with inprocess_client(api) as client:
        buffer = WriteBackBuffer(client, batch_size=100, linger_seconds=0.1)
        good, gone = await asyncio.gather(
            buffer.write([WriteBack(ACCOUNTS, ACCOUNT_US1, {"fax": "9"})]),
            buffer.write([WriteBack(ACCOUNTS, missing, {"fax": "9"})]),
        )
        assert good[0].ok
        assert isinstance(gone[0].error, NotFoundError)  # If-Match: * never creates a row
        assert buffer.requests == 1
        await buffer.close()


@pytest.mark.anyio
async def test_an_empty_write_back_sends_nothing() -> None:
    api = web_api()
    async with inprocess_client(api) as client:
        buffer = WriteBackBuffer(client, batch_size=10, linger_seconds=0)
        assert await buffer.write([]) == []
        assert buffer.requests == 0

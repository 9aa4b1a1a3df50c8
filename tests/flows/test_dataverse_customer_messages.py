"""The message contract of the native customer flow, and how a message's records add up."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from d365sap.errors import D365SapError, PermanentError, TransientError, ValidationError
from d365sap.flows.dataverse_assembly import DETAILS, SyncRecord
from d365sap.flows.dataverse_messages import (
    QUEUE,
    ChangeKind,
    ChangeSource,
    ChangeTable,
    DataverseChange,
    decode_change,
    describe_change,
    encode_change,
)
from d365sap.flows.dataverse_result import (
    RecordAction,
    RecordOutcome,
    RecordResult,
    summarize,
)
from d365sap.flows.result import Outcome, error_info

ROW = uuid.UUID("3f2e1d0c-9b8a-4765-8432-10fedcba9876")
ACCOUNT = uuid.UUID("1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e")


def test_a_change_round_trips_as_json() -> None:
    change = DataverseChange(
        table=ChangeTable.ERP_ACCOUNT_DETAIL,
        id=ROW,
        account_id=ACCOUNT,
        change=ChangeKind.UPDATE,
        source=ChangeSource.DELTA,
        version=1000027,
    )
    payload = encode_change(change)
    assert json.loads(payload) == {
        "table": "sap_erpaccountdetail",
        "id": str(ROW),
        "account_id": str(ACCOUNT),
        "change": "Update",
        "source": "delta",
        "version": 1000027,
        "dry_run": False,
    }
    assert decode_change(payload) == change


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b"not json", "payload"),
        (b'{"table": "contact", "id": "%s", "change": "Update", "source": "delta"}', "table"),
        (b'{"table": "account", "id": "nope", "change": "Update", "source": "delta"}', "id"),
        (b'{"table": "account", "id": "%s", "change": "Upsert", "source": "delta"}', "change"),
        (
            b'{"table": "account", "id": "%s", "change": "Load", "source": "load", "x": 1}',
            "x",
        ),
        (
            b'{"table": "account", "id": "%s", "change": "Load", "source": "load", "version": -1}',
            "version",
        ),
    ],
)
def test_a_bad_payload_is_refused_naming_the_field(payload: bytes, field: str) -> None:
    body = payload.replace(b"%s", str(ROW).encode()) if b"%s" in payload else payload
    with pytest.raises(ValidationError) as raised:
        decode_change(body)
    assert raised.value.field == field
    assert "invalid Dataverse change message" in raised.value.reason


def test_the_business_key_is_the_account_when_known() -> None:
    def key(table: ChangeTable, account: uuid.UUID | None) -> str | None:
        change = DataverseChange(
            table=table, id=ROW, account_id=account, change="Update", source="webhook"
        )
        description = describe_change(encode_change(change))
        assert description.queue == QUEUE
        assert description.route is None  # decided when the message runs
        return description.business_key

    assert key(ChangeTable.ERP_ACCOUNT_DETAIL, ACCOUNT) == str(ACCOUNT)
    assert key(ChangeTable.ERP_ACCOUNT_DETAIL, None) == f"sap_erpaccountdetail:{ROW}"
    assert key(ChangeTable.ERP_ACCOUNT, None) == f"sap_erpaccount:{ROW}"
    assert key(ChangeTable.ACCOUNT, None) == str(ROW)
    assert describe_change(b"{}").business_key is None


def _record() -> SyncRecord:
    return SyncRecord("sales_area", DETAILS, str(ROW), {}, None, None)


def _outcome(
    action: RecordAction, error: D365SapError | None = None, **values: Any
) -> RecordOutcome:
    info = error_info(error) if error is not None else None
    result = RecordResult(
        table="sap_erpaccountdetail", id=str(ROW), action=action, error=info, **values
    )
    return RecordOutcome(_record(), result, error)


def _summary(
    *outcomes: RecordOutcome, failure: D365SapError | None = None
) -> tuple[str, int, bool]:
    result = summarize(
        list(outcomes),
        flow="dataverse_customer",
        account_id=str(ACCOUNT),
        change={},
        discard_status=202,
        failure=failure,
    )
    retry, _ = result.retry_hint()
    return result.outcome.value, result.http_status, retry


def test_records_add_up_to_the_message_outcome() -> None:
    created = _outcome(RecordAction.CREATED, target="s4hc", customer="1000000")
    updated = _outcome(RecordAction.UPDATED, target="s4hc", customer="17100001")
    sent = _outcome(RecordAction.IDOC_SENT, target="erp", customer="100123")
    unchanged = _outcome(RecordAction.UNCHANGED, reason="unchanged since it was last sent to SAP")
    discarded = _outcome(RecordAction.DISCARDED, reason="erpsystemtype 'SAP'")
    transient = _outcome(RecordAction.ERROR, TransientError("S/4 answered 503", status=503))
    rejected = _outcome(RecordAction.ERROR, PermanentError("S/4 refused", status=400))

    assert _summary(created, updated, sent) == ("created", 201, False)
    assert _summary(sent, updated) == ("updated", 200, False)
    assert _summary(sent, unchanged) == ("idoc_sent", 200, False)
    assert _summary(unchanged, discarded) == ("discarded", 202, False)
    # One failure fails the message; a transient one anywhere makes it retried.
    assert _summary(created, rejected) == ("error", 422, False)
    assert _summary(rejected, transient, created) == ("error", 502, True)
    assert _summary(created, failure=TransientError("write-back: 429")) == ("error", 502, True)


def test_a_discarded_message_lists_every_reason_once() -> None:
    result = summarize(
        [
            _outcome(RecordAction.DISCARDED, reason="general data (G3)"),
            _outcome(RecordAction.UNCHANGED, reason="unchanged"),
            _outcome(RecordAction.DISCARDED, reason="general data (G3)"),
        ],
        flow="dataverse_customer",
        account_id=None,
        change={},
        discard_status=202,
    )
    assert result.reason == "general data (G3); unchanged"
    assert result.store_status() == "discarded"
    assert [record["action"] for record in result.body()["records"]] == [
        "discarded",
        "unchanged",
        "discarded",
    ]
    assert Outcome(result.outcome) is Outcome.DISCARDED

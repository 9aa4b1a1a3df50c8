"""A load's messages counted per target: created, updated, failed (with reasons), skipped."""

from __future__ import annotations

from typing import Any

from d365sap.engine.source_runs import RunMessage
from d365sap.flows.load_summary import category_of, entries, summarize


def message(
    number: int,
    status: str,
    result: dict[str, Any] | None = None,
    *,
    error: str | None = None,
    route: str | None = None,
) -> RunMessage:
    return RunMessage(
        id=f"m{number}",
        source_id=f"load:run:0000000{number}-0000-4000-8000-000000000000",
        status=status,
        outcome=(result or {}).get("outcome"),
        route=route,
        error=error,
        result=result,
    )


def test_counts_per_target_and_reasons_of_failures() -> None:
    messages = [
        message(1, "done", {"outcome": "created", "target": "s4hc"}),
        message(2, "done", {"outcome": "updated", "target": "s4hc"}),
        message(3, "done", {"outcome": "idoc_sent", "target": "erp"}),
        message(
            4,
            "failed",
            {
                "outcome": "error",
                "target": "s4hc",
                "error": {"message": "41 characters, at most 40 allowed", "field": "sap_name1"},
            },
            error="41 characters, at most 40 allowed",
        ),
        message(5, "discarded", {"outcome": "discarded", "reason": "erpsystemtype SAP"}),
        message(6, "superseded"),
        message(7, "retrying", error="S/4 answered 503"),
    ]
    summary = summarize(messages)
    assert summary.messages == 7
    report = summary.to_dict()
    assert report["targets"]["s4hc"] == {
        "created": 1,
        "updated": 1,
        "failed": 1,
        "skipped": 0,
        "pending": 0,
    }
    assert report["targets"]["erp"]["updated"] == 1
    assert report["totals"] == {"created": 1, "updated": 2, "failed": 1, "skipped": 2, "pending": 1}
    [failure] = report["failures"]
    assert failure["reason"] == "sap_name1: 41 characters, at most 40 allowed"
    assert failure["account"] == "00000004-0000-4000-8000-000000000000"
    assert failure["target"] == "s4hc"


def test_one_message_with_several_targets() -> None:
    result = {
        "outcome": "updated",
        "results": [
            {"outcome": "created", "target": "s4hc"},
            {"outcome": "error", "target": "erp", "backend_message": "Customer 100123 is locked"},
        ],
    }
    found = entries(message(1, "failed", result, error="partly failed"))
    assert [(e.target, e.category, e.reason) for e in found] == [
        ("s4hc", "created", None),
        ("erp", "failed", "Customer 100123 is locked"),
    ]


def test_failed_without_result_uses_the_stored_error() -> None:
    [entry] = entries(message(1, "failed", None, error="Dataverse answered 404", route="s4hc"))
    assert (entry.target, entry.category, entry.reason) == (
        "s4hc",
        "failed",
        "Dataverse answered 404",
    )


def test_dry_run_plans() -> None:
    assert category_of("would_create") == "created"
    assert category_of("would_update") == "updated"
    assert category_of("would_send_idoc") == "updated"
    assert category_of("invalid") == "failed"
    assert category_of("would_create", ok=False) == "failed"
    assert category_of("discarded") == "skipped"
    plan = {
        "outcome": "invalid",
        "ok": False,
        "target": "s4hc",
        "problems": [{"field": "account.address1_country", "message": "required"}],
    }
    [entry] = entries(message(1, "done", plan))
    assert (entry.category, entry.reason) == ("failed", "account.address1_country: required")


def test_native_flow_records_per_target() -> None:
    result = {
        "outcome": "error",
        "account_id": "a",
        "error": {"type": "PermanentError", "message": "IDoc status 51"},
        "records": [
            {"table": "sap_erpaccountdetail", "id": "d1", "action": "created", "target": "S4HC"},
            {"table": "sap_erpaccount", "id": "e1", "action": "unchanged", "target": "ECC"},
            {
                "table": "sap_erpaccountdetail",
                "id": "d2",
                "action": "error",
                "target": "ECC",
                "error": {"type": "PermanentError", "message": "IDoc status 51: KTOKD"},
            },
        ],
    }
    found = entries(message(1, "failed", result, error="IDoc status 51"))
    assert [(e.target, e.category, e.reason) for e in found] == [
        ("S4HC", "created", None),
        ("ECC", "skipped", None),
        ("ECC", "failed", "IDoc status 51: KTOKD"),
    ]
    planned = {
        "outcome": "discarded",
        "records": [
            {"action": "planned", "target": "S4HC", "reason": "would create the customer"},
            {"action": "planned", "target": "ECC", "reason": "would send the changes"},
            {"action": "discarded", "target": "ECC", "reason": "erpsystemtype SAP"},
        ],
    }
    found = entries(message(2, "done", planned))
    assert [e.category for e in found] == ["created", "updated", "skipped"]
    assert found[2].reason == "erpsystemtype SAP"

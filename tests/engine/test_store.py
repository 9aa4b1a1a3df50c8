"""The message store on SQLite and PostgreSQL: persist, dedupe, record steps, read back."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect

from d365sap.engine.store import DONE, FAILED, PROCESSING, RECEIVED, MessageStore
from d365sap.engine.trace import Trace


def accept(store: MessageStore, source_id: str | None = None, payload: bytes = b"<x/>") -> str:
    message, duplicate = store.accept(
        flow="customer",
        payload=payload,
        content_type="application/xml",
        correlation_id="corr-1",
        source_id=source_id,
    )
    assert not duplicate
    return message.id


def test_schema_is_migrated(store: MessageStore) -> None:
    tables = set(inspect(store.engine).get_table_names())
    assert {"messages", "message_steps", "message_payloads", "alembic_version"} <= tables


def test_accept_persists_before_processing(store: MessageStore) -> None:
    message_id = accept(store, payload=b"<erpaccounts/>")
    stored = store.get(message_id)
    assert stored is not None
    assert stored.status == RECEIVED
    assert stored.payload == b"<erpaccounts/>"
    assert stored.attempts == 0


def test_duplicate_source_id_returns_first_message(store: MessageStore) -> None:
    first = accept(store, source_id="MSG-1")
    again, duplicate = store.accept(
        flow="customer",
        payload=b"<other/>",
        content_type="application/xml",
        correlation_id="corr-2",
        source_id="MSG-1",
    )
    assert duplicate
    assert again.id == first
    assert len(store.list()) == 1
    # the same source id in another flow is a different message
    _, other_flow_duplicate = store.accept(
        flow="sales_order",
        payload=b"<x/>",
        content_type="application/xml",
        correlation_id="c",
        source_id="MSG-1",
    )
    assert not other_flow_duplicate


def test_messages_without_source_id_are_never_deduplicated(store: MessageStore) -> None:
    accept(store)
    accept(store)
    assert len(store.list()) == 2


def test_attempt_steps_and_outcome(store: MessageStore) -> None:
    message_id = accept(store)
    attempt = store.start_attempt(message_id, route="s4hc", business_key="17100001/1710/10/00")
    assert attempt == 1
    running = store.get(message_id)
    assert running is not None and running.status == PROCESSING
    trace = Trace(log_payloads=True)
    with trace.step("s4.check_sales_area") as step:
        step.reply(200, "0 result(s)")
    with trace.step("s4.create_sales_area") as step:
        step.reply(201, b'{"d":{}}')
    trace.snapshot("mapped.create", "application/json", '{"Customer":"17100001"}')
    store.complete(
        message_id,
        attempt=attempt,
        status=DONE,
        outcome="created",
        http_status=201,
        result={"outcome": "created"},
        error=None,
        trace=trace,
    )
    done = store.get(message_id)
    assert done is not None
    assert (done.status, done.outcome, done.http_status) == (DONE, "created", 201)
    assert done.finished_at is not None
    assert [s.name for s in done.steps] == ["s4.check_sales_area", "s4.create_sales_area"]
    assert done.steps[1].backend_status == 201
    assert done.payloads[0].stage == "mapped.create"
    assert store.list(business_key="17100001/1710/10/00")[0].id == message_id


def test_masker_applies_to_snapshots(tmp_path: Path) -> None:
    masked = MessageStore.open(
        f"sqlite:///{tmp_path / 'm.db'}", masker=lambda body, _ct: body.replace("secret", "***")
    )
    message_id = accept(masked)
    trace = Trace(log_payloads=True)
    trace.snapshot("inbound", "application/xml", "<name>secret</name>")
    masked.complete(
        message_id,
        attempt=1,
        status=FAILED,
        outcome="error",
        http_status=400,
        result=None,
        error="bad",
        trace=trace,
    )
    stored = masked.get(message_id)
    assert stored is not None
    assert stored.payloads[0].body == "<name>***</name>"
    masked.close()


def test_list_filters(store: MessageStore) -> None:
    a = accept(store)
    b = accept(store)
    store.complete(
        b,
        attempt=1,
        status=FAILED,
        outcome="error",
        http_status=502,
        result=None,
        error="S/4 down",
        trace=Trace(),
    )
    assert [m.id for m in store.list(status=FAILED)] == [b]
    assert {m.id for m in store.list(flow="customer")} == {a, b}
    assert store.list(flow="nothing") == []

"""The Dataverse triggers end to end: webhooks and the delta poll into the native flow, and
``d365sap load customers`` as a real process through a 429 storm, expiring tokens and a kill."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from d365sap.connectors.dataverse import DataverseClient
from d365sap.connectors.dataverse_batch import BatchOperation, ChangeSet
from d365sap.demo_dataverse import WEBHOOK_HEADER, DataverseDemo
from d365sap.emulators.dataverse.changes import ChangeTrackingSettings
from d365sap.emulators.settings import DataverseEmulatorSettings, EmulatorsSettings
from d365sap.engine.source_runs import run_counts
from d365sap.engine.store import MessageStore
from d365sap.flows.dataverse_messages import FLOW_NAME
from support.e2e import MakeStack, Stack
from support.load_stack import SeededCustomer, load_config, run_load, seed_customers, start_load

pytestmark = pytest.mark.e2e


def dataverse_of(stack: Stack) -> DataverseDemo:
    assert stack.env.dataverse is not None
    return stack.env.dataverse


def wait_until(condition: Callable[[], Any], timeout: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout} s: {what}")
        time.sleep(0.2)


def flow_messages(stack: Stack) -> list[dict[str, Any]]:
    response = stack.http.get(
        f"{stack.env.service_url}/api/messages", params={"flow": FLOW_NAME, "limit": 500}
    )
    response.raise_for_status()
    return list(response.json()["messages"])


def settled(stack: Stack) -> bool:
    messages = flow_messages(stack)
    return bool(messages) and all(
        m["status"] in ("done", "failed", "discarded", "superseded") for m in messages
    )


def stats(stack: Stack) -> dict[str, Any]:
    response = stack.http.get(f"{stack.env.service_url}/api/dataverse/stats")
    response.raise_for_status()
    return dict(response.json())


def s4_partner(stack: Stack, number: str) -> dict[str, Any]:
    response = stack.s4_get(f"A_BusinessPartner('{number}')")
    assert response.status_code == 200, response.text
    return dict(response.json()["d"])


def s4_partner_count(stack: Stack) -> int:
    response = stack.http.get(f"{stack.env.s4_url}/emulator/health")
    return int(response.json()["entities"].get("A_BusinessPartner", 0))


def erp_customers_named(stack: Stack, prefix: str) -> int:
    idocs = stack.idocs()
    created = {
        idoc.get("kunnr")
        for idoc in idocs
        if prefix in str(idoc.get("raw_xml", "")) and idoc.get("kunnr")
    }
    return len(created)


# -- webhooks -----------------------------------------------------------------------------------


def test_webhook_creates_the_customer_in_sap_and_writes_the_number_back(
    make_stack: MakeStack,
) -> None:
    stack = make_stack(dataverse=True)
    dataverse = dataverse_of(stack)
    ids = dataverse.create_customer("Webhook Pumps Inc.")
    row = dataverse.wait_for_number(ids.detail, timeout=60)
    number = row.get("sap_sapcustomernumber")
    assert number, row
    partner = s4_partner(stack, str(number))
    assert partner["OrganizationBPName1"] == "Webhook Pumps Inc."
    wait_until(lambda: settled(stack), what="flow messages settled")
    messages = flow_messages(stack)
    assert {m["status"] for m in messages} <= {"done", "discarded"}
    assert all(m["business_key"] == ids.account for m in messages)
    deliveries = dataverse.admin("GET", "/emulator/webhooks/deliveries").json()["deliveries"]
    assert deliveries and {d["status"] for d in deliveries} == {"succeeded"}
    # The write-back's own Update of the detail came back as a webhook and was recognised as
    # an echo: stored nothing. (The ERP account's new sap_number is business data: its message
    # is processed and found unchanged.)
    echoes = [
        d for d in deliveries if d["table"] == "sap_erpaccountdetail" and d["message"] == "Update"
    ]
    assert echoes
    assert len(messages) == len(deliveries) - len(echoes)

    # Dataverse delivering the same context again is answered with the first message.
    first = next(d for d in deliveries if d["table"] == "sap_erpaccountdetail")
    full = dataverse.admin("GET", f"/emulator/webhooks/deliveries/{first['id']}").json()
    settings = stack.env.service_settings
    assert settings is not None
    key = settings.dataverse_triggers.key()
    assert key is not None
    again = stack.http.post(
        f"{stack.env.service_url}/webhooks/dataverse",
        content=json.dumps(full["context"]).encode(),
        headers={
            "content-type": "application/json",
            WEBHOOK_HEADER: key,
            "x-request-id": first["request_id"],
        },
    )
    assert again.status_code == 200 and again.json()["duplicate"] is True, again.text
    assert len(flow_messages(stack)) == len(messages)


# -- the delta poll -------------------------------------------------------------------------------


def test_delta_poll_alone_carries_changes_and_survives_an_expired_token(
    make_stack: MakeStack,
) -> None:
    emulators = EmulatorsSettings()
    emulators.dataverse = DataverseEmulatorSettings(
        change_tracking=ChangeTrackingSettings(max_changes_per_table=4)
    )
    stack = make_stack(
        dataverse=True,
        emulators={"dataverse": emulators.dataverse},
        dataverse_triggers={"poll": True, "poll_interval_seconds": 1.0},
    )
    dataverse = dataverse_of(stack)
    dataverse.admin("DELETE", "/emulator/webhooks")  # no webhooks: the poll alone
    wait_until(lambda: stats(stack)["poll"]["rounds"] >= 1, what="the baseline round")
    assert flow_messages(stack) == []  # the first pass only records versions

    ids = dataverse.create_customer("Delta Pumps Inc.")
    row = dataverse.wait_for_number(ids.detail, timeout=60)
    assert row.get("sap_sapcustomernumber"), row
    wait_until(lambda: settled(stack), what="flow messages settled")

    # More account changes than the change log keeps, in one transaction between two rounds:
    # the saved delta token expires and the poll re-baselines.
    names = [f"Expiry Test {n}" for n in range(6)]

    async def create(client: DataverseClient) -> None:
        await client.batch(
            [ChangeSet([BatchOperation.create("accounts", {"name": name}) for name in names])]
        )

    dataverse.with_client(create)
    wait_until(lambda: stats(stack)["poll"]["rebaselines"] >= 1, what="a re-baseline")
    wait_until(lambda: settled(stack), what="flow messages settled")
    messages = flow_messages(stack)
    account_messages = [m for m in messages if m["business_key"] != ids.account]
    assert len(account_messages) == len(names)  # each new account once, nothing else re-sent
    assert {m["status"] for m in account_messages} == {"discarded"}  # no ERP data
    assert stats(stack)["poll"]["errors"] == 0


# -- d365sap load customers ------------------------------------------------------------------------


def numbered(dataverse: DataverseDemo, customers: list[SeededCustomer]) -> int:
    return sum(
        1
        for customer in customers
        if dataverse.row("sap_erpaccountdetails", customer.detail).get("sap_sapcustomernumber")
    )


def test_load_survives_a_429_storm_without_losing_or_doubling(
    make_stack: MakeStack, tmp_path: Path
) -> None:
    stack = make_stack(dataverse=True)
    dataverse = dataverse_of(stack)
    customers = seed_customers(dataverse, 24, prefix="STORM")
    partners_before = s4_partner_count(stack)
    dataverse.admin(
        "PUT",
        "/emulator/faults",
        json={"retry_after_rate": 0.3, "retry_after_seconds": 1, "seed": 7},
    )
    report = tmp_path / "report.json"
    result = run_load(
        load_config(stack, tmp_path),
        "--filter",
        "startswith(accountnumber,'STORM-')",
        "--report",
        str(report),
        "--timeout",
        "200",
    )
    faults = dataverse.admin("GET", "/emulator/faults").json()
    dataverse.admin("DELETE", "/emulator/faults")
    assert result.returncode == 0, result.stdout + result.stderr
    assert faults["counters"]["retry_after"] > 5  # the storm happened
    outcome = json.loads(report.read_text())
    assert outcome["summary"]["messages"] == 24
    assert outcome["summary"]["totals"]["failed"] == 0
    assert outcome["open"] == 0
    assert "created" in result.stdout and "Load summary" in result.stdout
    assert numbered(dataverse, customers) == 24
    s4 = [c for c in customers if c.target == "s4hc"]
    assert s4_partner_count(stack) - partners_before == len(s4)  # one partner each, no double
    throttled = outcome["dataverse_throttled"] + stats(stack)["client"]["throttled"]
    assert throttled > 0


def test_load_rides_over_expiring_tokens(make_stack: MakeStack, tmp_path: Path) -> None:
    stack = make_stack(dataverse=True)
    dataverse = dataverse_of(stack)
    customers = seed_customers(dataverse, 16, prefix="TOKEN")
    dataverse.admin("PUT", "/emulator/faults", json={"latency_ms": 30})
    stop = threading.Event()
    expired: list[int] = []

    def expire_tokens() -> None:
        while not stop.wait(0.4):
            expired.append(
                dataverse.admin("POST", "/emulator/identity/tokens/expire").json()["expired"]
            )

    expiring = threading.Thread(target=expire_tokens, daemon=True)
    expiring.start()
    report = tmp_path / "report.json"
    try:
        result = run_load(
            load_config(stack, tmp_path),
            "--filter",
            "startswith(accountnumber,'TOKEN-')",
            "--report",
            str(report),
        )
    finally:
        stop.set()
        expiring.join(5)
        dataverse.admin("DELETE", "/emulator/faults")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sum(expired) > 0
    outcome = json.loads(report.read_text())
    assert outcome["summary"]["totals"]["failed"] == 0
    refreshed = outcome["dataverse_token_refreshes"] + stats(stack)["client"]["token_refreshes"]
    assert refreshed > 0
    assert numbered(dataverse, customers) == 16


def test_killed_load_resumes_without_doubling(make_stack: MakeStack, tmp_path: Path) -> None:
    stack = make_stack(dataverse=True)
    dataverse = dataverse_of(stack)
    customers = seed_customers(dataverse, 30, prefix="KILL")
    partners_before = s4_partner_count(stack)
    config = load_config(stack, tmp_path)
    settings = stack.env.service_settings
    assert settings is not None
    store = MessageStore.open(settings.store.url)
    dataverse.admin(
        "PUT",
        "/emulator/faults",
        json={"latency_ms": 150, "paths": ["/api/data/v9.2/accounts*"]},
    )
    try:
        running = start_load(config, "--filter", "startswith(accountnumber,'KILL-')")

        def loads_submitted() -> int:
            return sum(
                1
                for m in store.list(flow=FLOW_NAME, limit=None)
                if (m.source_id or "").startswith("load:")
            )

        wait_until(lambda: loads_submitted() >= 10, timeout=60, what="two pages submitted")
        running.send_signal(signal.SIGKILL)
        running.wait(10)
        before = loads_submitted()
        assert 10 <= before < 30  # killed in the middle
        dataverse.admin("DELETE", "/emulator/faults")

        report = tmp_path / "report.json"
        result = run_load(
            config, "--filter", "startswith(accountnumber,'KILL-')", "--report", str(report)
        )
        assert result.returncode == 0, result.stdout + result.stderr
        outcome = json.loads(report.read_text())
        assert outcome["resumed"] is True
        assert "Resuming load" in result.stdout
        prefix = f"load:{outcome['run_id']}:"
        counts = run_counts(store, FLOW_NAME, prefix)
        assert sum(counts.values()) == 30  # each account once, across both invocations
        assert loads_submitted() == 30
        assert outcome["summary"]["totals"]["failed"] == 0
    finally:
        store.close()
    assert numbered(dataverse, customers) == 30
    s4 = [c for c in customers if c.target == "s4hc"]
    assert s4_partner_count(stack) - partners_before == len(s4)

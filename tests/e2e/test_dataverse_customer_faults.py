"""Native customer flow end to end under faults: nothing lost, nothing created twice.

Faults come from the emulators' own injection: an answer lost after SAP committed the create
(``drop_after_commit``), outages, a storm of 429s from Dataverse's service protection, a token
that expired, a write-back refused. Each test checks the systems afterwards: one business
partner / one ERP customer per account, the number written back, the registry confirmed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from d365sap.emulators.tls import TlsFiles, ensure_tls
from d365sap.engine.xref import KeyRegistry, RecordKey, SalesArea
from d365sap.mapping.s4_business_partner import external_reference
from support.customer_rows import ORG_ECC_1000, ORG_S4_1710
from support.native_stack import NativeStack, native_stack

pytestmark = pytest.mark.e2e
SYNCHRONIZED = 100_000_001
DETAILS = "sap_erpaccountdetails"
BATCH_PATH = "/api/data/v9.2/$batch"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls(tmp_path_factory.mktemp("dataverse-tls"))


@pytest.fixture
def stack(tls: TlsFiles, tmp_path: Path) -> Iterator[NativeStack]:
    with native_stack(tls, tmp_path) as running:
        yield running


def _records(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {record["id"]: record for record in message["result"]["records"]}


def _steps(message: dict[str, Any], attempt: int) -> list[str]:
    return [step["name"] for step in message["steps"] if step["attempt"] == attempt]


def _partner_posts(stack: NativeStack) -> int:
    journal = stack.http.get(f"{stack.s4_url}/emulator/requests").json()["requests"]
    return sum(
        1
        for entry in journal
        if entry.get("method") == "POST" and "A_BusinessPartner" in str(entry.get("path", ""))
    )


def test_a_lost_s4_create_answer_does_not_create_a_second_partner(stack: NativeStack) -> None:
    rows = stack.new_customer(ORG_S4_1710)
    assert rows.detail_id is not None
    stack.faults("s4", "drop_after_commit")  # the POST A_BusinessPartner commits, answer lost

    message = stack.run("sap_erpaccountdetail", rows.detail_id)

    assert message["status"] == "done", message
    assert message["attempts"] == 2
    record = _records(message)[rows.detail_id]
    assert record["action"] == "created"
    assert "found again by its external reference" in record["reason"]
    partners = stack.s4_partners(external_reference(rows.account_id))
    assert [p["BusinessPartner"] for p in partners] == [record["customer"]]
    assert _partner_posts(stack) == 1
    # The retry looked before creating, and did not create.
    assert "s4.find_business_partner" in _steps(message, 2)
    assert "s4.create_business_partner" not in _steps(message, 2)
    detail = stack.row(DETAILS, rows.detail_id)
    assert detail["sap_sapcustomernumber"] == record["customer"]
    assert detail["sap_syncstatus"] == SYNCHRONIZED
    entry = KeyRegistry(stack.store).lookup(RecordKey("s4hc", rows.account_id))
    assert entry is not None
    assert (entry.state, entry.customer) == ("confirmed", record["customer"])


def test_a_lost_idoc_answer_does_not_create_a_second_erp_customer(stack: NativeStack) -> None:
    rows = stack.new_customer(ORG_ECC_1000)
    assert rows.detail_id is not None
    idocs_before = len(stack.idocs())
    stack.faults("erp", "drop_after_commit")  # the create IDoc is posted, its answer lost

    message = stack.run("account", rows.account_id)

    assert message["status"] == "done", message
    assert message["attempts"] == 2
    kunnr = _records(message)[rows.detail_id]["customer"]
    # The retry sent the same SapMessageId: SAP answered with the first IDoc, no second one.
    assert len(stack.idocs()) == idocs_before + 1
    customer = stack.erp_customer(kunnr).json()
    assert customer["z1zakna1"]["ZZ_ID"] == rows.erp_account_id
    assert len(customer["changed_by_idocs"]) == 1
    assert stack.row(DETAILS, rows.detail_id)["sap_sapcustomernumber"] == kunnr


def test_an_s4_outage_is_retried_and_creates_once(stack: NativeStack) -> None:
    rows = stack.new_customer(ORG_S4_1710)
    assert rows.detail_id is not None
    stack.faults("s4", "error", count=3, status=503)

    message = stack.run("sap_erpaccountdetail", rows.detail_id)

    assert message["status"] == "done", message
    assert message["attempts"] > 1
    assert len(stack.s4_partners(external_reference(rows.account_id))) == 1
    assert _partner_posts(stack) == 1


def test_a_429_storm_from_dataverse_loses_and_doubles_nothing(stack: NativeStack) -> None:
    stack.dataverse.admin("PUT", "/emulator/faults", json={"retry_after_seconds": 0})
    customers = [
        stack.new_customer(ORG_S4_1710, account={"name": f"Sturmkunde {n} GmbH"}) for n in range(4)
    ]
    stack.dv_faults("retry_after", count=40)

    ids = [stack.submit("account", rows.account_id) for rows in customers]
    messages = [stack.wait(message_id, timeout=120) for message_id in ids]

    faults = stack.dataverse.admin("GET", "/emulator/faults").json()
    assert faults["counters"]["retry_after"] == 40  # every injected 429 was met and sat out
    assert [m["status"] for m in messages] == ["done"] * 4, messages
    numbers = set()
    for rows, message in zip(customers, messages, strict=True):
        assert rows.detail_id is not None
        partners = stack.s4_partners(external_reference(rows.account_id))
        assert len(partners) == 1, (rows, partners)
        number = partners[0]["BusinessPartner"]
        assert _records(message)[rows.detail_id]["customer"] == number
        assert stack.row(DETAILS, rows.detail_id)["sap_sapcustomernumber"] == number
        numbers.add(number)
    assert len(numbers) == 4
    assert _partner_posts(stack) == 4


def test_an_expired_token_is_replaced(stack: NativeStack) -> None:
    first = stack.new_customer(ORG_S4_1710)
    assert stack.run("account", first.account_id)["status"] == "done"
    tokens = stack.dataverse.admin("GET", "/emulator/identity/tokens").json()["tokens"]
    stack.dataverse.admin("POST", "/emulator/identity/tokens/expire")

    second = stack.new_customer(ORG_S4_1710, account={"name": "Nachzügler AG"})
    message = stack.run("account", second.account_id)

    assert message["status"] == "done", message
    assert message["attempts"] == 1
    issued = stack.dataverse.admin("GET", "/emulator/identity/tokens").json()["tokens"]
    assert len(issued) > len(tokens)  # the service asked Entra for a new token
    assert stack.row(DETAILS, str(second.detail_id))["sap_syncstatus"] == SYNCHRONIZED


def test_a_failed_read_batch_fails_the_message_before_anything_is_sent(
    stack: NativeStack,
) -> None:
    rows = stack.new_customer(ORG_S4_1710)
    assert rows.detail_id is not None
    stack.dataverse.admin("PUT", "/emulator/faults", json={"paths": [BATCH_PATH]})
    stack.dv_faults("error", status=503)  # the $batch holding the account's read

    message = stack.run("sap_erpaccountdetail", rows.detail_id)

    assert message["status"] == "done", message
    assert message["attempts"] == 2
    assert "dataverse.read_account" in _steps(message, 1)
    assert "s4.create_business_partner" not in _steps(message, 1)
    assert "s4.create_business_partner" in _steps(message, 2)
    assert _records(message)[rows.detail_id]["write_back"] == "written"
    assert _partner_posts(stack) == 1


def test_a_failed_write_back_is_retried_without_sending_to_sap_again(
    tls: TlsFiles, tmp_path: Path
) -> None:
    # Account reads outside $batch, so the injected fault hits the write-back's request.
    with native_stack(tls, tmp_path, dataverse_flow={"batch_reads": False}) as stack:
        _write_back_fails_once(stack)


def _write_back_fails_once(stack: NativeStack) -> None:
    rows = stack.new_customer(ORG_S4_1710)
    assert rows.detail_id is not None
    stack.dataverse.admin("PUT", "/emulator/faults", json={"paths": [BATCH_PATH]})
    stack.dv_faults("error", status=503)

    message = stack.run("sap_erpaccountdetail", rows.detail_id)

    assert message["status"] == "done", message
    assert message["attempts"] == 2
    assert "dataverse.write_back" in _steps(message, 1)
    assert "s4.create_business_partner" in _steps(message, 1)
    assert "s4.create_business_partner" not in _steps(message, 2)
    record = _records(message)[rows.detail_id]
    assert record["action"] == "created"
    assert record["reason"] == "sent to SAP by an earlier attempt of this message"
    assert record["write_back"] == "written"
    assert _partner_posts(stack) == 1
    assert stack.row(DETAILS, rows.detail_id)["sap_sapcustomernumber"] == record["customer"]


def test_concurrent_messages_of_one_new_customer_create_it_once(stack: NativeStack) -> None:
    rows = stack.new_customer(ORG_S4_1710)
    assert rows.detail_id is not None
    # Different business keys (the detail's message does not know its account): they may run
    # at the same time; the registry lets one create and the other wait for it.
    barrier = threading.Barrier(2)
    ids: list[str] = []

    def submit(table: str, row_id: str) -> None:
        barrier.wait()
        ids.append(stack.submit(table, row_id))

    threads = [
        threading.Thread(target=submit, args=("sap_erpaccountdetail", rows.detail_id)),
        threading.Thread(target=submit, args=("account", rows.account_id)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    messages = [stack.wait(message_id) for message_id in ids]

    assert {m["status"] for m in messages} <= {"done", "discarded"}, messages
    assert len(stack.s4_partners(external_reference(rows.account_id))) == 1
    assert _partner_posts(stack) == 1


def test_a_reservation_of_a_parked_message_is_taken_over(stack: NativeStack) -> None:
    rows = stack.new_customer(ORG_S4_1710)
    assert rows.detail_id is not None
    # A message that reserved the creation, created the partner, lost the answer and was parked.
    parked = stack.run("account", rows.account_id, dry_run=True)
    registry = KeyRegistry(stack.store)
    area = RecordKey("s4hc", rows.account_id, SalesArea("1710", "10", "00"), rows.detail_id)
    for key in (RecordKey("s4hc", rows.account_id), area):
        assert registry.reserve(key, parked["id"]).outcome == "reserved"
    created = stack.http.post(
        f"{stack.s4_url}/sap/opu/odata/sap/API_BUSINESS_PARTNER/A_BusinessPartner",
        json={
            "BusinessPartnerCategory": "2",
            "BusinessPartnerGrouping": "BP02",
            "OrganizationBPName1": "Neukunde Pumpen AG",
            "BusinessPartnerIDByExtSystem": external_reference(rows.account_id),
            "to_BusinessPartnerRole": {"results": [{"BusinessPartnerRole": "FLCU01"}]},
            "to_Customer": {"to_CustomerSalesArea": {"results": []}},
        },
        headers={"X-CSRF-Token": _csrf(stack)},
        auth=stack.s4_auth,
    )
    assert created.status_code == 201, created.text

    message = stack.run("sap_erpaccountdetail", rows.detail_id)

    assert message["status"] == "done", message
    number = created.json()["d"]["BusinessPartner"]
    assert _records(message)[rows.detail_id]["customer"] == number
    assert len(stack.s4_partners(external_reference(rows.account_id))) == 1
    entry = registry.lookup(RecordKey("s4hc", rows.account_id))
    assert entry is not None
    assert (entry.state, entry.customer, entry.confirmed_by) == ("confirmed", number, message["id"])
    taken = registry.lookup(area)
    assert taken is not None
    assert (taken.state, taken.customer) == ("confirmed", number)


def _csrf(stack: NativeStack) -> str:
    response = stack.http.get(
        f"{stack.s4_url}/sap/opu/odata/sap/API_BUSINESS_PARTNER/",
        headers={"X-CSRF-Token": "Fetch"},
        auth=stack.s4_auth,
    )
    return str(response.headers["x-csrf-token"])


def test_an_erp_creation_left_by_a_parked_message_is_not_repeated(stack: NativeStack) -> None:
    rows = stack.new_customer(ORG_ECC_1000)
    parked = stack.run("account", rows.account_id, dry_run=True)
    registry = KeyRegistry(stack.store)
    assert registry.reserve(RecordKey("ecc", rows.account_id), parked["id"]).outcome == "reserved"
    idocs = len(stack.idocs())

    message = stack.run("account", rows.account_id)

    # SAP numbers internally: the customer cannot be found again, so nothing is sent and the
    # operator is told which message to retry.
    assert message["status"] == "failed", message
    error = _records(message)[str(rows.detail_id)]["error"]
    assert f"Retry message {parked['id']}" in error["message"]
    assert len(stack.idocs()) == idocs

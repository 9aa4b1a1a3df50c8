"""Native customer flow end to end: customers SAP does not know are created, once, and numbered.

The service runs with a ``[dataverse]`` section against the three emulators over loopback (the
Dataverse emulator over TLS with msal); messages go in through the service's intake, outcomes
are checked in S/4HANA Cloud, SAP ERP, the key registry and the Dataverse rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from d365sap.emulators.tls import TlsFiles, ensure_tls
from d365sap.engine.operations import MessageOperations
from d365sap.engine.xref import KeyRegistry, RecordKey, SalesArea
from d365sap.mapping.s4_business_partner import external_reference
from support.customer_rows import ORG_ECC_1000, ORG_S4_1710
from support.native_stack import NativeStack, native_stack

pytestmark = pytest.mark.e2e
SYNCHRONIZED, FAILED, DISCARDED = 100_000_001, 100_000_002, 100_000_003
DETAILS, ERP_ACCOUNTS = "sap_erpaccountdetails", "sap_erpaccounts"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls(tmp_path_factory.mktemp("dataverse-tls"))


@pytest.fixture
def stack(tls: TlsFiles, tmp_path: Path) -> Iterator[NativeStack]:
    with native_stack(tls, tmp_path) as running:
        yield running


def _records(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {record["id"]: record for record in message["result"]["records"]}


def _s4_posts(stack: NativeStack) -> list[dict[str, Any]]:
    journal = stack.http.get(f"{stack.s4_url}/emulator/requests").json()["requests"]
    return [entry for entry in journal if entry.get("method") == "POST"]


def test_new_customer_is_created_in_s4_once_and_numbered_back(stack: NativeStack) -> None:
    rows = stack.new_customer(ORG_S4_1710)
    assert rows.detail_id is not None
    message = stack.run("sap_erpaccountdetail", rows.detail_id)

    assert message["status"] == "done", message
    assert message["outcome"] == "created"
    record = _records(message)[rows.detail_id]
    assert record["action"] == "created"
    assert record["write_back"] == "written"
    number = record["customer"]
    # S/4 drew the partner number from its range and gave the customer the same number.
    assert record["business_partner"] == number
    assert 1_000_000 <= int(number) <= 1_999_999
    partners = stack.s4_partners(external_reference(rows.account_id))
    assert [p["BusinessPartner"] for p in partners] == [number]
    assert partners[0]["OrganizationBPName1"] == "Neukunde Pumpen AG"
    area = stack.s4_get(
        f"A_CustomerSalesArea(Customer='{number}',SalesOrganization='1710',"
        "DistributionChannel='10',Division='00')"
    )
    assert area.status_code == 200, area.text
    assert area.json()["d"]["SalesGroup"] == "110"
    assert area.json()["d"]["Currency"] == "EUR"

    detail = stack.row(DETAILS, rows.detail_id)
    assert detail["sap_sapcustomernumber"] == number
    assert detail["sap_syncstatus"] == SYNCHRONIZED
    assert detail["sap_lasterror"] is None
    assert detail["sap_lastmessageid"] == message["id"]
    assert detail["sap_lastsyncon"]
    assert stack.row(ERP_ACCOUNTS, str(rows.erp_account_id))["sap_number"] == number

    registry = KeyRegistry(stack.store)
    customer = registry.lookup(RecordKey("s4hc", rows.account_id))
    assert customer is not None
    assert (customer.state, customer.customer, customer.business_partner) == (
        "confirmed",
        number,
        number,
    )
    sales_area = registry.by_detail("s4hc", rows.detail_id)
    assert sales_area is not None
    assert sales_area.sales_area == SalesArea("1710", "10", "00")

    # The write-back comes back as a change: nothing is sent again, nothing written back again.
    posts = len(_s4_posts(stack))
    version = stack.row(DETAILS, rows.detail_id)["versionnumber"]
    echo = stack.run("sap_erpaccountdetail", rows.detail_id)
    assert echo["status"] == "discarded", echo
    assert _records(echo)[rows.detail_id]["action"] == "unchanged"
    assert len(_s4_posts(stack)) == posts
    assert stack.row(DETAILS, rows.detail_id)["versionnumber"] == version
    assert len(stack.s4_partners(external_reference(rows.account_id))) == 1


def test_new_customer_is_created_in_erp_with_an_internal_number(stack: NativeStack) -> None:
    rows = stack.new_customer(ORG_ECC_1000, detail={"sap_salesoffice": "1000"})
    assert rows.detail_id is not None
    message = stack.run("account", rows.account_id)

    assert message["status"] == "done", message
    records = _records(message)
    created = records[rows.detail_id]
    assert created["action"] == "created"
    kunnr = created["customer"]
    assert 100_000 <= int(kunnr) <= 199_999  # account group 0001: internal numbers
    # The ERP account's general data went with the create IDoc: not sent a second time.
    assert records[str(rows.erp_account_id)]["action"] == "unchanged"
    customer = stack.erp_customer(kunnr)
    assert customer.status_code == 200, customer.text
    body = customer.json()
    assert body["kna1"]["NAME1"] == "Neukunde Pumpen AG"
    assert body["kna1"]["KTOKD"] == "0001"
    assert body["z1zakna1"]["ZZ_ID"] == rows.erp_account_id
    assert [(a["vkorg"], a["vtweg"], a["spart"]) for a in body["sales_areas"]] == [
        ("1000", "10", "00")
    ]
    assert body["sales_areas"][0]["knvv"]["VKBUR"] == "1000"
    idoc = next(
        i
        for i in stack.idocs()
        if str(i.get("docnum", i.get("number"))).lstrip("0")
        == str(created["idoc_number"]).lstrip("0")
    )
    assert str(idoc["status"]) == "53"

    assert stack.row(DETAILS, rows.detail_id)["sap_sapcustomernumber"] == kunnr
    erp_account = stack.row(ERP_ACCOUNTS, str(rows.erp_account_id))
    assert erp_account["sap_number"] == kunnr
    assert erp_account["sap_syncstatus"] == SYNCHRONIZED
    entry = KeyRegistry(stack.store).lookup(RecordKey("ecc", rows.account_id))
    assert entry is not None
    assert entry.customer == kunnr

    idocs = len(stack.idocs())
    again = stack.run("sap_erpaccountdetail", rows.detail_id)
    assert again["status"] == "discarded"
    assert len(stack.idocs()) == idocs


def test_erp_numbers_from_an_external_range_are_drawn_once_each(
    tls: TlsFiles, tmp_path: Path
) -> None:
    numbers = {"account_group": "ZEXT", "number_range": {"from": "900000", "to": "999999"}}
    with native_stack(tls, tmp_path, erp={"create": numbers}) as stack:
        first = stack.new_customer(ORG_ECC_1000)
        second = stack.new_customer(ORG_ECC_1000, account={"name": "Zweitkunde GmbH"})
        kunnrs = []
        for rows in (first, second):
            message = stack.run("account", rows.account_id)
            assert message["status"] == "done", message
            kunnrs.append(_records(message)[str(rows.detail_id)]["customer"])
        assert kunnrs == ["900000", "900001"]
        for kunnr in kunnrs:
            customer = stack.erp_customer(kunnr)
            assert customer.status_code == 200
            assert customer.json()["kna1"]["KTOKD"] == "ZEXT"
        assert stack.row(DETAILS, str(second.detail_id))["sap_sapcustomernumber"] == "900001"


def test_invalid_new_customer_fails_and_the_error_is_written_back(stack: NativeStack) -> None:
    rows = stack.new_customer(ORG_S4_1710, account={"address1_country": None})
    assert rows.detail_id is not None
    message = stack.run("sap_erpaccountdetail", rows.detail_id)

    assert message["status"] == "failed", message
    assert message["http_status"] == 400
    record = _records(message)[rows.detail_id]
    assert record["error"]["field"] == "account.address1_country"
    detail = stack.row(DETAILS, rows.detail_id)
    assert detail["sap_syncstatus"] == FAILED
    assert "required to create a customer in SAP" in detail["sap_lasterror"]
    assert detail["sap_lastmessageid"] == message["id"]
    assert detail["sap_sapcustomernumber"] is None
    assert stack.s4_partners(external_reference(rows.account_id)) == []
    # Nothing was written to SAP, so nothing stays reserved.
    assert KeyRegistry(stack.store).entries(account_id=rows.account_id) == []

    # Fixed in Dynamics: the next change creates the customer.
    stack.patch("accounts", rows.account_id, {"address1_country": "DE"})
    fixed = stack.run("account", rows.account_id)
    assert fixed["status"] == "done", fixed
    detail = stack.row(DETAILS, rows.detail_id)
    assert detail["sap_syncstatus"] == SYNCHRONIZED
    assert detail["sap_lasterror"] is None


def test_an_account_without_erp_details_is_discarded_with_the_reason(stack: NativeStack) -> None:
    lonely = stack.new_customer(None, erp=False)
    message = stack.run("account", lonely.account_id)
    assert message["status"] == "discarded"
    assert message["result"]["reason"] == (
        f"account {lonely.account_id} has no ERP account or ERP account detail"
    )

    general_only = stack.new_customer(ORG_S4_1710, with_detail=False)
    message = stack.run("account", general_only.account_id)
    assert message["status"] == "discarded"
    assert "linked to S/4HANA Cloud (G3)" in message["result"]["reason"]
    assert stack.s4_partners(external_reference(general_only.account_id)) == []


def test_a_detail_flagged_for_deletion_is_not_created(stack: NativeStack) -> None:
    rows = stack.new_customer(ORG_S4_1710, detail={"sap_deletionflag": True})
    assert rows.detail_id is not None
    message = stack.run("sap_erpaccountdetail", rows.detail_id)
    assert message["status"] == "discarded", message
    assert _records(message)[rows.detail_id]["reason"] == (
        "flagged for deletion and unknown to SAP: not created"
    )
    detail = stack.row(DETAILS, rows.detail_id)
    assert detail["sap_syncstatus"] == DISCARDED
    assert detail["sap_lasterror"] == "flagged for deletion and unknown to SAP: not created"
    assert stack.s4_partners(external_reference(rows.account_id)) == []


def test_a_dry_run_reads_and_maps_but_writes_nowhere(stack: NativeStack) -> None:
    rows = stack.new_customer(ORG_S4_1710)
    assert rows.detail_id is not None
    version = stack.row(DETAILS, rows.detail_id)["versionnumber"]
    message = stack.run("sap_erpaccountdetail", rows.detail_id, dry_run=True)
    assert message["status"] == "discarded", message
    record = _records(message)[rows.detail_id]
    assert record["action"] == "planned"
    assert record["reason"] == "would create the customer in s4hc (1 sales area(s))"
    assert stack.s4_partners(external_reference(rows.account_id)) == []
    assert stack.row(DETAILS, rows.detail_id)["versionnumber"] == version
    assert KeyRegistry(stack.store).entries(account_id=rows.account_id) == []


def test_general_data_without_details_is_created_in_erp_alone(stack: NativeStack) -> None:
    rows = stack.new_customer(ORG_ECC_1000, with_detail=False)
    erp_id = str(rows.erp_account_id)
    message = stack.run("sap_erpaccount", erp_id)

    assert message["status"] == "done", message
    record = _records(message)[erp_id]
    assert (record["action"], record["route"]) == ("created", "erp_account")
    customer = stack.erp_customer(record["customer"]).json()
    assert customer["kna1"]["NAME2"] == "Werk Essen"
    assert customer["sales_areas"] == []
    erp_account = stack.row(ERP_ACCOUNTS, erp_id)
    assert erp_account["sap_number"] == record["customer"]
    assert erp_account["sap_syncstatus"] == SYNCHRONIZED


def test_a_dry_run_reports_what_sap_would_refuse(stack: NativeStack) -> None:
    rows = stack.new_customer(ORG_S4_1710)
    assert rows.detail_id is not None
    message = stack.run(
        "sap_erpaccountdetail", rows.detail_id, dry_run=True, account_id=rows.account_id
    )
    assert message["status"] == "discarded", message
    assert _records(message)[rows.detail_id]["action"] == "planned"

    # A value S/4 cannot take is found by the dry run, before anything is sent.
    stack.patch("accounts", rows.account_id, {"address1_city": "C" * 41})
    message = stack.run("sap_erpaccountdetail", rows.detail_id, dry_run=True)
    assert message["status"] == "failed", message
    error = _records(message)[rows.detail_id]["error"]
    assert error["field"] == "A_BusinessPartnerAddress.CityName (account.address1_city)"
    assert error["message"] == "41 characters, at most 40 allowed"
    assert stack.s4_partners(external_reference(rows.account_id)) == []


def test_an_operator_dry_run_of_a_failed_message_tells_whether_it_would_pass_now(
    stack: NativeStack,
) -> None:
    rows = stack.new_customer(ORG_S4_1710, account={"address1_country": None})
    failed = stack.run("account", rows.account_id)
    assert failed["status"] == "failed"
    service = stack.service
    operations = MessageOperations(service.store, service.runtime, service.flows)

    before = stack.service_call(operations.dry_run(failed["id"]))
    assert before.report.outcome == "invalid"
    assert before.report.problems[0].field == "account.address1_country"

    stack.patch("accounts", rows.account_id, {"address1_country": "AT"})
    after = stack.service_call(operations.dry_run(failed["id"]))
    assert after.report.outcome == "would_send"
    assert after.report.ok
    assert any("would create the customer in s4hc" in check for check in after.report.checks)
    assert stack.s4_partners(external_reference(rows.account_id)) == []

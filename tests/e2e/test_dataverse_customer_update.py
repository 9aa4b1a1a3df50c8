"""Native customer flow end to end: customers SAP knows are updated, deletions are flagged.

Updates go through the legacy customer flow's own S/4 sales-area path (GET on the four keys, PATCH
with ``If-Match``) and IDoc path; the key registry supplies a number the write-back has not
delivered yet, and deleted ERP account details become deletion flags in SAP.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from d365sap.emulators.tls import TlsFiles, ensure_tls
from d365sap.mapping.s4_business_partner import external_reference
from support.customer_rows import DETAIL_MUSTER_ECC, DETAIL_US1_S4, ORG_ECC_1000, ORG_S4_1710
from support.native_stack import NativeStack, native_stack

pytestmark = pytest.mark.e2e
SYNCHRONIZED = 100_000_001
DETAILS = "sap_erpaccountdetails"
ACCOUNT_US1 = "e2f3a4b5-c6d7-4e8f-9a0b-1c2d3e4f5a6b"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return ensure_tls(tmp_path_factory.mktemp("dataverse-tls"))


@pytest.fixture
def stack(tls: TlsFiles, tmp_path: Path) -> Iterator[NativeStack]:
    with native_stack(tls, tmp_path) as running:
        yield running


def _records(message: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {record["id"]: record for record in message["result"]["records"]}


def _area(stack: NativeStack, customer: str, org: tuple[str, str, str]) -> dict[str, Any]:
    response = stack.s4_get(
        f"A_CustomerSalesArea(Customer='{customer}',SalesOrganization='{org[0]}',"
        f"DistributionChannel='{org[1]}',Division='{org[2]}')"
    )
    assert response.status_code == 200, response.text
    return dict(response.json()["d"])


def _modifying(stack: NativeStack) -> list[dict[str, Any]]:
    journal = stack.http.get(f"{stack.s4_url}/emulator/requests").json()["requests"]
    return list(journal)


def test_s4_sales_area_update_through_the_customer_flow_path(stack: NativeStack) -> None:
    first = stack.run("sap_erpaccountdetail", DETAIL_US1_S4, account_id=ACCOUNT_US1)
    assert first["status"] == "done", first
    assert _records(first)[DETAIL_US1_S4]["customer"] == "17100001"

    stack.patch(DETAILS, DETAIL_US1_S4, {"sap_salesgroup": "171", "sap_salesoffice": "1720"})
    before = len(_modifying(stack))
    changed = stack.run("sap_erpaccountdetail", DETAIL_US1_S4, account_id=ACCOUNT_US1)

    assert changed["status"] == "done", changed
    assert changed["outcome"] == "updated"
    record = _records(changed)[DETAIL_US1_S4]
    assert (record["action"], record["target"], record["route"]) == ("updated", "s4hc", "s4hc")
    area = _area(stack, "17100001", ("1710", "10", "00"))
    assert (area["SalesGroup"], area["SalesOffice"]) == ("171", "1720")
    sent = _modifying(stack)[before:]
    assert [entry["method"] for entry in sent] == ["PATCH"]
    detail = stack.row(DETAILS, DETAIL_US1_S4)
    assert detail["sap_syncstatus"] == SYNCHRONIZED
    assert detail["sap_lastmessageid"] == changed["id"]
    # The steps of the legacy flow's path are in the trace: read, then conditional update.
    names = [step["name"] for step in changed["steps"]]
    assert "s4.check_sales_area" in names
    assert "s4.update_sales_area" in names


def test_erp_customer_update_sends_the_package_idocs(stack: NativeStack) -> None:
    stack.patch(DETAILS, DETAIL_MUSTER_ECC, {"sap_salesgroup": "102"})
    message = stack.run("sap_erpaccountdetail", DETAIL_MUSTER_ECC)

    assert message["status"] == "done", message
    record = _records(message)[DETAIL_MUSTER_ECC]
    assert (record["action"], record["route"], record["customer"]) == (
        "idoc_sent",
        "erp_account_detail",
        "100123",
    )
    customer = stack.erp_customer("100123").json()
    area = next(a for a in customer["sales_areas"] if (a["vkorg"], a["vtweg"]) == ("1000", "10"))
    assert area["knvv"]["VKGRP"] == "102"
    # Each IDoc of the message carries its own SapMessageId: none was taken for a repeat.
    numbers = [r["idoc_number"] for r in message["result"]["records"] if r.get("idoc_number")]
    assert len(numbers) == len(set(numbers)) >= 2


def test_the_registry_number_is_used_when_the_write_back_is_missing(stack: NativeStack) -> None:
    rows = stack.new_customer(ORG_S4_1710)
    assert rows.detail_id is not None
    created = stack.run("sap_erpaccountdetail", rows.detail_id)
    number = _records(created)[rows.detail_id]["customer"]

    # As if the write-back had never arrived, and the user changed the detail meanwhile.
    stack.patch(DETAILS, rows.detail_id, {"sap_sapcustomernumber": None, "sap_salesgroup": "120"})
    stack.patch("sap_erpaccounts", str(rows.erp_account_id), {"sap_number": None})
    message = stack.run("sap_erpaccountdetail", rows.detail_id)

    assert message["status"] == "done", message
    record = _records(message)[rows.detail_id]
    assert (record["action"], record["customer"]) == ("updated", number)
    assert [
        p["BusinessPartner"] for p in stack.s4_partners(external_reference(rows.account_id))
    ] == [number]
    assert _area(stack, number, ("1710", "10", "00"))["SalesGroup"] == "120"
    assert stack.row(DETAILS, rows.detail_id)["sap_sapcustomernumber"] == number


def test_a_second_detail_adds_a_sales_area_to_the_created_customer(stack: NativeStack) -> None:
    rows = stack.new_customer(ORG_S4_1710)
    created = stack.run("account", rows.account_id)
    number = _records(created)[str(rows.detail_id)]["customer"]

    org_20 = "5d2c1e7a-9b3f-4c21-8e6a-0f4b7c9d2a12"

    async def add(client: Any) -> str:
        made = await client.create(
            DETAILS,
            {
                "sap_name": "second sales area",
                "sap_erpaccountid@odata.bind": f"/sap_erpaccounts({rows.erp_account_id})",
                "sap_accountid@odata.bind": f"/accounts({rows.account_id})",
                "sap_linkederporgid@odata.bind": f"/sap_linkederporgs({org_20})",
                "sap_currency": "USD",
                "sap_salesgroup": "170",
            },
        )
        return str(made.row_id)

    second = stack.dv(add)
    message = stack.run("sap_erpaccountdetail", second, change="Create")
    assert message["status"] == "done", message
    records = _records(message)
    assert (records[second]["action"], records[second]["customer"]) == ("created", number)
    assert records[str(rows.detail_id)]["action"] == "unchanged"
    assert _area(stack, number, ("1710", "20", "00"))["Currency"] == "USD"
    assert len(stack.s4_partners(external_reference(rows.account_id))) == 1


def test_deleted_detail_flags_the_s4_sales_area_once(stack: NativeStack) -> None:
    rows = stack.new_customer(ORG_S4_1710)
    assert rows.detail_id is not None
    number = _records(stack.run("sap_erpaccountdetail", rows.detail_id))[rows.detail_id]["customer"]
    assert _area(stack, number, ("1710", "10", "00"))["DeletionIndicator"] in (None, False)

    stack.delete(DETAILS, rows.detail_id)
    message = stack.run("sap_erpaccountdetail", rows.detail_id, change="Delete")

    assert message["status"] == "done", message
    record = _records(message)[rows.detail_id]
    assert record["action"] == "flagged_for_deletion"
    assert record["reason"] == (
        f"deleted in Dataverse: deletion flag set on customer {number} sales area 1710/10/00"
    )
    assert message["result"]["account_id"] == rows.account_id
    assert _area(stack, number, ("1710", "10", "00"))["DeletionIndicator"] is True

    before = len(_modifying(stack))
    again = stack.run("account", rows.account_id)
    assert again["status"] == "discarded"
    assert rows.detail_id not in _records(again)
    assert len(_modifying(stack)) == before


def test_deleted_account_flags_its_erp_sales_areas(stack: NativeStack) -> None:
    rows = stack.new_customer(ORG_ECC_1000)
    created = stack.run("account", rows.account_id)
    kunnr = _records(created)[str(rows.detail_id)]["customer"]

    stack.delete("accounts", rows.account_id)  # cascades to its ERP account and detail
    message = stack.run("account", rows.account_id, change="Delete")

    assert message["status"] == "done", message
    record = _records(message)[str(rows.detail_id)]
    assert (record["action"], record["target"]) == ("flagged_for_deletion", "erp")
    customer = stack.erp_customer(kunnr).json()
    assert customer["sales_areas"][0]["deletion_flag"] is True
    assert customer["deletion_flag"] is False  # general data is never flagged


def test_deletions_can_be_ignored(tls: TlsFiles, tmp_path: Path) -> None:
    with native_stack(tls, tmp_path, dataverse_flow={"on_delete": "ignore"}) as stack:
        rows = stack.new_customer(ORG_S4_1710)
        assert rows.detail_id is not None
        created = stack.run("sap_erpaccountdetail", rows.detail_id)
        number = _records(created)[rows.detail_id]["customer"]
        stack.delete(DETAILS, rows.detail_id)
        message = stack.run("sap_erpaccountdetail", rows.detail_id, change="Delete")
        assert message["status"] == "discarded", message
        assert "left as it is in SAP (on_delete = ignore)" in message["result"]["reason"]
        assert _area(stack, number, ("1710", "10", "00"))["DeletionIndicator"] in (None, False)


def test_a_deleted_erp_account_without_account_id_is_discarded(stack: NativeStack) -> None:
    rows = stack.new_customer(ORG_S4_1710, with_detail=False)
    stack.delete("sap_erpaccounts", str(rows.erp_account_id))
    message = stack.run("sap_erpaccount", str(rows.erp_account_id), change="Delete")
    assert message["status"] == "discarded"
    assert "no longer exists and names no account" in message["result"]["reason"]

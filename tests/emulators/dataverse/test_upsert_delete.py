"""Upsert, conditional writes and deletes, with the documented 404/412 answers."""

from __future__ import annotations

import pytest

from support.dataverse_api import (
    ACCOUNT_MUSTER,
    ACCOUNT_US1,
    ACCOUNT_US2,
    CURRENCY_USD,
    ORDER_MUSTER,
    ROOT,
    WebApi,
    error_of,
    web_api,
)

NEW_ID = "00000000-0000-0000-0000-000000000001"
STALE = 'W/"470867"'
NOT_FOUND = (404, "0x80040217", f"account With Id = {NEW_ID} Does Not Exist")
MATCHING_KEY = (412, "0x80040237", "A record with matching key values already exists.")
VERSION = (
    412,
    "0x80060882",
    "The version of the existing record doesn't match the RowVersion property provided.",
)


@pytest.fixture
def api() -> WebApi:
    return web_api()


def test_upsert_creates_a_row_with_the_id_of_the_url(api: WebApi) -> None:
    response = api.patch(f"accounts({NEW_ID})", {"name": "Upserted"})
    assert response.status_code == 204
    assert response.headers["odata-entityid"] == f"{ROOT}accounts({NEW_ID})"
    assert api.get(f"accounts({NEW_ID})/name").json()["value"] == "Upserted"
    again = api.patch(f"accounts({NEW_ID})", {"name": "Updated"})
    assert again.status_code == 204
    assert api.get(f"accounts({NEW_ID})/name").json()["value"] == "Updated"


def test_upsert_by_alternate_key_takes_the_key_values(api: WebApi) -> None:
    response = api.patch(
        "accounts(accountnumber='ACC-7777')?$select=name,accountnumber",
        {"name": "By key"},
        headers={"Prefer": "return=representation"},
    )
    assert response.status_code == 201
    row = response.json()
    assert (row["name"], row["accountnumber"]) == ("By key", "ACC-7777")
    update = api.patch("accounts(accountnumber='ACC-7777')", {"telephone1": "5"})
    assert update.status_code == 204
    assert update.headers["odata-entityid"] == f"{ROOT}accounts({row['accountid']})"
    clash = api.patch("accounts(accountnumber='ACC-7778')", {"accountnumber": "OTHER"})
    status, code, _ = error_of(clash)
    assert (status, code) == (400, "0x80040203")


def test_upsert_by_composite_key_of_the_linked_erp_org(api: WebApi) -> None:
    path = (
        "sap_linkederporgs(sap_erpsystemtype=100000000,sap_vkorg='1710',sap_vtweg='30',"
        "sap_spart='00')"
    )
    assert api.patch(path, {"sap_name": "S/4HANA Cloud 1710 / 30 / 00"}).status_code == 204
    row = api.get(path).json()
    assert (row["sap_vkorg"], row["sap_vtweg"], row["sap_erpsystemtype"]) == (
        "1710",
        "30",
        100000000,
    )


def test_if_match_star_prevents_create(api: WebApi) -> None:
    assert error_of(api.patch(f"accounts({NEW_ID})", {"name": "x"}, headers={"If-Match": "*"})) == (
        NOT_FOUND
    )
    assert api.get(f"accounts({NEW_ID})").status_code == 404
    by_key = api.patch("accounts(accountnumber='NONE')", {"name": "x"}, headers={"If-Match": "*"})
    assert error_of(by_key)[:2] == (404, "0x80040217")
    existing = api.patch(f"accounts({ACCOUNT_US1})", {"name": "Renamed"}, headers={"If-Match": "*"})
    assert existing.status_code == 204


def test_if_none_match_star_prevents_update(api: WebApi) -> None:
    refused = api.patch(f"accounts({ACCOUNT_US1})", {"name": "x"}, headers={"If-None-Match": "*"})
    assert error_of(refused) == MATCHING_KEY
    assert api.get(f"accounts({ACCOUNT_US1})/name").json()["value"] == "Inlandskunde US 1"
    created = api.patch(f"accounts({NEW_ID})", {"name": "New"}, headers={"If-None-Match": "*"})
    assert created.status_code == 204
    ignored = api.patch(f"accounts({NEW_ID})", {"name": "Again"}, headers={"If-None-Match": "null"})
    assert ignored.status_code == 204


def test_if_match_with_a_version(api: WebApi) -> None:
    refused = api.patch(f"accounts({ACCOUNT_US1})", {"name": "x"}, headers={"If-Match": STALE})
    assert error_of(refused) == VERSION
    current = api.get(f"accounts({ACCOUNT_US1})?$select=name").json()["@odata.etag"]
    accepted = api.patch(f"accounts({ACCOUNT_US1})", {"name": "y"}, headers={"If-Match": current})
    assert accepted.status_code == 204
    again = api.patch(f"accounts({ACCOUNT_US1})", {"name": "z"}, headers={"If-Match": current})
    assert error_of(again) == VERSION


def test_delete_with_and_without_a_version(api: WebApi) -> None:
    assert error_of(api.delete(f"accounts({ACCOUNT_US1})", headers={"If-Match": STALE})) == VERSION
    current = api.get(f"accounts({ACCOUNT_US1})?$select=name").json()["@odata.etag"]
    assert api.delete(f"accounts({ACCOUNT_US1})", headers={"If-Match": current}).status_code == 204
    assert api.get(f"accounts({ACCOUNT_US1})").status_code == 404
    assert error_of(api.delete(f"accounts({NEW_ID})")) == NOT_FOUND


def test_delete_by_alternate_key(api: WebApi) -> None:
    assert api.delete("accounts(accountnumber='ACC-1002')").status_code == 204
    assert api.get(f"accounts({ACCOUNT_US2})").status_code == 404


def test_delete_cascades_along_parental_relationships(api: WebApi) -> None:
    account_us1_erp = api.get(
        f"sap_erpaccounts?$select=sap_name&$filter=_sap_accountid_value eq {ACCOUNT_US1}"
    ).json()["value"]
    assert len(account_us1_erp) == 1
    assert api.delete(f"accounts({ACCOUNT_US1})").status_code == 204
    left = api.get(f"sap_erpaccountdetails?$filter=_sap_accountid_value eq {ACCOUNT_US1}").json()
    assert left["value"] == []
    erp_id = account_us1_erp[0]["sap_erpaccountid"]
    assert api.get(f"sap_erpaccounts({erp_id})").status_code == 404
    assert api.delete(f"salesorders({ORDER_MUSTER})").status_code == 204
    assert api.get("salesorderdetails/$count").text == "0"


def test_delete_removes_links_where_the_relationship_says_so(api: WebApi) -> None:
    assert api.delete(f"accounts({ACCOUNT_MUSTER})/contact_customer_accounts").status_code == 405
    nordlicht = api.get("accounts(accountnumber='ACC-2002')?$select=_parentaccountid_value").json()
    assert nordlicht["_parentaccountid_value"] == ACCOUNT_MUSTER
    version = nordlicht["@odata.etag"]
    order_path = f"salesorders({ORDER_MUSTER})"
    assert api.delete(order_path).status_code == 204  # the order restricts the account's delete
    assert api.delete(f"accounts({ACCOUNT_MUSTER})").status_code == 204
    after = api.get("accounts(accountnumber='ACC-2002')?$select=_parentaccountid_value").json()
    assert after["_parentaccountid_value"] is None
    assert after["@odata.etag"] != version


def test_restricted_deletes_are_refused_and_change_nothing(api: WebApi) -> None:
    before = api.get("/emulator/health", authorization=None).json()["rows"]
    status, code, message = error_of(api.delete(f"accounts({ACCOUNT_MUSTER})"))
    assert (status, code) == (405, "0x80040227")
    assert message.startswith(
        "The object you tried to delete is associated with another object and cannot be deleted."
    )
    assert "salesorder.customerid" in message
    status, code, _ = error_of(api.delete(f"transactioncurrencies({CURRENCY_USD})"))
    assert (status, code) == (405, "0x80040227")
    assert api.get("/emulator/health", authorization=None).json()["rows"] == before

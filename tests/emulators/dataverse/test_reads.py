"""Reads through the whole app: keys, collections, $select, $expand, annotations, paging."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from lxml import etree

from support.dataverse_api import (
    ACCOUNT_MUSTER,
    ACCOUNT_NORDLICHT,
    ACCOUNT_US1,
    CURRENCY_USD,
    DETAIL_US1,
    ORDER_MUSTER,
    ORG_S4_1710,
    ROOT,
    WebApi,
    error_of,
    web_api,
)

FORMATTED = "OData.Community.Display.V1.FormattedValue"


@pytest.fixture(scope="module")
def api() -> WebApi:
    return web_api()


def test_row_by_primary_key_has_context_etag_and_every_column(api: WebApi) -> None:
    response = api.get(f"accounts({ACCOUNT_US1})")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json; odata.metadata=minimal")
    assert response.headers["odata-version"] == "4.0"
    row = response.json()
    assert row["@odata.context"] == f"{ROOT}$metadata#accounts/$entity"
    assert row["@odata.etag"] == f'W/"{row["versionnumber"]}"'
    assert row["accountid"] == ACCOUNT_US1
    assert row["name"] == "Inlandskunde US 1"
    assert row["revenue"] == 2500000.0
    assert row["_transactioncurrencyid_value"] == CURRENCY_USD
    assert row["_parentaccountid_value"] is None
    assert row["createdon"].endswith("Z")
    assert "transactioncurrencyid" not in row  # navigation properties are not columns


def test_row_by_alternate_key(api: WebApi) -> None:
    by_key = api.get("accounts(accountnumber='ACC-2001')?$select=name").json()
    assert by_key["accountid"] == ACCOUNT_MUSTER
    assert by_key["name"] == "Muster Pumpentechnik GmbH"
    folded = api.get("accounts(accountnumber='acc-2001')?$select=name").json()
    assert folded["accountid"] == ACCOUNT_MUSTER


def test_composite_alternate_key_with_a_choice_column(api: WebApi) -> None:
    path = (
        "sap_linkederporgs(sap_erpsystemtype=100000000,sap_vkorg='1710',sap_vtweg='10',"
        "sap_spart='00')"
    )
    row = api.get(path).json()
    assert row["sap_linkederporgid"] == ORG_S4_1710
    assert row["sap_create_taxcategory"] == "UTXJ"


def test_missing_rows_are_404_with_dataverse_texts(api: WebApi) -> None:
    missing = "00000000-0000-0000-0000-00000000dead"
    assert error_of(api.get(f"accounts({missing})")) == (
        404,
        "0x80040217",
        f"account With Id = {missing} Does Not Exist",
    )
    assert error_of(api.get("accounts(accountnumber='NOPE')")) == (
        404,
        "0x80040217",
        "A record with the specified key values does not exist in account entity",
    )


def test_key_predicates_that_are_no_key_are_refused(api: WebApi) -> None:
    status, code, message = error_of(api.get("accounts(name='Muster')"))
    assert (status, code) == (400, "0x80060890")
    assert "not a defined key for the account entity" in message
    status, code, message = error_of(api.get("accounts(12345)"))
    assert (status, code) == (400, "0x80060888")
    assert "accounts(12345)" in message


def test_unknown_entity_set_is_the_documented_404(api: WebApi) -> None:
    assert error_of(api.get("Account")) == (
        404,
        "0x8006088a",
        "Resource not found for the segment 'Account'.",
    )


def test_select_returns_the_columns_the_key_and_the_etag(api: WebApi) -> None:
    response = api.get("accounts?$select=name,accountnumber")
    body = response.json()
    assert body["@odata.context"] == f"{ROOT}$metadata#accounts(name,accountnumber)"
    assert len(body["value"]) == 4
    for row in body["value"]:
        assert list(row) == ["@odata.etag", "name", "accountnumber", "accountid"]


def test_selecting_money_adds_the_currency_lookup(api: WebApi) -> None:
    row = api.get(f"accounts({ACCOUNT_US1})?$select=name,revenue").json()
    assert list(row)[2:] == ["name", "revenue", "_transactioncurrencyid_value", "accountid"]


def test_unknown_column_in_select_names_it(api: WebApi) -> None:
    status, _, message = error_of(api.get("accounts?$select=Name"))
    assert status == 400
    assert (
        message
        == "Could not find a property named 'Name' on type 'Microsoft.Dynamics.CRM.account'."
    )
    status, _, message = error_of(api.get(f"accounts({ACCOUNT_US1})?$select=nosuchcolumn"))
    assert status == 400
    assert "'nosuchcolumn'" in message


def test_formatted_values_on_request(api: WebApi) -> None:
    prefer = f'odata.include-annotations="{FORMATTED}"'
    response = api.get(
        f"accounts({ACCOUNT_US1})?$select=name,revenue,customertypecode,modifiedon",
        headers={"Prefer": prefer},
    )
    assert response.headers["preference-applied"] == prefer
    row = response.json()
    assert row[f"revenue@{FORMATTED}"] == "$2,500,000.00"
    assert row[f"customertypecode@{FORMATTED}"] == "Customer"
    assert row[f"_transactioncurrencyid_value@{FORMATTED}"] == "US Dollar"
    assert row[f"modifiedon@{FORMATTED}"].endswith(("AM", "PM"))
    assert f"name@{FORMATTED}" not in row
    keys = list(row)
    assert keys.index(f"revenue@{FORMATTED}") == keys.index("revenue") - 1
    plain = api.get(f"accounts({ACCOUNT_US1})?$select=revenue").json()
    assert f"revenue@{FORMATTED}" not in plain


def test_formatted_values_of_other_types(api: WebApi) -> None:
    prefer = {"Prefer": 'odata.include-annotations="*"'}
    order = api.get(f"salesorders({ORDER_MUSTER})", headers=prefer).json()
    assert order[f"statecode@{FORMATTED}"] == "Active"
    assert order[f"statuscode@{FORMATTED}"] == "New"
    assert order[f"requestdeliveryby@{FORMATTED}"] == "4/30/2026"
    assert order[f"totalamount@{FORMATTED}"] == "€2,679.80"
    assert order[f"_customerid_value@{FORMATTED}"] == "Muster Pumpentechnik GmbH"
    assert order[f"ispricelocked@{FORMATTED}"] == "No"


def test_lookup_annotations_name_navigation_and_table(api: WebApi) -> None:
    prefer = (
        'odata.include-annotations="Microsoft.Dynamics.CRM.associatednavigationproperty,'
        'Microsoft.Dynamics.CRM.lookuplogicalname"'
    )
    order = api.get(
        f"salesorders({ORDER_MUSTER})?$select=_customerid_value", headers={"Prefer": prefer}
    ).json()
    prop = "_customerid_value"
    assert order[f"{prop}@Microsoft.Dynamics.CRM.associatednavigationproperty"] == (
        "customerid_account"
    )
    assert order[f"{prop}@Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"
    assert order[prop] == ACCOUNT_MUSTER


def test_expand_single_valued_with_nested_select(api: WebApi) -> None:
    row = api.get(
        f"accounts({ACCOUNT_NORDLICHT})?$select=name&$expand=parentaccountid($select=name)"
    ).json()
    assert row["@odata.context"] == (
        f"{ROOT}$metadata#accounts(name,parentaccountid(name))/$entity"
    )
    parent = row["parentaccountid"]
    assert set(parent) == {"@odata.etag", "name", "accountid"}
    assert parent["accountid"] == ACCOUNT_MUSTER
    lonely = api.get(f"accounts({ACCOUNT_US1})?$select=name&$expand=parentaccountid").json()
    assert lonely["parentaccountid"] is None


def test_expand_collection_valued_with_filter_and_order(api: WebApi) -> None:
    row = api.get(
        f"accounts({ACCOUNT_MUSTER})?$select=name&$expand="
        "sap_account_sap_erpaccount($select=sap_number,sap_name;$orderby=sap_name desc)"
    ).json()
    names = [erp["sap_name"] for erp in row["sap_account_sap_erpaccount"]]
    assert names == sorted(names, reverse=True)
    assert len(names) == 2
    filtered = api.get(
        f"accounts({ACCOUNT_MUSTER})?$expand=contact_customer_accounts($select=fullname;"
        "$filter=lastname eq 'Schmidt')"
    ).json()
    assert [c["fullname"] for c in filtered["contact_customer_accounts"]] == ["Jürgen Schmidt"]


def test_expand_through_the_erp_tables(api: WebApi) -> None:
    detail = api.get(
        f"sap_erpaccountdetails({DETAIL_US1})?$select=sap_number&$expand="
        "sap_linkederporgid($select=sap_erpsystemtype,sap_vkorg,sap_vtweg,sap_spart),"
        "sap_accountid($select=name)"
    ).json()
    assert detail["sap_linkederporgid"]["sap_vkorg"] == "1710"
    assert detail["sap_linkederporgid"]["sap_erpsystemtype"] == 100000000
    assert detail["sap_accountid"]["name"] == "Inlandskunde US 1"


def test_filter_on_a_lookup_value(api: WebApi) -> None:
    body = api.get(
        f"sap_erpaccountdetails?$select=sap_name&$filter=_sap_accountid_value eq {ACCOUNT_US1}"
    ).json()
    assert [row["sap_erpaccountdetailid"] for row in body["value"]] == [DETAIL_US1]


def test_count_and_dollar_count(api: WebApi) -> None:
    body = api.get("accounts?$select=name&$count=true&$filter=address1_country eq 'DE'").json()
    assert body["@odata.count"] == 2
    assert len(body["value"]) == 2
    counted = api.get("accounts/$count")
    assert counted.status_code == 200
    assert counted.headers["content-type"].startswith("text/plain")
    assert counted.text == "4"


def test_paging_with_maxpagesize_and_next_link(api: WebApi) -> None:
    prefer = {"Prefer": "odata.maxpagesize=2"}
    first = api.get("accounts?$select=name", headers=prefer)
    assert first.headers["preference-applied"] == "odata.maxpagesize=2"
    body = first.json()
    assert len(body["value"]) == 2
    link = body["@odata.nextLink"]
    assert link.startswith(f"{ROOT}accounts?$select=name&$skiptoken=")
    second = api.get(link.removeprefix(ROOT), headers=prefer).json()
    assert "@odata.nextLink" not in second
    seen = [row["accountid"] for row in body["value"] + second["value"]]
    assert len(seen) == len(set(seen)) == 4


def test_conditional_get_is_304_until_the_row_changes() -> None:
    api = web_api()
    row = api.get(f"accounts({ACCOUNT_US1})?$select=name").json()
    again = api.get(
        f"accounts({ACCOUNT_US1})?$select=name", headers={"If-None-Match": row["@odata.etag"]}
    )
    assert again.status_code == 304
    assert again.content == b""
    expanded = api.get(
        f"accounts({ACCOUNT_US1})?$expand=parentaccountid",
        headers={"If-None-Match": row["@odata.etag"]},
    )
    assert expanded.status_code == 200
    assert api.patch(f"accounts({ACCOUNT_US1})", {"telephone1": "1"}).status_code == 204
    changed = api.get(
        f"accounts({ACCOUNT_US1})?$select=name", headers={"If-None-Match": row["@odata.etag"]}
    )
    assert changed.status_code == 200


def test_single_property_and_raw_value(api: WebApi) -> None:
    body = api.get(f"accounts({ACCOUNT_US1})/name").json()
    assert body == {
        "@odata.context": f"{ROOT}$metadata#accounts({ACCOUNT_US1})/name",
        "value": "Inlandskunde US 1",
    }
    raw = api.get(f"accounts({ACCOUNT_US1})/name/$value")
    assert raw.text == "Inlandskunde US 1"
    assert api.get(f"accounts({ACCOUNT_US1})/fax").status_code == 204


def test_navigation_segments(api: WebApi) -> None:
    parent = api.get(f"accounts({ACCOUNT_NORDLICHT})/parentaccountid?$select=name").json()
    assert parent["@odata.context"] == f"{ROOT}$metadata#accounts(name)/$entity"
    assert parent["accountid"] == ACCOUNT_MUSTER
    lines = api.get(f"salesorders({ORDER_MUSTER})/order_details?$select=quantity").json()
    assert lines["@odata.context"] == f"{ROOT}$metadata#salesorderdetails(quantity)"
    assert len(lines["value"]) == 2
    assert api.get(f"salesorders({ORDER_MUSTER})/order_details/$count").text == "2"


def test_query_options_on_a_single_row_are_refused(api: WebApi) -> None:
    status, code, message = error_of(api.get(f"accounts({ACCOUNT_US1})?$top=1"))
    assert (status, code) == (400, "0x80060888")
    assert "$top" in message


def test_skip_is_refused_as_documented(api: WebApi) -> None:
    status, _, message = error_of(api.get("accounts?$skip=1"))
    assert status == 400
    assert message == "The query parameter $skip is not supported"


def test_metadata_and_service_document(api: WebApi) -> None:
    metadata = api.get("$metadata")
    assert metadata.status_code == 200
    assert metadata.headers["content-type"].startswith("application/xml")
    document = etree.fromstring(metadata.content)
    assert document.get("Version") == "4.0"
    annotated = api.get("$metadata?annotations=true").content
    assert len(annotated) > len(metadata.content)
    service = api.get("").json()
    assert service["@odata.context"] == f"{ROOT}$metadata"
    names = {entry["name"] for entry in service["value"]}
    assert {"accounts", "sap_erpaccountdetails", "transactioncurrencies"} <= names


def test_encoded_key_values_are_decoded_once(api: WebApi) -> None:
    key = quote("accountnumber='ACC-1001'", safe="")
    row = api.get(f"accounts({key})?$select=name").json()
    assert row["accountid"] == ACCOUNT_US1

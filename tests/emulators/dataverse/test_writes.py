"""Creates and updates through the whole app: representation, binds, deep insert, refusals."""

from __future__ import annotations

import re

import pytest

from d365sap.emulators.dataverse.events import RowChange
from d365sap.emulators.dataverse.identity import DEMO_APPLICATION_USER_ID, DEMO_CLIENT_ID
from d365sap.emulators.settings import DataverseEmulatorSettings
from support.dataverse_api import (
    ACCOUNT_MUSTER,
    ACCOUNT_US1,
    CURRENCY_USD,
    ORDER_MUSTER,
    ORG_ECC_1000,
    ROOT,
    WebApi,
    error_of,
    web_api,
)

GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
PAYLOAD = "0x80048d19"
VALIDATION = "0x80044331"


@pytest.fixture
def api() -> WebApi:
    return web_api()


def _created_id(response_headers: dict[str, str], entity_set: str) -> str:
    match = re.fullmatch(
        rf"{re.escape(ROOT)}{entity_set}\(({GUID})\)", response_headers["odata-entityid"]
    )
    assert match is not None, response_headers
    return match.group(1)


def test_create_answers_204_with_the_entity_id(api: WebApi) -> None:
    response = api.post("accounts", {"name": "Contoso Pumps", "accountnumber": "ACC-9001"})
    assert response.status_code == 204, response.text
    assert response.content == b""
    row_id = _created_id(dict(response.headers), "accounts")
    row = api.get(f"accounts({row_id})").json()
    assert row["name"] == "Contoso Pumps"
    assert row["statecode"] == 0
    assert row["statuscode"] == 1
    assert row["creditonhold"] is False
    assert row["createdon"] == row["modifiedon"]
    assert row["@odata.etag"] == f'W/"{row["versionnumber"]}"'


def test_create_with_representation_returns_201_and_the_selected_row(api: WebApi) -> None:
    response = api.post(
        "accounts?$select=name,revenue,createdon",
        {"name": "Sample Account", "revenue": 5000000},
        headers={"Prefer": "return=representation"},
    )
    assert response.status_code == 201, response.text
    assert response.headers["preference-applied"] == "return=representation"
    assert "odata-entityid" not in response.headers
    body = response.json()
    assert body["@odata.context"] == f"{ROOT}$metadata#accounts(name,revenue,createdon)/$entity"
    assert body["@odata.etag"].startswith('W/"')
    assert body["revenue"] == 5000000
    assert body["_transactioncurrencyid_value"] == CURRENCY_USD  # base currency for money
    assert re.fullmatch(GUID, body["accountid"])


def test_client_chosen_id_and_taken_id(api: WebApi) -> None:
    chosen = "11111111-2222-4333-8444-555555555555"
    assert api.post("accounts", {"accountid": chosen, "name": "Mine"}).status_code == 204
    assert api.get(f"accounts({chosen})?$select=name").json()["name"] == "Mine"
    assert error_of(api.post("accounts", {"accountid": chosen, "name": "Again"})) == (
        412,
        "0x80040237",
        "A record with matching key values already exists.",
    )


def test_bind_by_id_and_by_alternate_key(api: WebApi) -> None:
    body = {
        "name": "Child",
        "parentaccountid@odata.bind": f"/accounts({ACCOUNT_MUSTER})",
        "primarycontactid@odata.bind": "contacts(6b8d0f21-3a5c-4e7f-9b1d-2c4e6a8b0d02)",
        "transactioncurrencyid@odata.bind": "/transactioncurrencies(isocurrencycode='EUR')",
    }
    row_id = _created_id(dict(api.post("accounts", body).headers), "accounts")
    row = api.get(f"accounts({row_id})").json()
    assert row["_parentaccountid_value"] == ACCOUNT_MUSTER
    assert row["_primarycontactid_value"] == "6b8d0f21-3a5c-4e7f-9b1d-2c4e6a8b0d02"
    update = {"parentaccountid@odata.bind": f"{ROOT}accounts(accountnumber='ACC-1001')"}
    assert api.patch(f"accounts({row_id})", update).status_code == 204
    assert api.get(f"accounts({row_id})").json()["_parentaccountid_value"] == ACCOUNT_US1
    cleared = api.patch(f"accounts({row_id})", {"parentaccountid@odata.bind": None})
    assert cleared.status_code == 204
    assert api.get(f"accounts({row_id})").json()["_parentaccountid_value"] is None


def test_customer_lookup_binds_either_table(api: WebApi) -> None:
    order = {
        "name": "Order for a contact",
        "customerid_contact@odata.bind": "/contacts(6b8d0f21-3a5c-4e7f-9b1d-2c4e6a8b0d01)",
        "pricelevelid@odata.bind": "/pricelevels(9c3e5a17-2b4d-4f6a-8e01-3d5b7c9e1a01)",
        "transactioncurrencyid@odata.bind": f"/transactioncurrencies({CURRENCY_USD})",
    }
    row_id = _created_id(dict(api.post("salesorders", order).headers), "salesorders")
    annotations = {"Prefer": 'odata.include-annotations="Microsoft.Dynamics.CRM.lookuplogicalname"'}
    row = api.get(f"salesorders({row_id})?$select=_customerid_value", headers=annotations).json()
    assert row["_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "contact"
    switch = {"customerid_account@odata.bind": f"/accounts({ACCOUNT_MUSTER})"}
    assert api.patch(f"salesorders({row_id})", switch).status_code == 204
    row = api.get(f"salesorders({row_id})?$select=_customerid_value", headers=annotations).json()
    assert row["_customerid_value"] == ACCOUNT_MUSTER
    assert row["_customerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "account"
    both = {
        "customerid_account@odata.bind": f"/accounts({ACCOUNT_MUSTER})",
        "customerid_contact@odata.bind": "/contacts(6b8d0f21-3a5c-4e7f-9b1d-2c4e6a8b0d01)",
    }
    status, code, message = error_of(api.patch(f"salesorders({row_id})", both))
    assert (status, code) == (400, PAYLOAD)
    assert "customerid" in message


def test_bind_refusals(api: WebApi) -> None:
    missing = "00000000-0000-0000-0000-00000000beef"
    assert error_of(
        api.post("accounts", {"name": "x", "parentaccountid@odata.bind": f"/accounts({missing})"})
    ) == (
        404,
        "0x80040217",
        f"account With Id = {missing} Does Not Exist",
    )
    status, code, message = error_of(
        api.post("accounts", {"name": "x", "parentaccountid@odata.bind": f"/contacts({missing})"})
    )
    assert (status, code) == (400, PAYLOAD)
    assert "'parentaccountid@odata.bind' points at 'contacts'" in message
    status, code, message = error_of(
        api.post(
            "accounts", {"name": "x", "ParentAccountId@odata.bind": f"/accounts({ACCOUNT_US1})"}
        )
    )
    assert (status, code) == (400, PAYLOAD)
    assert "An undeclared property 'ParentAccountId' which only has property annotations" in message
    status, code, message = error_of(
        api.post("accounts", {"name": "x", "_parentaccountid_value": ACCOUNT_US1})
    )
    assert (status, code) == (400, PAYLOAD)
    assert message.endswith(
        "CRM do not support direct update of Entity Reference properties, Use Navigation "
        "properties instead."
    )


def test_unknown_and_mistyped_columns_are_named(api: WebApi) -> None:
    status, code, message = error_of(api.post("accounts", {"name": "x", "foo": 1}))
    assert (status, code) == (400, PAYLOAD)
    assert message.startswith(
        "Error identified in Payload provided by the user for Entity :'accounts'"
    )
    assert "The property 'foo' does not exist on type 'Microsoft.Dynamics.CRM.account'." in message
    for body, column in (
        ({"name": 5}, "name"),
        ({"numberofemployees": "ten"}, "numberofemployees"),
        ({"creditonhold": "yes"}, "creditonhold"),
        ({"revenue": "12"}, "revenue"),
        ({"customertypecode": 3.5}, "customertypecode"),
        ({"createdon": 5}, None),
    ):
        response = api.post("accounts", body)
        if column is None:
            assert response.status_code == 204  # read-only columns are ignored
            continue
        status, code, message = error_of(response)
        assert (status, code) == (400, PAYLOAD), body
        assert f"property '{column}'" in message


def test_datetimes_need_an_offset_and_dates_a_date(api: WebApi) -> None:
    order_path = f"salesorders({ORDER_MUSTER})"
    status, code, message = error_of(
        api.patch(order_path, {"requestdeliveryby": "2026-05-01T00:00:00Z"})
    )
    assert (status, code) == (400, PAYLOAD)
    assert "Edm.Date" in message
    assert api.patch(order_path, {"requestdeliveryby": "2026-05-01"}).status_code == 204
    detail = "sap_erpaccountdetails(a8e4f0c2-3d51-4b7e-9c16-2e7f5a1b8d30)"
    status, _, message = error_of(api.patch(detail, {"sap_lastsyncon": "2026-05-01T10:00:00"}))
    assert status == 400
    assert "sap_lastsyncon" in message
    assert api.patch(detail, {"sap_lastsyncon": "2026-05-01T12:00:00+02:00"}).status_code == 204
    assert api.get(f"{detail}/sap_lastsyncon").json()["value"] == "2026-05-01T10:00:00Z"


def test_lengths_ranges_and_choices_are_validated(api: WebApi) -> None:
    assert error_of(api.post("accounts", {"name": "x" * 161})) == (
        400,
        VALIDATION,
        "A validation error occurred. The length of the 'name' attribute of the 'account' "
        "entity exceeded the maximum allowed length of '160' (the value has 161 characters).",
    )
    assert api.post("accounts", {"name": "x" * 160}).status_code == 204
    status, code, message = error_of(api.post("accounts", {"name": "x", "numberofemployees": -1}))
    assert (status, code) == (400, VALIDATION)
    assert "The value -1 of 'numberofemployees' on record of type 'account' is outside" in message
    status, code, message = error_of(api.post("accounts", {"name": "x", "customertypecode": 99}))
    assert (status, code) == (400, VALIDATION)
    assert "'customertypecode'" in message
    assert "99" in message
    status, _, message = error_of(
        api.patch("sap_linkederporgs(0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d)", {"sap_vkorg": "10000"})
    )
    assert status == 400
    assert "'sap_vkorg' attribute of the 'sap_linkederporg' entity" in message


def test_system_required_columns_must_have_a_value(api: WebApi) -> None:
    status, code, message = error_of(
        api.post("salesorderdetails", {"salesorderdetailname": "x", "quantity": 1})
    )
    assert (status, code) == (400, "0x80040203")
    assert "'salesorderid' attribute of the 'salesorderdetail' entity is required" in message
    status, _, message = error_of(api.post("transactioncurrencies", {"currencyname": "Yen"}))
    assert status == 400
    assert "'isocurrencycode'" in message
    # ApplicationRequired is left to forms, as in Dataverse
    assert api.post("accounts", {"telephone1": "1"}).status_code == 204


def test_business_required_columns_when_configured() -> None:
    strict = web_api(DataverseEmulatorSettings(enforce_business_required=True))
    status, code, message = error_of(strict.post("accounts", {"telephone1": "1"}))
    assert (status, code) == (400, "0x80040203")
    assert "'name' attribute of the 'account' entity is required (ApplicationRequired" in message
    status, _, message = error_of(strict.patch(f"accounts({ACCOUNT_US1})", {"name": None}))
    assert status == 400
    assert "'name'" in message
    assert strict.patch(f"accounts({ACCOUNT_US1})", {"telephone1": "2"}).status_code == 204


def test_duplicate_alternate_key_on_create_and_update(api: WebApi) -> None:
    status, code, message = error_of(
        api.post("accounts", {"name": "x", "accountnumber": "acc-1001"})
    )
    assert (status, code) == (412, "0x80060892")
    assert message.startswith("Entity Key Account Number violated.")
    assert "accountnumber" in message
    status, code, _ = error_of(
        api.patch(f"accounts({ACCOUNT_MUSTER})", {"accountnumber": "ACC-1001"})
    )
    assert (status, code) == (412, "0x80060892")
    duplicate_org = {
        "sap_name": "again",
        "sap_erpsystemtype": 100000001,
        "sap_vkorg": "1000",
        "sap_vtweg": "10",
        "sap_spart": "00",
    }
    status, code, message = error_of(api.post("sap_linkederporgs", duplicate_org))
    assert (status, code) == (412, "0x80060892")
    assert "sap_vkorg" in message


def test_deep_insert_creates_and_links_everything(api: WebApi) -> None:
    body = {
        "name": "Deep Account",
        "primarycontactid": {"firstname": "John", "lastname": "Smith"},
        "contact_customer_accounts": [
            {"firstname": "Ann", "lastname": "Lee"},
            {"lastname": "Kim"},
        ],
        "sap_account_sap_erpaccount": [
            {
                "sap_name": "Deep ERP account",
                "sap_number": "100999",
                "sap_linkederporgid@odata.bind": f"/sap_linkederporgs({ORG_ECC_1000})",
            }
        ],
    }
    response = api.post(
        "accounts?$select=name&$expand=primarycontactid($select=fullname),"
        "contact_customer_accounts($select=fullname),sap_account_sap_erpaccount($select=sap_number)",
        body,
        headers={"Prefer": "return=representation"},
    )
    assert response.status_code == 201, response.text
    row = response.json()
    assert row["primarycontactid"]["fullname"] == "John Smith"
    assert sorted(c["fullname"] for c in row["contact_customer_accounts"]) == ["Ann Lee", "Kim"]
    assert [e["sap_number"] for e in row["sap_account_sap_erpaccount"]] == ["100999"]
    erp_id = row["sap_account_sap_erpaccount"][0]["sap_erpaccountid"]
    erp = api.get(f"sap_erpaccounts({erp_id})").json()
    assert erp["_sap_accountid_value"] == row["accountid"]
    assert erp["_sap_linkederporgid_value"] == ORG_ECC_1000


def test_a_failing_deep_insert_leaves_nothing(api: WebApi) -> None:
    before = api.get("/emulator/health", authorization=None).json()["rows"]
    body = {
        "name": "Broken Deep",
        "primarycontactid": {"lastname": "Fine"},
        "contact_customer_accounts": [{"lastname": "y" * 51}],
    }
    status, code, message = error_of(api.post("accounts", body))
    assert (status, code) == (400, VALIDATION)
    assert "'lastname' attribute of the 'contact' entity" in message
    after = api.get("/emulator/health", authorization=None).json()["rows"]
    assert after == before


def test_deep_update_is_refused(api: WebApi) -> None:
    status, code, message = error_of(
        api.patch(f"accounts({ACCOUNT_US1})", {"primarycontactid": {"lastname": "New"}})
    )
    assert (status, code) == (400, PAYLOAD)
    assert "Deep update is not supported: 'primarycontactid'" in message


def test_update_changes_version_and_modifiedon(api: WebApi) -> None:
    before = api.get(f"accounts({ACCOUNT_US1})").json()
    response = api.patch(f"accounts({ACCOUNT_US1})", {"telephone1": "+1 650 555-0199"})
    assert response.status_code == 204
    assert response.headers["odata-entityid"] == f"{ROOT}accounts({ACCOUNT_US1})"
    after = api.get(f"accounts({ACCOUNT_US1})").json()
    assert after["telephone1"] == "+1 650 555-0199"
    assert after["versionnumber"] > before["versionnumber"]
    assert after["createdon"] == before["createdon"]
    shown = api.patch(
        f"accounts({ACCOUNT_US1})?$select=telephone1",
        {"telephone1": "2"},
        headers={"Prefer": "return=representation"},
    )
    assert shown.status_code == 200
    assert shown.json()["telephone1"] == "2"


def test_state_and_status_stay_consistent(api: WebApi) -> None:
    path = f"salesorders({ORDER_MUSTER})"
    assert api.patch(path, {"statecode": 1}).status_code == 204
    order = api.get(f"{path}?$select=statecode,statuscode").json()
    assert (order["statecode"], order["statuscode"]) == (1, 3)
    status, code, message = error_of(api.patch(path, {"statecode": 0, "statuscode": 100001}))
    assert (status, code) == (400, "0x80040203")
    assert "100001 is not a valid status code for state code salesorderState.Active" in message
    assert api.patch(path, {"statecode": 3, "statuscode": 100002}).status_code == 204
    order = api.get(f"{path}?$select=statecode,statuscode").json()
    assert (order["statecode"], order["statuscode"]) == (3, 100002)


def test_computed_columns(api: WebApi) -> None:
    contact = api.post(
        "contacts?$select=fullname",
        {"firstname": "Erika", "lastname": "Mustermann"},
        headers={"Prefer": "return=representation"},
    ).json()
    assert contact["fullname"] == "Erika Mustermann"
    line = api.post(
        "salesorderdetails?$select=baseamount,extendedamount",
        {
            "salesorderdetailname": "extra",
            "salesorderid@odata.bind": f"/salesorders({ORDER_MUSTER})",
            "quantity": 3,
            "priceperunit": 10.5,
            "manualdiscountamount": 1.5,
            "tax": 2,
        },
        headers={"Prefer": "return=representation"},
    ).json()
    assert (line["baseamount"], line["extendedamount"]) == (31.5, 32.0)
    order = api.post(
        "salesorders?$select=ordernumber",
        {"name": "Numbered"},
        headers={"Prefer": "return=representation"},
    ).json()
    assert re.fullmatch(r"ORD-\d{5}-[A-Z0-9]{6}", order["ordernumber"])
    order_id = order["salesorderid"]
    assert api.patch(f"salesorders({order_id})", {"ordernumber": "CHANGED"}).status_code == 204
    assert api.get(f"salesorders({order_id})/ordernumber").json()["value"] == order["ordernumber"]


def test_malformed_bodies(api: WebApi) -> None:
    status, code, message = error_of(
        api.request(
            "POST", "accounts", content=b'{"name": ', headers={"Content-Type": "application/json"}
        )
    )
    assert (status, code) == (400, PAYLOAD)
    assert "Invalid JSON" in message
    status, code, _ = error_of(
        api.request(
            "POST", "accounts", content=b"[1, 2]", headers={"Content-Type": "application/json"}
        )
    )
    assert (status, code) == (400, PAYLOAD)
    response = api.request(
        "POST", "accounts", content=b"name=x", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code == 415


def test_methods_that_do_not_fit_the_resource(api: WebApi) -> None:
    assert error_of(api.patch("accounts", {"name": "x"})) == (
        405,
        "",
        "The requested resource does not support http method 'PATCH'.",
    )
    assert api.post(f"accounts({ACCOUNT_US1})", {"name": "x"}).status_code == 405
    assert api.delete("accounts").status_code == 405


def test_single_property_put_and_delete(api: WebApi) -> None:
    path = f"accounts({ACCOUNT_US1})/telephone1"
    assert api.request("PUT", path, json={"value": "+1 000"}).status_code == 204
    assert api.get(path).json()["value"] == "+1 000"
    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 204


def test_ref_associates_and_disassociates(api: WebApi) -> None:
    ref = f"accounts({ACCOUNT_US1})/parentaccountid/$ref"
    body = {"@odata.id": f"{ROOT}accounts({ACCOUNT_MUSTER})"}
    assert api.request("PUT", ref, json=body).status_code == 204
    assert api.get(ref).json()["@odata.id"] == f"{ROOT}accounts({ACCOUNT_MUSTER})"
    assert api.delete(ref).status_code == 204
    assert api.get(f"accounts({ACCOUNT_US1})/_parentaccountid_value").status_code == 204
    contact = "6b8d0f21-3a5c-4e7f-9b1d-2c4e6a8b0d01"
    collection = f"accounts({ACCOUNT_US1})/contact_customer_accounts/$ref"
    assert api.post(collection, {"@odata.id": f"{ROOT}contacts({contact})"}).status_code == 204
    linked = api.get(collection).json()["value"]
    assert linked == [{"@odata.id": f"{ROOT}contacts({contact})"}]
    removed = api.delete(f"{collection}?$id={ROOT}contacts({contact})")
    assert removed.status_code == 204
    assert api.get(collection).json()["value"] == []


def test_post_to_a_collection_navigation_links_the_new_row(api: WebApi) -> None:
    response = api.post(
        f"accounts({ACCOUNT_US1})/contact_customer_accounts", {"lastname": "Related"}
    )
    assert response.status_code == 204
    contact_id = _created_id(dict(response.headers), "contacts")
    contact = api.get(f"contacts({contact_id})").json()
    assert contact["_parentcustomerid_value"] == ACCOUNT_US1


def test_changes_are_announced_with_caller_and_request_id(api: WebApi) -> None:
    heard: list[RowChange] = []

    def listener(change: RowChange) -> None:
        heard.append(change)

    api.environment.store.subscribe(listener)
    response = api.post("accounts", {"name": "Announced"})
    assert [change.kind for change in heard] == ["Create"]
    change = heard[0]
    assert change.caller.client_id == DEMO_CLIENT_ID
    assert change.caller.user_id == DEMO_APPLICATION_USER_ID
    assert change.request_id == response.headers["x-ms-service-request-id"]
    assert change.after is not None
    assert change.after["name"] == "Announced"

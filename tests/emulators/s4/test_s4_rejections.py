"""What S/4 refuses, refused the same way: status, SAP error body, the field named."""

from __future__ import annotations

from typing import Any

import pytest

from emulators.s4.s4_support import S4, sales_area_path, sap_error


def area(customer: str = "17100001", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Customer": customer,
        "SalesOrganization": "1710",
        "DistributionChannel": "10",
        "Division": "00",
    }
    body.update(extra)
    return body


def test_sales_area_for_a_customer_that_does_not_exist(s4: S4) -> None:
    response = s4.send("POST", "A_CustomerSalesArea", area("17199999"))
    error = sap_error(response, 400, code="F2/502", prop="Customer")
    assert error["message"]["value"] == "Customer 17199999 does not exist"


def test_tax_row_for_a_sales_area_that_does_not_exist(s4: S4) -> None:
    body = area("17100001", DepartureCountry="US", CustomerTaxCategory="UTXJ")
    response = s4.send("POST", "A_CustomerSalesAreaTax", body)
    sap_error(
        response, 400, code="CVI_EI/053", contains="Sales Area 17100001/1710/10/00 does not exist"
    )


def test_duplicate_key_is_400_already_exists(s4: S4) -> None:
    response = s4.send("POST", "A_CustomerSalesArea", area("17100002"))
    error = sap_error(response, 400, code="CVI_EI/054", prop="SalesOrganization")
    assert "already exists" in error["message"]["value"]
    assert "17100002/1710/10/00" in error["message"]["value"]
    duplicate_bp = s4.send(
        "POST", "A_BusinessPartner", {"BusinessPartner": "17100001", "BusinessPartnerCategory": "2"}
    )
    sap_error(duplicate_bp, 400, contains="already exists", prop="BusinessPartner")


def test_unknown_property_is_named(s4: S4) -> None:
    response = s4.send("POST", "A_CustomerSalesArea", area(Colour="blue"))
    sap_error(response, 400, prop="Colour", contains="Property 'Colour' is invalid")


def test_unknown_property_deep_inside_is_named_with_its_path(s4: S4) -> None:
    body = area(
        to_SalesAreaTax={
            "results": [{"DepartureCountry": "US", "CustomerTaxCategory": "UTXJ", "Rate": 1}]
        }
    )
    error = sap_error(s4.send("POST", "A_CustomerSalesArea", body), 400, prop="Rate")
    assert error["innererror"]["errordetails"][0]["target"] == "to_SalesAreaTax[0]/Rate"


def test_value_over_max_length_names_property_and_length(s4: S4) -> None:
    response = s4.send("POST", "A_CustomerSalesArea", area(SalesDistrict="US00031"))
    error = sap_error(response, 400, prop="SalesDistrict")
    assert "maximum length of 6" in error["message"]["value"]
    assert "'US00031'" in error["message"]["value"]


def test_too_long_key_is_rejected_before_any_lookup(s4: S4) -> None:
    response = s4.send("POST", "A_CustomerSalesArea", area(SalesOrganization="17100"))
    sap_error(response, 400, prop="SalesOrganization", contains="maximum length of 4")


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("DeletionIndicator", "false", "JSON true or false"),
        ("DeletionIndicator", 1, "JSON true or false"),
        ("Currency", 12, "JSON string"),
        ("SalesOrganization", None, "must not be null"),
    ],
)
def test_wrong_types_are_named(s4: S4, field: str, value: Any, fragment: str) -> None:
    response = s4.send("POST", "A_CustomerSalesArea", area(**{field: value}))
    sap_error(response, 400, prop=field, contains=fragment)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("31.02.2020", "not a valid date"),
        ("2020-02-31T00:00:00", "not a valid date"),
        (20200101, "JSON string"),
    ],
)
def test_bad_dates_are_named(s4: S4, value: Any, fragment: str) -> None:
    body = {"BusinessPartnerCategory": "1", "BirthDate": value}
    sap_error(s4.send("POST", "A_BusinessPartner", body), 400, prop="BirthDate", contains=fragment)


def test_good_date_forms_are_accepted(s4: S4) -> None:
    body = {"BusinessPartnerCategory": "1", "BirthDate": "/Date(946684800000)/"}
    assert (
        s4.send("POST", "A_BusinessPartner", body).json()["d"]["BirthDate"]
        == "/Date(946684800000)/"
    )
    body = {"BusinessPartnerCategory": "1", "BirthDate": "2000-01-01T00:00:00"}
    assert (
        s4.send("POST", "A_BusinessPartner", body).json()["d"]["BirthDate"]
        == "/Date(946684800000)/"
    )


def test_missing_key_property_is_named(s4: S4) -> None:
    body = area()
    del body["Division"]
    response = s4.send("POST", "A_CustomerSalesArea", body)
    sap_error(response, 400, prop="Division", contains="Key property 'Division'")
    tax = area(to_SalesAreaTax=[{"DepartureCountry": "US"}])
    error = sap_error(s4.send("POST", "A_CustomerSalesArea", tax), 400, prop="CustomerTaxCategory")
    assert (
        error["innererror"]["errordetails"][0]["target"] == "to_SalesAreaTax[0]/CustomerTaxCategory"
    )


def test_failed_deep_insert_leaves_nothing_behind(s4: S4) -> None:
    body = area(
        to_SalesAreaTax=[
            {"DepartureCountry": "US", "CustomerTaxCategory": "UTXJ"},
            {"DepartureCountry": "US"},
        ]
    )
    assert s4.send("POST", "A_CustomerSalesArea", body).status_code == 400
    assert s4.get(sales_area_path("17100001")).status_code == 404
    assert (
        s4.get("A_CustomerSalesAreaTax", **{"$filter": "Customer eq '17100001'"}).json()["d"][
            "results"
        ]
        == []
    )


@pytest.mark.parametrize(
    "content", [b"{not json", b"", b'{"Customer": "1"', "\u00e4".encode("latin-1")]
)
def test_malformed_json_is_400(s4: S4, content: bytes) -> None:
    response = s4.send(
        "POST", "A_CustomerSalesArea", content=content, headers={"Content-Type": "application/json"}
    )
    sap_error(response, 400, code="/IWBEP/CM_MGW_RT/004", contains="Malformed")


def test_json_that_is_not_an_object_is_400(s4: S4) -> None:
    response = s4.send("POST", "A_CustomerSalesArea", [area()])
    sap_error(response, 400, contains="JSON object")
    response = s4.send("POST", "A_CustomerSalesArea", area(to_SalesAreaTax="US"))
    sap_error(response, 400, prop="to_SalesAreaTax")


def test_atom_payloads_are_not_supported(s4: S4) -> None:
    response = s4.send(
        "POST",
        "A_CustomerSalesArea",
        content=b"<entry/>",
        headers={"Content-Type": "application/atom+xml"},
    )
    sap_error(response, 415, contains="application/atom+xml")


def test_patch_on_a_missing_key_is_404(s4: S4) -> None:
    response = s4.send("PATCH", sales_area_path("17100001"), {"Currency": "USD"})
    sap_error(
        response,
        404,
        code="/IWBEP/CM_MGW_RT/020",
        contains="Resource not found for segment 'A_CustomerSalesAreaType'",
    )


def test_patch_changing_a_key_property_is_400(s4: S4) -> None:
    response = s4.send("PATCH", sales_area_path("17100002"), {"Division": "01"})
    sap_error(response, 400, prop="Division", contains="cannot be changed")
    assert s4.get(sales_area_path("17100002")).status_code == 200


def test_non_creatable_and_non_updatable_properties(s4: S4) -> None:
    created = s4.send(
        "POST",
        "A_BusinessPartner",
        {"BusinessPartnerCategory": "2", "CreationDate": "2020-01-01T00:00:00"},
    )
    sap_error(created, 400, prop="CreationDate", contains="not creatable")
    named = s4.send("POST", "A_BusinessPartner", {"BusinessPartnerCategory": "2", "Customer": "1"})
    sap_error(named, 400, prop="Customer", contains="not creatable")
    updated = s4.send("PATCH", "A_BusinessPartner('17100001')", {"BusinessPartnerFullName": "X"})
    sap_error(updated, 400, prop="BusinessPartnerFullName", contains="not updatable")


def test_entity_sets_that_are_not_creatable_or_deletable(s4: S4) -> None:
    sap_error(s4.send("POST", "A_Customer", {"Customer": "1"}), 405, contains="not creatable")
    response = s4.send("DELETE", sales_area_path("17100002"))
    sap_error(response, 405, contains="not deletable")
    assert s4.get(sales_area_path("17100002")).status_code == 200
    sap_error(s4.send("DELETE", "A_BusinessPartner('17100001')"), 405, contains="not deletable")


def test_business_partner_needs_a_category(s4: S4) -> None:
    response = s4.send("POST", "A_BusinessPartner", {"OrganizationBPName1": "No category"})
    sap_error(response, 400, prop="BusinessPartnerCategory", contains="category")


def test_deep_update_is_refused(s4: S4) -> None:
    response = s4.send(
        "PATCH", sales_area_path("17100002"), {"to_SalesAreaTax": [{"DepartureCountry": "US"}]}
    )
    sap_error(response, 400, prop="to_SalesAreaTax", contains="deep update")


def test_nested_key_that_contradicts_the_parent(s4: S4) -> None:
    body = area(
        to_SalesAreaTax=[
            {"Customer": "17100002", "DepartureCountry": "US", "CustomerTaxCategory": "UTXJ"}
        ]
    )
    sap_error(
        s4.send("POST", "A_CustomerSalesArea", body), 400, prop="Customer", contains="must match"
    )


def test_writes_to_unknown_sets_and_wrong_targets(s4: S4) -> None:
    sap_error(s4.send("POST", "A_Unknown", {"A": "1"}), 404, contains="'A_Unknown'")
    sap_error(s4.send("PATCH", "A_CustomerSalesArea", {"Currency": "USD"}), 405)
    sap_error(s4.send("POST", sales_area_path("17100002"), area()), 405)
    sap_error(s4.send("DELETE", "$metadata"), 405)

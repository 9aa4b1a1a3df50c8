"""Reads: keys, navigation, $filter, $select, $expand, $orderby, client paging, JSON format."""

from __future__ import annotations

from typing import Any

import pytest

from emulators.s4.s4_support import S4, sales_area_path, sap_error

SA_TYPE = "API_BUSINESS_PARTNER.A_CustomerSalesAreaType"


def results(s4: S4, path: str, **params: str) -> list[dict[str, Any]]:
    response = s4.get(path, **params)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["d"]["results"]
    return rows


def customers(s4: S4, set_name: str, filter_text: str, key: str = "Customer") -> list[str]:
    return [row[key] for row in results(s4, set_name, **{"$filter": filter_text})]


def test_single_key_read_with_metadata_and_etag(s4: S4) -> None:
    response = s4.get("A_BusinessPartner('17100001')")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["dataserviceversion"] == "2.0"
    entity = response.json()["d"]
    assert entity["BusinessPartner"] == "17100001"
    assert entity["BusinessPartnerName"] == "Inlandskunde US 1"
    meta = entity["__metadata"]
    assert meta["type"] == "API_BUSINESS_PARTNER.A_BusinessPartnerType"
    assert meta["uri"] == s4.root + "A_BusinessPartner('17100001')"
    assert meta["etag"] == response.headers["etag"]
    assert meta["etag"].startswith("W/\"datetime'") and "%3A" in meta["etag"]
    assert entity["CreationDate"] == "/Date(1585699200000)/"
    deferred = entity["to_Customer"]["__deferred"]["uri"]
    assert deferred == s4.root + "A_BusinessPartner('17100001')/to_Customer"


def test_named_single_key_and_encoded_predicate(s4: S4) -> None:
    named = s4.get("A_BusinessPartner(BusinessPartner='17100002')")
    assert named.json()["d"]["BusinessPartner"] == "17100002"
    encoded = s4.get("A_BusinessPartner%28%2717100002%27%29")
    assert encoded.status_code == 200


def test_multi_key_read(s4: S4) -> None:
    response = s4.get(sales_area_path("17100002"))
    assert response.status_code == 200
    entity = response.json()["d"]
    assert entity["__metadata"]["type"] == SA_TYPE
    assert entity["__metadata"]["uri"] == s4.root + sales_area_path("17100002")
    assert (entity["SalesOrganization"], entity["Currency"], entity["DeletionIndicator"]) == (
        "1710",
        "USD",
        False,
    )


def test_typed_key_predicate_with_datetime_and_boolean(s4: S4) -> None:
    path = (
        "A_AddressHomePageURL(AddressID='23005',Person='',OrdinalNumber='1',"
        "ValidityStartDate=datetime'0001-01-01T00:00:00',IsDefaultURLAddress=true)"
    )
    entity = s4.get(path).json()["d"]
    assert entity["WebsiteURL"] == "https://kunde-de1.example"
    assert entity["__metadata"]["uri"] == s4.root + path.replace(":", "%3A")


def test_unknown_key_is_404_resource_not_found(s4: S4) -> None:
    sap_error(
        s4.get("A_BusinessPartner('99999999')"),
        404,
        code="/IWBEP/CM_MGW_RT/020",
        contains="Resource not found for segment 'A_BusinessPartnerType'",
    )
    sap_error(s4.get(sales_area_path("17100001")), 404, code="/IWBEP/CM_MGW_RT/020")


def test_bad_key_predicates_are_rejected(s4: S4) -> None:
    positional = (
        "A_CustomerSalesArea('Customer','SalesOrganization','DistributionChannel','Division')"
    )
    sap_error(s4.get(positional), 400, contains="4 key properties")
    sap_error(s4.get("A_BusinessPartner(17100001)"), 400, prop="BusinessPartner")
    sap_error(
        s4.get("A_CustomerSalesArea(Customer='17100002',SalesOrganization='1710')"),
        400,
        prop="DistributionChannel",
    )


def test_navigation_to_many_to_one_and_keyed(s4: S4) -> None:
    areas = results(s4, "A_Customer('17100003')/to_CustomerSalesArea")
    assert [a["DistributionChannel"] for a in areas] == ["10", "20"]
    customer = s4.get("A_BusinessPartner('17100003')/to_Customer").json()["d"]
    assert customer["Customer"] == "17100003"
    assert customer["CustomerName"] == "Inlandskunde US 3"
    keyed = s4.get(
        "A_Customer('17100003')/to_CustomerSalesArea(Customer='17100003',"
        "SalesOrganization='1710',DistributionChannel='20',Division='00')"
    )
    assert keyed.json()["d"]["OrderIsBlockedForCustomer"] == "01"
    taxes = results(s4, sales_area_path("17100002") + "/to_SalesAreaTax")
    assert [(t["DepartureCountry"], t["CustomerTaxCategory"]) for t in taxes] == [("US", "UTXJ")]
    assert results(s4, "A_Customer('17100001')/to_CustomerSalesArea") == []


def test_property_and_count_segments(s4: S4) -> None:
    value = s4.get("A_BusinessPartner('17100004')/LastName").json()
    assert value == {"d": {"LastName": "O'Neil"}}
    count = s4.get("A_CustomerSalesArea/$count")
    assert (count.status_code, count.text) == (200, "5")


def test_unknown_entity_set_and_navigation_are_404(s4: S4) -> None:
    sap_error(s4.get("A_Nonsense"), 404, contains="Resource not found for segment 'A_Nonsense'")
    sap_error(s4.get("A_Customer('17100001')/to_Nowhere"), 404, contains="to_Nowhere")


@pytest.mark.parametrize(
    ("filter_text", "expected"),
    [
        ("Customer eq '17100002'", ["17100002"]),
        ("Customer ne '17100002'", ["10100001", "17100003", "17100003", "17100004"]),
        ("Customer gt '17100003'", ["17100004"]),
        ("Customer ge '17100003'", ["17100003", "17100003", "17100004"]),
        ("Customer lt '17100002'", ["10100001"]),
        ("Customer le '17100002'", ["10100001", "17100002"]),
        ("SalesOrganization eq '1710' and DistributionChannel eq '20'", ["17100003"]),
        ("Customer eq '10100001' or Customer eq '17100004'", ["10100001", "17100004"]),
        ("not (SalesOrganization eq '1710')", ["10100001"]),
        (
            "(Customer eq '17100002' or Customer eq '17100003') and DistributionChannel eq '10'",
            ["17100002", "17100003"],
        ),
        ("OrderIsBlockedForCustomer ne null", ["17100003"]),
        ("DeletionIndicator eq false and Currency eq 'EUR'", ["10100001"]),
        ("OrderCombinationIsAllowed", ["10100001", "17100002", "17100003", "17100003", "17100004"]),
        ("startswith(SalesDistrict,'US000') and endswith(SalesDistrict,'2')", ["17100004"]),
        ("substringof('DE',SalesDistrict)", ["10100001"]),
    ],
)
def test_filter_operators(s4: S4, filter_text: str, expected: list[str]) -> None:
    assert customers(s4, "A_CustomerSalesArea", filter_text) == expected


def test_filter_string_escaping_null_number_and_datetime(s4: S4) -> None:
    bp = "BusinessPartner"
    assert customers(s4, "A_BusinessPartner", "LastName eq 'O''Neil'", bp) == ["17100004"]
    assert customers(s4, "A_BusinessPartner", "LastName eq 'a and b'", bp) == []
    assert len(customers(s4, "A_BusinessPartner", "Supplier eq null", bp)) == 5
    assert customers(s4, "A_BusinessPartner", "IsFemale eq true", bp) == ["17100004"]
    created = "CreationDate eq datetime'2020-04-01T00:00:00'"
    assert len(customers(s4, "A_BusinessPartner", created, bp)) == 5
    assert (
        customers(s4, "A_BusinessPartner", "CreationDate lt datetime'2020-01-01T00:00'", bp) == []
    )
    assert customers(s4, "A_AddressHomePageURL", "URLFieldLength gt 30", "AddressID") == ["23002"]
    assert customers(s4, "A_AddressHomePageURL", "URLFieldLength le 25", "AddressID") == ["23005"]
    offset = "ValidityStartDate eq datetimeoffset'2020-04-01T00:00:00Z'"
    assert len(customers(s4, "A_BusinessPartnerAddress", offset, "AddressID")) == 5


@pytest.mark.parametrize(
    ("filter_text", "prop", "fragment"),
    [
        ("Nonsense eq '1'", "Nonsense", "Property 'Nonsense' not found"),
        ("Customer eq 17100002", "Customer", "incompatible types"),
        ("DeletionIndicator eq 'false'", "DeletionIndicator", "incompatible types"),
        ("Customer eq '1' and", "", "operand expected"),
        ("Customer eq 'open", "", "unterminated string"),
        ("(Customer eq '1'", "", "')' expected"),
        ("Customer", "Customer", "Boolean expression"),
        ("nosuchfunction(Customer)", "", "not supported"),
    ],
)
def test_invalid_filters_are_400_naming_the_problem(
    s4: S4, filter_text: str, prop: str, fragment: str
) -> None:
    response = s4.get("A_CustomerSalesArea", **{"$filter": filter_text})
    sap_error(response, 400, prop=prop or None, contains=fragment)


def test_select(s4: S4) -> None:
    rows = results(
        s4,
        "A_CustomerSalesArea",
        **{"$select": "Customer,Currency", "$filter": "Customer eq '17100002'"},
    )
    assert rows == [
        {
            "__metadata": rows[0]["__metadata"],
            "Customer": "17100002",
            "Currency": "USD",
        }
    ]
    sap_error(s4.get("A_CustomerSalesArea", **{"$select": "Nope"}), 400, prop="Nope")


def test_expand_nested_with_select(s4: S4) -> None:
    response = s4.get(
        "A_BusinessPartner('17100002')",
        **{
            "$expand": "to_Customer/to_CustomerSalesArea/to_SalesAreaTax,to_BusinessPartnerAddress",
            "$select": "BusinessPartner,to_Customer/Customer,to_Customer/to_CustomerSalesArea",
        },
    )
    entity = response.json()["d"]
    assert set(entity) == {
        "__metadata",
        "BusinessPartner",
        "to_Customer",
        "to_BusinessPartnerAddress",
    }
    customer = entity["to_Customer"]
    assert set(customer) == {"__metadata", "Customer", "to_CustomerSalesArea"}
    area = customer["to_CustomerSalesArea"]["results"][0]
    assert area["Currency"] == "USD"
    tax = area["to_SalesAreaTax"]["results"][0]
    assert tax["CustomerTaxCategory"] == "UTXJ"
    assert "__deferred" in area["to_PartnerFunction"]
    address = entity["to_BusinessPartnerAddress"]["results"][0]
    assert address["ValidityStartDate"] == "/Date(1585699200000+0000)/"
    sap_error(s4.get("A_Customer", **{"$expand": "to_Nope"}), 400, prop="to_Nope")


def test_expand_on_collection_and_empty_to_one(s4: S4) -> None:
    rows = results(s4, "A_BusinessPartner", **{"$expand": "to_Supplier", "$top": "1"})
    assert rows[0]["to_Supplier"] is None


def test_top_skip_inlinecount_orderby(s4: S4) -> None:
    response = s4.get(
        "A_CustomerSalesArea",
        **{
            "$orderby": "DistributionChannel desc,Customer desc",
            "$top": "3",
            "$skip": "1",
            "$inlinecount": "allpages",
        },
    )
    document = response.json()["d"]
    assert document["__count"] == "5"
    keys = [(r["DistributionChannel"], r["Customer"]) for r in document["results"]]
    assert keys == [("10", "17100004"), ("10", "17100003"), ("10", "17100002")]
    assert "__next" not in document
    ascending = results(s4, "A_CustomerSalesArea", **{"$orderby": "SalesDistrict asc"})
    assert [r["SalesDistrict"] for r in ascending] == sorted(r["SalesDistrict"] for r in ascending)
    counted = s4.get(
        "A_CustomerSalesArea",
        **{"$inlinecount": "allpages", "$filter": "Currency eq 'USD'", "$top": "0"},
    )
    assert counted.json()["d"] == {"__count": "4", "results": []}


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"$top": "-1"}, "$top"),
        ({"$skip": "x"}, "$skip"),
        ({"$inlinecount": "some"}, "$inlinecount"),
        ({"$orderby": "Customer sideways"}, "$orderby"),
        ({"$orderby": "Nope"}, "Nope"),
        ({"$search": "x"}, "$search"),
    ],
)
def test_bad_query_options_are_400(s4: S4, params: dict[str, str], fragment: str) -> None:
    sap_error(s4.get("A_CustomerSalesArea", **params), 400, contains=fragment)


def test_collection_options_on_a_single_entity_are_refused(s4: S4) -> None:
    response = s4.get("A_BusinessPartner('17100001')", **{"$top": "1"})
    sap_error(response, 400, code="005056A509B11EE1B9A8FEC11C23378E", contains="are not allowed")


def test_format_json_and_unsupported_formats(s4: S4) -> None:
    response = s4.http.get(
        s4.root + "A_Customer('17100001')",
        params={"$format": "json"},
        headers={"Accept": "application/atom+xml"},
    )
    assert response.status_code == 200
    assert response.json()["d"]["Customer"] == "17100001"
    sap_error(s4.get("A_Customer('17100001')", **{"$format": "atom"}), 415, contains="atom")


def test_unauthenticated_read_is_401(s4: S4) -> None:
    anonymous = S4(s4.base, auth=None)
    try:
        response = anonymous.get("A_BusinessPartner")
        assert response.status_code == 401
        realm = 'Basic realm="SAP NetWeaver Application Server [S4H/100]"'
        assert response.headers["www-authenticate"] == realm
        wrong = S4(s4.base, auth=("S4_COMM_USER", "wrong"))
        assert wrong.get("$metadata").status_code == 401
        wrong.close()
    finally:
        anonymous.close()

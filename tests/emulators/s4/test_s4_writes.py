"""Writes that S/4 accepts: deep inserts, numbering, PATCH/MERGE/PUT, DELETE where allowed."""

from __future__ import annotations

from typing import Any

from emulators.s4.s4_support import S4, sales_area_path


def sales_area_body(customer: str, taxes: Any) -> dict[str, Any]:
    return {
        "Customer": customer,
        "SalesOrganization": "1710",
        "DistributionChannel": "10",
        "Division": "00",
        "Currency": "USD",
        "CustomerAccountAssignmentGroup": "01",
        "CustomerGroup": "01",
        "CustomerPaymentTerms": "0001",
        "IncotermsClassification": "EXW",
        "IncotermsLocation2": "",
        "IncotermsLocation1": "Palo Alto",
        "DeletionIndicator": False,
        "OrderIsBlockedForCustomer": "",
        "SalesGroup": "170",
        "SalesOffice": "1710",
        "SalesDistrict": "US0003",
        "to_SalesAreaTax": taxes,
    }


TAX = {
    "Customer": "17100001",
    "SalesOrganization": "1710",
    "DistributionChannel": "10",
    "Division": "00",
    "DepartureCountry": "US",
    "CustomerTaxCategory": "UTXJ",
    "CustomerTaxClassification": "1",
}


def test_deep_insert_of_a_sales_area_with_tax(s4: S4) -> None:
    response = s4.send(
        "POST", "A_CustomerSalesArea", sales_area_body("17100001", {"results": [TAX]})
    )
    assert response.status_code == 201, response.text
    created = response.json()["d"]
    uri = s4.root + sales_area_path("17100001")
    assert response.headers["location"] == uri
    assert created["__metadata"]["uri"] == uri
    assert created["__metadata"]["type"] == "API_BUSINESS_PARTNER.A_CustomerSalesAreaType"
    assert created["__metadata"]["etag"] == response.headers["etag"]
    assert created["IncotermsLocation2"] == ""
    assert created["to_SalesAreaTax"]["results"][0]["CustomerTaxCategory"] == "UTXJ"
    assert "__deferred" in created["to_PartnerFunction"]
    read_back = s4.get(sales_area_path("17100001"), **{"$expand": "to_SalesAreaTax"}).json()["d"]
    assert read_back["SalesDistrict"] == "US0003"
    assert len(read_back["to_SalesAreaTax"]["results"]) == 1
    tax_key = sales_area_path("17100001").replace("A_CustomerSalesArea(", "A_CustomerSalesAreaTax(")
    tax_key = tax_key[:-1] + ",DepartureCountry='US',CustomerTaxCategory='UTXJ')"
    assert s4.get(tax_key).json()["d"]["CustomerTaxClassification"] == "1"


def test_deep_insert_accepts_a_plain_list_and_inherits_parent_keys(s4: S4) -> None:
    tax = {
        "DepartureCountry": "US",
        "CustomerTaxCategory": "UTXJ",
        "CustomerTaxClassification": "0",
    }
    response = s4.send("POST", "A_CustomerSalesArea", sales_area_body("17100001", [tax]))
    assert response.status_code == 201, response.text
    row = response.json()["d"]["to_SalesAreaTax"]["results"][0]
    assert (row["Customer"], row["SalesOrganization"], row["Division"]) == (
        "17100001",
        "1710",
        "00",
    )


def test_create_through_navigation(s4: S4) -> None:
    body = {"SalesOrganization": "1710", "DistributionChannel": "10", "Division": "00"}
    response = s4.send("POST", "A_Customer('17100001')/to_CustomerSalesArea", body)
    assert response.status_code == 201, response.text
    assert response.json()["d"]["Customer"] == "17100001"


def test_business_partner_deep_insert_numbers_and_customer_role(s4: S4) -> None:
    body = {
        "BusinessPartnerCategory": "2",
        "BusinessPartnerGrouping": "BP02",
        "OrganizationBPName1": "Neukunde",
        "OrganizationBPName2": "GmbH",
        "to_BusinessPartnerAddress": {
            "results": [{"AddressID": "9001", "Country": "DE", "CityName": "Berlin"}]
        },
        "to_Customer": {
            "CustomerAccountGroup": "CUST",
            "to_CustomerSalesArea": {
                "results": [
                    {
                        "SalesOrganization": "1010",
                        "DistributionChannel": "10",
                        "Division": "00",
                        "Currency": "EUR",
                        "to_SalesAreaTax": [
                            {"DepartureCountry": "DE", "CustomerTaxCategory": "TTX1"}
                        ],
                    }
                ]
            },
        },
    }
    response = s4.send("POST", "A_BusinessPartner", body)
    assert response.status_code == 201, response.text
    created = response.json()["d"]
    number = created["BusinessPartner"]
    assert number == "1000000"
    assert response.headers["location"] == s4.root + "A_BusinessPartner('1000000')"
    assert created["Customer"] == number
    assert created["BusinessPartnerFullName"] == "Neukunde GmbH"
    assert created["CreatedByUser"] == "S4_COMM_USER"
    assert len(created["BusinessPartnerUUID"]) == 36
    customer = created["to_Customer"]
    assert customer["Customer"] == number
    area = customer["to_CustomerSalesArea"]["results"][0]
    assert area["Customer"] == number
    assert area["to_SalesAreaTax"]["results"][0]["Customer"] == number
    assert created["to_BusinessPartnerAddress"]["results"][0]["BusinessPartner"] == number
    stored = s4.get("A_Customer('1000000')").json()["d"]
    assert stored["CustomerName"] == "Neukunde GmbH"
    second = s4.send("POST", "A_BusinessPartner", {"BusinessPartnerCategory": "1", "LastName": "X"})
    assert second.json()["d"]["BusinessPartner"] == "1000001"
    assert second.json()["d"]["Customer"] is None


def test_business_partner_with_external_number(s4: S4) -> None:
    body = {"BusinessPartner": "EXT-1", "BusinessPartnerCategory": "2", "to_Customer": {}}
    response = s4.send("POST", "A_BusinessPartner", body)
    assert response.status_code == 201, response.text
    assert response.json()["d"]["to_Customer"]["Customer"] == "EXT-1"


def test_patch_changes_values_and_etag(s4: S4) -> None:
    path = sales_area_path("17100002")
    before = s4.get(path)
    body = {
        "Customer": "17100002",
        "SalesOrganization": "1710",
        "DistributionChannel": "10",
        "Division": "00",
        "Currency": "EUR",
        "DeletionIndicator": True,
    }
    response = s4.send("PATCH", path, body)
    assert response.status_code == 204, response.text
    assert response.content == b""
    after = s4.get(path)
    assert after.json()["d"]["Currency"] == "EUR"
    assert after.json()["d"]["DeletionIndicator"] is True
    assert after.json()["d"]["SalesDistrict"] == "US0003"
    assert after.headers["etag"] != before.headers["etag"]
    assert response.headers["etag"] == after.headers["etag"]


def test_merge_and_post_with_x_http_method(s4: S4) -> None:
    path = sales_area_path("17100002")
    assert s4.send("MERGE", path, {"SalesGroup": "171"}).status_code == 204
    assert s4.get(path).json()["d"]["SalesGroup"] == "171"
    tunnelled = s4.send("POST", path, {"SalesGroup": "172"}, headers={"X-HTTP-Method": "MERGE"})
    assert tunnelled.status_code == 204, tunnelled.text
    assert s4.get(path).json()["d"]["SalesGroup"] == "172"


def test_put_replaces_the_updatable_properties(s4: S4) -> None:
    path = sales_area_path("17100002")
    assert s4.send("PUT", path, {"Currency": "CAD"}).status_code == 204
    entity = s4.get(path).json()["d"]
    assert (entity["Currency"], entity["SalesDistrict"], entity["Customer"]) == (
        "CAD",
        None,
        "17100002",
    )


def test_patch_on_a_business_partner_sets_change_audit(s4: S4) -> None:
    response = s4.send("PATCH", "A_BusinessPartner('17100001')", {"OrganizationBPName2": "Inc."})
    assert response.status_code == 204
    partner = s4.get("A_BusinessPartner('17100001')").json()["d"]
    assert partner["BusinessPartnerFullName"] == "Inlandskunde US 1 Inc."
    assert partner["LastChangedByUser"] == "S4_COMM_USER"
    assert partner["LastChangeDate"].startswith("/Date(")


def test_delete_where_the_edmx_allows_it(s4: S4) -> None:
    path = "A_BusinessPartnerAddress(BusinessPartner='10100001',AddressID='23005')"
    response = s4.send("DELETE", path)
    assert response.status_code == 204, response.text
    assert s4.get(path).status_code == 404
    assert (
        s4.get("A_AddressHomePageURL", **{"$filter": "AddressID eq '23005'"}).json()["d"]["results"]
        == []
    )

"""Creating a customer in one deep insert: address and communication numbers, roles, visibility."""

from __future__ import annotations

from typing import Any

from emulators.s4.s4_support import S4, sales_area_path, sap_error

NEW_CUSTOMER: dict[str, Any] = {
    "BusinessPartnerCategory": "2",
    "BusinessPartnerGrouping": "BP02",
    "OrganizationBPName1": "Neukunde Pumpen AG",
    "to_BusinessPartnerRole": {
        "results": [{"BusinessPartnerRole": "FLCU00"}, {"BusinessPartnerRole": "FLCU01"}]
    },
    "to_BusinessPartnerAddress": {
        "results": [
            {
                "Country": "DE",
                "CityName": "Essen",
                "to_EmailAddress": {
                    "results": [
                        {"IsDefaultEmailAddress": True, "EmailAddress": "a@neukunde.example"},
                        {"EmailAddress": "b@neukunde.example"},
                    ]
                },
                "to_PhoneNumber": {"results": [{"OrdinalNumber": "1", "PhoneNumber": "+49 201"}]},
                "to_URLAddress": {
                    "results": [
                        {"IsDefaultURLAddress": True, "WebsiteURL": "https://neukunde.example"}
                    ]
                },
            }
        ]
    },
    "to_Customer": {
        "to_CustomerSalesArea": {
            "results": [
                {
                    "SalesOrganization": "1010",
                    "DistributionChannel": "10",
                    "Division": "00",
                    "Currency": "EUR",
                    "to_SalesAreaTax": {
                        "results": [{"DepartureCountry": "DE", "CustomerTaxCategory": "TTX1"}]
                    },
                }
            ]
        }
    },
}


def test_numbers_for_partner_address_and_communication(s4: S4) -> None:
    response = s4.send("POST", "A_BusinessPartner", NEW_CUSTOMER)
    assert response.status_code == 201, response.text
    created = response.json()["d"]
    assert (created["BusinessPartner"], created["Customer"]) == ("1000000", "1000000")
    (address,) = created["to_BusinessPartnerAddress"]["results"]
    assert address["AddressID"] == "23006"  # the seed's addresses end at 23005
    emails = address["to_EmailAddress"]["results"]
    assert [(e["AddressID"], e["Person"], e["OrdinalNumber"]) for e in emails] == [
        ("23006", "", "1"),
        ("23006", "", "2"),
    ]
    assert address["to_PhoneNumber"]["results"][0]["OrdinalNumber"] == "1"
    url = address["to_URLAddress"]["results"][0]
    assert url["ValidityStartDate"] == "/Date(-62135596800000)/"
    key = "AddressID='23006',Person='',OrdinalNumber='2'"
    assert s4.get(f"A_AddressEmailAddress({key})").json()["d"]["EmailAddress"] == (
        "b@neukunde.example"
    )
    second = s4.send("POST", "A_BusinessPartner", NEW_CUSTOMER).json()["d"]
    assert second["BusinessPartner"] == "1000001"
    assert second["to_BusinessPartnerAddress"]["results"][0]["AddressID"] == "23007"


def test_the_created_customer_is_visible_everywhere(s4: S4) -> None:
    assert s4.send("POST", "A_BusinessPartner", NEW_CUSTOMER).status_code == 201
    roles = s4.get("A_BusinessPartner('1000000')/to_BusinessPartnerRole").json()["d"]["results"]
    assert [r["BusinessPartnerRole"] for r in roles] == ["FLCU00", "FLCU01"]
    customer = s4.get("A_Customer('1000000')").json()["d"]
    assert customer["CustomerName"] == "Neukunde Pumpen AG"
    found = s4.get(
        "A_CustomerSalesArea",
        **{"$filter": "Customer eq '1000000' and SalesOrganization eq '1010'"},
    ).json()["d"]["results"]
    assert [(a["Customer"], a["Currency"]) for a in found] == [("1000000", "EUR")]
    tax = s4.get(sales_area_path("1000000", "1010") + "/to_SalesAreaTax").json()["d"]["results"]
    assert [(t["DepartureCountry"], t["CustomerTaxCategory"]) for t in tax] == [("DE", "TTX1")]


def test_a_rejected_deep_insert_leaves_nothing(s4: S4) -> None:
    before = s4.admin("GET", "health").json()
    broken = {
        **NEW_CUSTOMER,
        "to_Customer": {
            "to_CustomerSalesArea": {
                "results": [{"SalesOrganization": "1010", "DistributionChannel": "10"}]
            }
        },
    }
    error = sap_error(
        s4.send("POST", "A_BusinessPartner", broken), 400, code="/IWBEP/CM_MGW_RT/009"
    )
    assert error["innererror"]["errordetails"][0]["target"] == (
        "to_Customer[0]/to_CustomerSalesArea[0]/Division"
    )
    assert s4.admin("GET", "health").json() == before
    assert s4.get("A_BusinessPartner('1000000')").status_code == 404

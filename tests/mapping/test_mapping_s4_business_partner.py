"""A new customer → the ``A_BusinessPartner`` deep insert, checked against SAP's EDMX."""

from __future__ import annotations

from typing import Any

import pytest

from d365sap.config_create import S4CreateSettings
from d365sap.emulators.s4.edm import EntitySet, Model, load_model
from d365sap.errors import ValidationError
from d365sap.mapping.dataverse_customer import CustomerRows, new_customer
from d365sap.mapping.s4_business_partner import (
    FIRST_VALIDITY,
    business_partner_payload,
    external_reference,
)
from d365sap.model.new_customer import NewCustomer
from support.customer_rows import ORG_ECC_1000, ORG_S4_1010, SeedRows


@pytest.fixture(scope="module")
def seed() -> SeedRows:
    return SeedRows()


@pytest.fixture(scope="module")
def customer(seed: SeedRows) -> NewCustomer:
    return new_customer(seed.new_customer_rows(ORG_S4_1010))


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model()


def test_the_deep_insert(customer: NewCustomer) -> None:
    body = business_partner_payload(customer, S4CreateSettings())
    reference = external_reference(customer.source.account_id)
    assert body == {
        "BusinessPartnerCategory": "2",
        "BusinessPartnerGrouping": "BP02",
        "OrganizationBPName1": "Neukunde Pumpen AG",
        "OrganizationBPName2": "Werk Essen",
        "SearchTerm1": "NEUKUNDE",
        "Language": "DE",
        "CorrespondenceLanguage": "DE",
        "BusinessPartnerIDByExtSystem": reference,
        "to_BusinessPartnerRole": {
            "results": [{"BusinessPartnerRole": "FLCU00"}, {"BusinessPartnerRole": "FLCU01"}]
        },
        "to_BusinessPartnerAddress": {
            "results": [
                {
                    "Country": "DE",
                    "Region": "NW",
                    "CityName": "Essen",
                    "PostalCode": "45138",
                    "StreetName": "Ruhrallee 1",
                    "StreetSuffixName": "Halle 3",
                    "Language": "DE",
                    "to_EmailAddress": {
                        "results": [
                            {
                                "OrdinalNumber": "1",
                                "IsDefaultEmailAddress": True,
                                "EmailAddress": "einkauf@neukunde.example",
                            }
                        ]
                    },
                    "to_PhoneNumber": {
                        "results": [
                            {
                                "OrdinalNumber": "1",
                                "DestinationLocationCountry": "DE",
                                "IsDefaultPhoneNumber": True,
                                "PhoneNumber": "+49 201 555-0",
                            }
                        ]
                    },
                    "to_FaxNumber": {
                        "results": [
                            {
                                "OrdinalNumber": "1",
                                "FaxCountry": "DE",
                                "IsDefaultFaxNumber": True,
                                "FaxNumber": "+49 201 555-99",
                            }
                        ]
                    },
                    "to_URLAddress": {
                        "results": [
                            {
                                "OrdinalNumber": "1",
                                "ValidityStartDate": FIRST_VALIDITY,
                                "IsDefaultURLAddress": True,
                                "WebsiteURL": "https://www.neukunde.example",
                            }
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
                        "CustomerAccountAssignmentGroup": "01",
                        "CustomerGroup": "01",
                        "CustomerPaymentTerms": "0001",
                        "CustomerPriceGroup": "01",
                        "IncotermsClassification": "EXW",
                        "IncotermsLocation1": "Walldorf",
                        "SalesGroup": "110",
                        "SalesOffice": "1010",
                        "ShippingCondition": "01",
                        "SalesDistrict": "DE0002",
                        "ExchangeRateType": "M",
                        "to_SalesAreaTax": {
                            "results": [
                                {
                                    "DepartureCountry": "DE",
                                    "CustomerTaxCategory": "TTX1",
                                    "CustomerTaxClassification": "1",
                                }
                            ]
                        },
                    }
                ]
            }
        },
    }


def _walk(model: Model, entity_set: EntitySet, body: dict[str, Any], path: str) -> list[str]:
    """Every property and navigation of ``body`` that the EDMX does not allow in a create."""
    problems: list[str] = []
    for name, value in body.items():
        if isinstance(value, dict) and "results" in value:
            nav = entity_set.navigations.get(name)
            if nav is None:
                problems.append(f"{path}{name}: no navigation of {entity_set.type_name}")
                continue
            target = model.entity_sets[nav.target_set]
            for index, child in enumerate(value["results"]):
                problems += _walk(model, target, child, f"{path}{name}[{index}]/")
        elif isinstance(value, dict):
            nav = entity_set.navigations.get(name)
            if nav is None or nav.to_many:
                problems.append(f"{path}{name}: no to-one navigation of {entity_set.type_name}")
                continue
            problems += _walk(model, model.entity_sets[nav.target_set], value, f"{path}{name}/")
        else:
            prop = entity_set.properties.get(name)
            if prop is None or not prop.creatable:
                problems.append(f"{path}{name}: not a creatable property of {entity_set.type_name}")
    return problems


def test_every_property_and_navigation_is_in_the_edmx(customer: NewCustomer, model: Model) -> None:
    settings = S4CreateSettings(customer_account_group="CUST")
    body = business_partner_payload(customer, settings)
    assert body["to_Customer"]["CustomerAccountGroup"] == "CUST"  # type: ignore[index]
    assert _walk(model, model.entity_sets["A_BusinessPartner"], body, "") == []


def test_the_walk_finds_what_the_edmx_lacks(model: Model) -> None:
    partner = model.entity_sets["A_BusinessPartner"]
    bad = {"Customer": "1", "to_Nothing": {"results": [{}]}, "to_Customer": {"Nope": "x"}}
    assert _walk(model, partner, bad, "") == [
        "Customer: not a creatable property of A_BusinessPartnerType",
        "to_Nothing: no navigation of A_BusinessPartnerType",
        "to_Customer/Nope: not a creatable property of A_CustomerType",
    ]


def test_settings_decide_category_grouping_roles_and_language(customer: NewCustomer) -> None:
    settings = S4CreateSettings(
        business_partner_category="1",
        business_partner_grouping="BP03",
        roles=["FLCU01"],
        default_language="FR",
    )
    person = customer.model_copy(
        update={"general": customer.general.model_copy(update={"language": None})}
    )
    body = business_partner_payload(person, settings)
    assert (body["LastName"], body["FirstName"]) == ("Neukunde Pumpen AG", "Werk Essen")
    assert "OrganizationBPName1" not in body
    assert body["BusinessPartnerGrouping"] == "BP03"
    assert body["to_BusinessPartnerRole"] == {"results": [{"BusinessPartnerRole": "FLCU01"}]}
    assert (body["Language"], body["CorrespondenceLanguage"]) == ("FR", "FR")


def test_values_over_the_edmx_length_name_property_and_column(customer: NewCustomer) -> None:
    long_name = customer.general.model_copy(update={"name1": "N" * 41})
    with pytest.raises(ValidationError) as caught:
        business_partner_payload(
            customer.model_copy(update={"general": long_name}), S4CreateSettings()
        )
    assert caught.value.field == (
        "A_BusinessPartner.OrganizationBPName1 (sap_erpaccount.sap_name1 / account.name)"
    )
    assert "41 characters, at most 40" in caught.value.reason
    area = customer.sales_areas[0].model_copy(update={"sales_office": "10101"})
    with pytest.raises(ValidationError) as caught:
        business_partner_payload(
            customer.model_copy(update={"sales_areas": (area,)}), S4CreateSettings()
        )
    assert caught.value.field == (
        "A_CustomerSalesArea.SalesOffice (sap_erpaccountdetail.sap_salesoffice)"
    )


def test_tax_row_only_when_complete_unless_always(customer: NewCustomer) -> None:
    defaults = customer.sales_areas[0].create_defaults
    no_tax = defaults.model_copy(
        update={"tax": defaults.tax.model_copy(update={"tax_category": None})}
    )
    area = customer.sales_areas[0].model_copy(update={"create_defaults": no_tax})
    untaxed = customer.model_copy(update={"sales_areas": (area,)})
    body = business_partner_payload(untaxed, S4CreateSettings())
    sales_area = body["to_Customer"]["to_CustomerSalesArea"]["results"][0]  # type: ignore[index]
    assert "to_SalesAreaTax" not in sales_area
    with pytest.raises(ValidationError) as caught:
        business_partner_payload(untaxed, S4CreateSettings(), send_tax_row="always")
    assert caught.value.field == "sap_linkederporg.sap_create_taxcategory"


def test_external_reference() -> None:
    first = external_reference("1B2C3D4E-5F6A-4B7C-8D9E-0F1A2B3C4D5E")
    assert first == external_reference(" 1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5e ")
    assert len(first) == 20
    assert set(first) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")  # base32
    assert first != external_reference("1b2c3d4e-5f6a-4b7c-8d9e-0f1a2b3c4d5f")


def test_only_s4_customers(seed: SeedRows) -> None:
    rows: CustomerRows = seed.new_customer_rows(ORG_ECC_1000)
    with pytest.raises(ValueError, match="not ECC"):
        business_partner_payload(new_customer(rows), S4CreateSettings())


def test_settings_refuse_bad_roles() -> None:
    with pytest.raises(ValueError, match="not a BP role code"):
        S4CreateSettings(roles=["FLCU0000"])
    with pytest.raises(ValueError, match="listed once"):
        S4CreateSettings(roles=["FLCU00", "FLCU00"])

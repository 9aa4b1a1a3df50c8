"""A new customer → the DEBMAS07 IDoc that creates it, checked against SAP's XSD."""

from __future__ import annotations

import pytest
from lxml import etree

from d365sap.config import IdocControlSettings
from d365sap.config_create import CustomerNumberRange, ErpCreateSettings
from d365sap.errors import ValidationError
from d365sap.mapping.dataverse_customer import new_customer
from d365sap.mapping.debmas_create import create_idoc, search_term
from d365sap.mapping.idoc_schema import validate_debmas
from d365sap.model.new_customer import NewCustomer
from support.customer_rows import ORG_ECC_1000, ORG_S4_1010, SeedRows

CONTROL = IdocControlSettings()
EXTERNAL = ErpCreateSettings(
    account_group="ZEXT",
    number_range=CustomerNumberRange.model_validate({"from": "900000", "to": "999999"}),
)


@pytest.fixture(scope="module")
def seed() -> SeedRows:
    return SeedRows()


@pytest.fixture(scope="module")
def customer(seed: SeedRows) -> NewCustomer:
    return new_customer(seed.new_customer_rows(ORG_ECC_1000))


@pytest.fixture(scope="module")
def with_defaults(seed: SeedRows) -> NewCustomer:
    """A customer whose organisation proposes create defaults (the S/4 1010 one), sent to ECC."""
    return new_customer(seed.new_customer_rows(ORG_S4_1010)).model_copy(
        update={"system_type": "ECC"}
    )


def fields(document: bytes, segment: str) -> dict[str, str]:
    found = etree.fromstring(document).find(f".//{segment}")
    assert found is not None, segment
    return {child.tag: child.text or "" for child in found if len(child) == 0}


def test_internal_numbering_leaves_kunnr_out(customer: NewCustomer) -> None:
    idoc = create_idoc(customer, CONTROL, ErpCreateSettings())
    assert validate_debmas(idoc) == []
    assert fields(idoc, "EDI_DC40")["MESTYP"] == "ZZ_DEBMAS_WILO360"
    assert fields(idoc, "E1KNA1M") == {
        "MSGFN": "005",
        "KTOKD": "0001",
        "LAND1": "DE",
        "NAME1": "Neukunde Pumpen AG",
        "NAME2": "Werk Essen",
        "ORT01": "Essen",
        "PSTLZ": "45138",
        "REGIO": "NW",
        "SORTL": "NEUKUNDE",
        "STRAS": "Ruhrallee 1",
        "TELF1": "+49 201 555-0",
        "TELFX": "+49 201 555-99",
        "SPRAS_ISO": "DE",
    }
    assert fields(idoc, "Z1ZAKNA1") == {"ZZ_ID": customer.source.erp_account_id}
    assert fields(idoc, "E1KNVVM") == {
        "MSGFN": "005",
        "VKORG": "1000",
        "VTWEG": "10",
        "SPART": "00",
        "KDGRP": "01",
        "BZIRK": "DE0002",
        "WAERS": "EUR",
        "VKGRP": "110",
        "VKBUR": "1010",
    }
    assert b"E1KNVIM" not in idoc  # the ECC organisation proposes no tax classification
    assert b">/<" not in idoc  # nothing to keep in a new customer: no ALE no-data signs


def test_create_defaults_and_tax(with_defaults: NewCustomer) -> None:
    idoc = create_idoc(with_defaults, CONTROL, ErpCreateSettings())
    assert validate_debmas(idoc) == []
    sales = fields(idoc, "E1KNVVM")
    assert {k: sales[k] for k in ("KONDA", "INCO1", "INCO2", "INCO2_L", "VSBED", "KTGRD")} == {
        "KONDA": "01",
        "INCO1": "EXW",
        "INCO2": "Walldorf",
        "INCO2_L": "Walldorf",
        "VSBED": "01",
        "KTGRD": "01",
    }
    assert (sales["ZTERM"], sales["KURST"]) == ("0001", "M")
    assert fields(idoc, "E1KNVIM") == {"MSGFN": "005", "ALAND": "DE", "TATYP": "TTX1", "TAXKD": "1"}


def test_a_long_incoterms_location_goes_to_inco2_l_only(with_defaults: NewCustomer) -> None:
    area = with_defaults.sales_areas[0]
    location = "Industriepark Walldorf, Tor 4, Anlieferung Halle 12"
    defaults = area.create_defaults.model_copy(update={"incoterms_location1": location})
    long_location = with_defaults.model_copy(
        update={"sales_areas": (area.model_copy(update={"create_defaults": defaults}),)}
    )
    sales = fields(create_idoc(long_location, CONTROL, ErpCreateSettings()), "E1KNVVM")
    assert "INCO2" not in sales
    assert sales["INCO2_L"] == location


def test_external_numbers(customer: NewCustomer) -> None:
    idoc = create_idoc(customer, CONTROL, EXTERNAL, kunnr="900001")
    assert validate_debmas(idoc) == []
    general = fields(idoc, "E1KNA1M")
    assert (general["KUNNR"], general["KTOKD"]) == ("900001", "ZEXT")
    for kunnr, problem in (
        (None, "a number from [erp.create] number_range is required"),
        ("800000", "800000 is outside [erp.create] number_range 900000-999999"),
        ("90000A", "is outside"),
    ):
        with pytest.raises(ValidationError) as caught:
            create_idoc(customer, CONTROL, EXTERNAL, kunnr=kunnr)
        assert caught.value.field == "E1KNA1M-KUNNR"
        assert problem in caught.value.reason
    with pytest.raises(ValidationError, match="SAP numbers new customers itself"):
        create_idoc(customer, CONTROL, ErpCreateSettings(), kunnr="900001")


def test_number_range() -> None:
    numbers = CustomerNumberRange.model_validate({"from": "0000900000", "to": "900002"})
    assert [numbers.number(n) for n in range(3)] == ["900000", "900001", "900002"]
    with pytest.raises(ValueError, match="exhausted"):
        numbers.number(3)
    assert numbers.contains("0000900001") and not numbers.contains("900003")
    with pytest.raises(ValueError, match="from must not be greater"):
        CustomerNumberRange.model_validate({"from": "2", "to": "1"})


def test_search_term_from_the_name(customer: NewCustomer) -> None:
    assert search_term("Müller & Söhne GmbH") == "MÜLLERSÖHN"
    unsearchable = customer.model_copy(
        update={"general": customer.general.model_copy(update={"search_term": None})}
    )
    assert fields(create_idoc(unsearchable, CONTROL, ErpCreateSettings()), "E1KNA1M")["SORTL"] == (
        "NEUKUNDEPU"
    )


def test_lengths_name_idoc_field_and_column(customer: NewCustomer) -> None:
    long_name = customer.model_copy(
        update={"general": customer.general.model_copy(update={"name1": "N" * 36})}
    )
    with pytest.raises(ValidationError) as caught:
        create_idoc(long_name, CONTROL, ErpCreateSettings())
    assert caught.value.field == "E1KNA1M-NAME1 (sap_erpaccount.sap_name1 / account.name)"
    area = customer.sales_areas[0].model_copy(update={"currency": "EURO12"})
    with pytest.raises(ValidationError) as caught:
        create_idoc(
            customer.model_copy(update={"sales_areas": (area,)}), CONTROL, ErpCreateSettings()
        )
    assert caught.value.field == "E1KNVVM-WAERS (sap_erpaccountdetail.sap_currency)"


def test_only_ecc_customers(seed: SeedRows) -> None:
    s4_customer = new_customer(seed.new_customer_rows(ORG_S4_1010))
    with pytest.raises(ValueError, match="not S4HC"):
        create_idoc(s4_customer, CONTROL, ErpCreateSettings())

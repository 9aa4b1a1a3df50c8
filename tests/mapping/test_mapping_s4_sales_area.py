"""CRM erpaccountdetails → S/4 A_CustomerSalesArea create/update bodies."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
from lxml import etree

from d365sap.config import S4Settings
from d365sap.errors import ValidationError
from d365sap.mapping.crm_xml import ErpAccountDetailsMessage, parse_customer_message
from d365sap.mapping.s4_sales_area import (
    S4MappingOptions,
    create_payload,
    sales_area_key,
    update_payload,
)
from d365sap.model.customer import SalesAreaKey

Edit = Callable[[bytes, Mapping[str, str | None]], bytes]
LITERAL = S4MappingOptions(omit_blank_properties=False)
DEFAULT = S4MappingOptions()


def _details(body: bytes) -> ErpAccountDetailsMessage:
    message = parse_customer_message(body)
    assert isinstance(message, ErpAccountDetailsMessage)
    return message


def _cpi_xml_as_json(xml: bytes) -> dict[str, object]:
    """The package's CPI XML rendering of A_CustomerSalesArea as the OData JSON body."""
    entity = etree.fromstring(xml).find("A_CustomerSalesAreaType")
    assert entity is not None
    body: dict[str, object] = {}
    for child in entity:
        tag = str(child.tag)
        if tag == "to_SalesAreaTax":
            rows = [{str(f.tag): f.text or "" for f in row} for row in child]
            body[tag] = {"results": rows}
        elif tag == "DeletionIndicator":
            body[tag] = {"true": True, "false": False}[child.text or ""]
        else:
            body[tag] = child.text or ""
    return body


def test_create_equals_package_output_without_additional_customer_group(
    s4_xml: bytes, example: Callable[[str], bytes]
) -> None:
    expected = _cpi_xml_as_json(example("out_cpi_xml_A_CustomerSalesArea_POST.xml"))
    assert expected.pop("AdditionalCustomerGroup1") == ""
    payload = create_payload(_details(s4_xml), LITERAL)
    assert payload == expected
    assert list(payload) == list(expected)


def test_update_equals_package_output(s4_xml: bytes, example: Callable[[str], bytes]) -> None:
    expected = _cpi_xml_as_json(example("out_cpi_xml_A_CustomerSalesArea_PATCH.xml"))
    payload = update_payload(_details(s4_xml), LITERAL)
    assert payload == expected
    assert list(payload) == list(expected)


def test_update_is_identical_with_default_options(
    s4_xml: bytes, example: Callable[[str], bytes]
) -> None:
    expected = _cpi_xml_as_json(example("out_cpi_xml_A_CustomerSalesArea_PATCH.xml"))
    assert update_payload(_details(s4_xml), DEFAULT) == expected


def test_create_omits_blank_optional_properties_by_default(s4_xml: bytes) -> None:
    payload = create_payload(_details(s4_xml), DEFAULT)
    assert "IncotermsLocation2" not in payload
    assert "OrderIsBlockedForCustomer" not in payload
    assert "AdditionalCustomerGroup1" not in payload
    assert payload["IncotermsLocation1"] == "Palo Alto"
    assert payload["Customer"] == "17100001"


def test_whitespace_only_values_count_as_blank(s4_xml: bytes, edit: Edit) -> None:
    body = edit(s4_xml, {"erpaccountdetail/salesgroup": "   "})
    assert "SalesGroup" not in update_payload(_details(body), DEFAULT)
    assert update_payload(_details(body), LITERAL)["SalesGroup"] == "   "


def test_absent_properties_are_never_sent(s4_xml: bytes, edit: Edit) -> None:
    body = edit(
        s4_xml, {"erpaccountdetail/currency": None, "linkederporg/sap_create_incoterms": None}
    )
    created = create_payload(_details(body), LITERAL)
    assert "Currency" not in created
    assert "IncotermsClassification" not in created
    assert "Currency" not in update_payload(_details(body), LITERAL)


def test_update_never_carries_create_defaults_or_tax(s4_xml: bytes) -> None:
    payload = update_payload(_details(s4_xml), LITERAL)
    assert set(payload) == {
        "Customer",
        "SalesOrganization",
        "DistributionChannel",
        "Division",
        "Currency",
        "CustomerGroup",
        "DeletionIndicator",
        "SalesGroup",
        "SalesOffice",
        "SalesDistrict",
    }


@pytest.mark.parametrize(
    ("flag", "expected"),
    [("1", True), ("true", True), ("0", False), ("false", False), ("", False)],
)
def test_deletion_indicator(s4_xml: bytes, edit: Edit, flag: str, expected: bool) -> None:
    message = _details(edit(s4_xml, {"erpaccountdetail/deletionflag": flag}))
    assert create_payload(message, DEFAULT)["DeletionIndicator"] is expected
    assert update_payload(message, DEFAULT)["DeletionIndicator"] is expected


def test_absent_deletion_flag_is_omitted(s4_xml: bytes, edit: Edit) -> None:
    message = _details(edit(s4_xml, {"erpaccountdetail/deletionflag": None}))
    assert "DeletionIndicator" not in create_payload(message, LITERAL)
    assert "DeletionIndicator" not in update_payload(message, LITERAL)


def test_unknown_deletion_flag_is_rejected(s4_xml: bytes, edit: Edit) -> None:
    message = _details(edit(s4_xml, {"erpaccountdetail/deletionflag": "N"}))
    for build in (create_payload, update_payload):
        with pytest.raises(ValidationError) as caught:
            build(message, DEFAULT)
        assert caught.value.field == "erpaccountdetails/erpaccountdetail/deletionflag"


def test_sales_area_key(s4_xml: bytes) -> None:
    key = sales_area_key(_details(s4_xml), DEFAULT)
    assert key == SalesAreaKey(
        customer="17100001", sales_organization="1710", distribution_channel="10", division="00"
    )
    assert str(key) == "17100001/1710/10/00"


def test_keys_are_stripped(s4_xml: bytes, edit: Edit) -> None:
    body = edit(
        s4_xml,
        {"erpaccountdetail/number": " 17100001\n", "linkederporg/sap_vkorg": "\t1710 "},
    )
    message = _details(body)
    assert str(sales_area_key(message, DEFAULT)) == "17100001/1710/10/00"
    payload = create_payload(message, DEFAULT)
    assert payload["Customer"] == "17100001"
    assert payload["SalesOrganization"] == "1710"
    assert update_payload(message, DEFAULT)["Customer"] == "17100001"


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("erpaccountdetail/number", "  ", "erpaccountdetails/erpaccountdetail/number"),
        ("erpaccountdetail/number", None, "erpaccountdetails/erpaccountdetail/number"),
        ("linkederporg/sap_vkorg", "", "erpaccountdetails/linkederporg/sap_vkorg"),
        ("linkederporg/sap_vtweg", None, "erpaccountdetails/linkederporg/sap_vtweg"),
        ("linkederporg/sap_spart", " ", "erpaccountdetails/linkederporg/sap_spart"),
    ],
)
def test_blank_or_absent_keys_are_rejected(
    s4_xml: bytes, edit: Edit, path: str, value: str | None, field: str
) -> None:
    message = _details(edit(s4_xml, {path: value}))
    for build in (sales_area_key, create_payload, update_payload):
        with pytest.raises(ValidationError) as caught:
            build(message, DEFAULT)
        assert caught.value.field == field


def test_numeric_customer_number_is_padded(s4_xml: bytes) -> None:
    options = S4MappingOptions(customer_number_padding=10)
    message = _details(s4_xml)
    assert sales_area_key(message, options).customer == "0017100001"
    payload = create_payload(message, options)
    assert payload["Customer"] == "0017100001"
    tax = payload["to_SalesAreaTax"]
    assert isinstance(tax, dict)
    assert tax["results"][0]["Customer"] == "0017100001"
    assert update_payload(message, options)["Customer"] == "0017100001"


def test_alphanumeric_customer_number_is_not_padded(s4_xml: bytes, edit: Edit) -> None:
    message = _details(edit(s4_xml, {"erpaccountdetail/number": "CUST-7"}))
    options = S4MappingOptions(customer_number_padding=10)
    assert sales_area_key(message, options).customer == "CUST-7"


def test_padding_off_keeps_number(s4_xml: bytes, edit: Edit) -> None:
    message = _details(edit(s4_xml, {"erpaccountdetail/number": "0042"}))
    assert sales_area_key(message, DEFAULT).customer == "0042"


def test_over_long_key_names_source_property_and_limit(s4_xml: bytes, edit: Edit) -> None:
    message = _details(edit(s4_xml, {"erpaccountdetail/number": "12345678901"}))
    for build in (sales_area_key, create_payload, update_payload):
        with pytest.raises(ValidationError) as caught:
            build(message, DEFAULT)
        assert caught.value.field == (
            "A_CustomerSalesArea.Customer (erpaccountdetails/erpaccountdetail/number)"
        )
        assert caught.value.reason == "11 characters, at most 10 allowed"


@pytest.mark.parametrize(
    ("path", "value", "prop", "limit"),
    [
        ("erpaccountdetail/currency", "EURO12", "Currency", 5),
        ("erpaccountdetail/customergroup", "123", "CustomerGroup", 2),
        ("erpaccountdetail/salesdistrict", "1234567", "SalesDistrict", 6),
        ("erpaccountdetail/salesoffice", "12345", "SalesOffice", 4),
        ("erpaccountdetail/salesgroup", "1234", "SalesGroup", 3),
    ],
)
def test_over_long_sales_data(
    s4_xml: bytes, edit: Edit, path: str, value: str, prop: str, limit: int
) -> None:
    message = _details(edit(s4_xml, {path: value}))
    for build in (create_payload, update_payload):
        with pytest.raises(ValidationError) as caught:
            build(message, DEFAULT)
        assert caught.value.field == f"A_CustomerSalesArea.{prop} (erpaccountdetails/{path})"
        assert caught.value.reason == f"{len(value)} characters, at most {limit} allowed"


def test_create_defaults_are_checked_on_create_only(s4_xml: bytes, edit: Edit) -> None:
    message = _details(edit(s4_xml, {"linkederporg/sap_create_incoterms": "EXWORKS"}))
    with pytest.raises(ValidationError) as caught:
        create_payload(message, DEFAULT)
    assert caught.value.field == (
        "A_CustomerSalesArea.IncotermsClassification "
        "(erpaccountdetails/linkederporg/sap_create_incoterms)"
    )
    assert "at most 3" in caught.value.reason
    assert "IncotermsClassification" not in update_payload(message, DEFAULT)


def test_tax_row_sent_when_complete(s4_xml: bytes) -> None:
    payload = create_payload(_details(s4_xml), DEFAULT)
    assert payload["to_SalesAreaTax"] == {
        "results": [
            {
                "Customer": "17100001",
                "SalesOrganization": "1710",
                "DistributionChannel": "10",
                "Division": "00",
                "DepartureCountry": "US",
                "CustomerTaxCategory": "UTXJ",
                "CustomerTaxClassification": "1",
            }
        ]
    }


@pytest.mark.parametrize(
    "changes",
    [
        {"linkederporg/sap_create_taxdeparturecountry": ""},
        {"linkederporg/sap_create_taxdeparturecountry": None},
        {"linkederporg/sap_create_taxcategory": "  "},
        {"linkederporg/sap_create_taxcategory": None},
        {
            "linkederporg/sap_create_taxcategory": None,
            "linkederporg/sap_create_taxdeparturecountry": None,
        },
    ],
)
def test_incomplete_tax_row_is_left_out(
    s4_xml: bytes, edit: Edit, changes: Mapping[str, str | None]
) -> None:
    message = _details(edit(s4_xml, changes))
    assert "to_SalesAreaTax" not in create_payload(message, DEFAULT)
    assert "to_SalesAreaTax" not in create_payload(message, LITERAL)


@pytest.mark.parametrize(
    ("missing", "present"),
    [
        ("sap_create_taxdeparturecountry", "sap_create_taxcategory"),
        ("sap_create_taxcategory", "sap_create_taxdeparturecountry"),
    ],
)
def test_tax_row_required_when_always(
    s4_xml: bytes, edit: Edit, missing: str, present: str
) -> None:
    options = S4MappingOptions(send_tax_row="always")
    for value in ("", None):
        message = _details(edit(s4_xml, {f"linkederporg/{missing}": value}))
        with pytest.raises(ValidationError) as caught:
            create_payload(message, options)
        assert caught.value.field == f"erpaccountdetails/linkederporg/{missing}"
    assert "to_SalesAreaTax" in create_payload(_details(s4_xml), options)


def test_tax_row_keys_are_stripped(s4_xml: bytes, edit: Edit) -> None:
    message = _details(edit(s4_xml, {"linkederporg/sap_create_taxdeparturecountry": " US "}))
    row = create_payload(message, DEFAULT)["to_SalesAreaTax"]
    assert isinstance(row, dict)
    assert row["results"][0]["DepartureCountry"] == "US"


def test_blank_tax_classification(s4_xml: bytes, edit: Edit) -> None:
    message = _details(edit(s4_xml, {"linkederporg/sap_create_taxdeterminationcode": ""}))
    default_row = create_payload(message, DEFAULT)["to_SalesAreaTax"]
    literal_row = create_payload(message, LITERAL)["to_SalesAreaTax"]
    assert isinstance(default_row, dict)
    assert isinstance(literal_row, dict)
    assert "CustomerTaxClassification" not in default_row["results"][0]
    assert literal_row["results"][0]["CustomerTaxClassification"] == ""


def test_over_long_tax_value(s4_xml: bytes, edit: Edit) -> None:
    message = _details(edit(s4_xml, {"linkederporg/sap_create_taxdeparturecountry": "USAX"}))
    with pytest.raises(ValidationError) as caught:
        create_payload(message, DEFAULT)
    assert caught.value.field == (
        "A_CustomerSalesAreaTax.DepartureCountry "
        "(erpaccountdetails/linkederporg/sap_create_taxdeparturecountry)"
    )
    assert caught.value.reason == "4 characters, at most 3 allowed"


def test_ecc_shaped_message_creates_without_tax(ecc_xml: bytes) -> None:
    payload = create_payload(_details(ecc_xml), DEFAULT)
    assert "to_SalesAreaTax" not in payload
    assert payload["Currency"] == "EUR"
    assert not any(name.startswith("Incoterms") for name in payload)


def test_options_validation_and_settings() -> None:
    with pytest.raises(ValueError, match="padding"):
        S4MappingOptions(customer_number_padding=-1)
    with pytest.raises(ValueError, match="send_tax_row"):
        S4MappingOptions(send_tax_row="never")  # type: ignore[arg-type]
    settings = S4Settings(
        customer_number_padding=10, send_tax_row="always", omit_blank_properties=False
    )
    assert S4MappingOptions.from_settings(settings) == S4MappingOptions(
        customer_number_padding=10, omit_blank_properties=False, send_tax_row="always"
    )
    assert S4MappingOptions.from_settings(S4Settings()) == DEFAULT

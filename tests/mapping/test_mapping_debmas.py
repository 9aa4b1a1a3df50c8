"""CRM messages → DEBMAS07 IDoc XML."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
from lxml import etree

from d365sap.config import IdocControlSettings
from d365sap.errors import ValidationError
from d365sap.mapping.crm_xml import (
    ErpAccountDetailsMessage,
    ErpAccountsMessage,
    parse_customer_message,
)
from d365sap.mapping.debmas import (
    idoc_customer_number,
    idoc_for_message,
    idoc_from_erp_account_details,
    idoc_from_erp_accounts,
)
from d365sap.mapping.s4_sales_area import S4MappingOptions, create_payload, update_payload
from d365sap.mapping.schemas import debmas_segment_fields

Edit = Callable[[bytes, Mapping[str, str | None]], bytes]
PACKAGE = IdocControlSettings(msgfn="/")
DETAILS_GOLDEN = "out_DEBMAS07_ZZ_DEBMAS_WILO360_erpaccountdetails.xml"
ACCOUNTS_GOLDEN = "out_DEBMAS07_ZZ_DEBMAS_WILO360_erpaccounts.xml"


def _details(body: bytes) -> ErpAccountDetailsMessage:
    message = parse_customer_message(body)
    assert isinstance(message, ErpAccountDetailsMessage)
    return message


def _accounts(body: bytes) -> ErpAccountsMessage:
    message = parse_customer_message(body)
    assert isinstance(message, ErpAccountsMessage)
    return message


def _segment(idoc: bytes, path: str) -> etree._Element:
    found = etree.fromstring(idoc).find(path)
    assert found is not None, path
    return found


def _field(idoc: bytes, path: str) -> str | None:
    element = etree.fromstring(idoc).find(path)
    if element is None:
        return None
    return element.text or ""


def test_erp_account_detail_equals_package_output(
    ecc_xml: bytes, example: Callable[[str], bytes], c14n: Callable[[bytes], bytes]
) -> None:
    idoc = idoc_from_erp_account_details(_details(ecc_xml), PACKAGE)
    assert c14n(idoc) == c14n(example(DETAILS_GOLDEN))


def test_erp_account_equals_package_output(
    accounts_xml: bytes, example: Callable[[str], bytes], c14n: Callable[[bytes], bytes]
) -> None:
    idoc = idoc_from_erp_accounts(_accounts(accounts_xml), PACKAGE)
    assert c14n(idoc) == c14n(example(ACCOUNTS_GOLDEN))


def test_output_is_utf8_with_declaration(accounts_xml: bytes) -> None:
    idoc = idoc_from_erp_accounts(_accounts(accounts_xml), PACKAGE)
    assert idoc.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    umlaut = accounts_xml.replace(b"Werk Dortmund", "Werk Lünen".encode())
    assert "Werk Lünen".encode() in idoc_from_erp_accounts(_accounts(umlaut), PACKAGE)


def test_example_a_as_ecc_has_the_same_structure_with_its_values(
    s4_xml: bytes,
    edit: Edit,
    example: Callable[[str], bytes],
    c14n: Callable[[bytes], bytes],
) -> None:
    message = _details(edit(s4_xml, {"linkederporg/erpsystemtype": "ECC"}))
    expected = edit(
        example(DETAILS_GOLDEN),
        {
            "IDOC/E1KNA1M/KUNNR": "17100001",
            "IDOC/E1KNA1M/Z1ZAKNA1/ZZ_ID": "a8e4f0c2-3d51-4b7e-9c16-2e7f5a1b8d30",
            "IDOC/E1KNA1M/E1KNVVM/VKORG": "1710",
            "IDOC/E1KNA1M/E1KNVVM/VTWEG": "10",
            "IDOC/E1KNA1M/E1KNVVM/SPART": "00",
            "IDOC/E1KNA1M/E1KNVVM/KDGRP": "01",
            "IDOC/E1KNA1M/E1KNVVM/BZIRK": "US0003",
            "IDOC/E1KNA1M/E1KNVVM/VKGRP": "170",
            "IDOC/E1KNA1M/E1KNVVM/VKBUR": "1710",
        },
    )
    assert c14n(idoc_from_erp_account_details(message, PACKAGE)) == c14n(expected)


def test_fax_is_carried(accounts_xml: bytes, edit: Edit) -> None:
    message = _accounts(edit(accounts_xml, {"erpaccount/fax": "+49 231 4102-99"}))
    idoc = idoc_from_erp_accounts(message, PACKAGE)
    assert _field(idoc, "IDOC/E1KNA1M/TELFX") == "+49 231 4102-99"


def test_empty_phone_keeps_ecc_value(accounts_xml: bytes, edit: Edit) -> None:
    idoc = idoc_from_erp_accounts(_accounts(edit(accounts_xml, {"erpaccount/phone1": ""})), PACKAGE)
    assert _field(idoc, "IDOC/E1KNA1M/TELF1") == "/"


def test_absent_source_fields_are_left_out(accounts_xml: bytes, edit: Edit) -> None:
    body = edit(accounts_xml, {"erpaccount/phone1": None, "erpaccount/name3": None})
    idoc = idoc_from_erp_accounts(_accounts(body), PACKAGE)
    assert _field(idoc, "IDOC/E1KNA1M/TELF1") is None
    assert _field(idoc, "IDOC/E1KNA1M/NAME3") is None
    assert _field(idoc, "IDOC/E1KNA1M/NAME4") == ""


def test_unmapped_crm_fields_do_not_reach_the_idoc(accounts_xml: bytes) -> None:
    idoc = idoc_from_erp_accounts(_accounts(accounts_xml), PACKAGE)
    for value in (b"info@muster-pumpen.example", b"j.schmidt@contoso", b"Nordrhein", b"DEU"):
        assert value not in idoc


@pytest.mark.parametrize(
    ("flag", "loevm"), [("1", "X"), ("true", "X"), ("0", ""), ("false", ""), ("", "")]
)
def test_sales_area_deletion_flag(ecc_xml: bytes, edit: Edit, flag: str, loevm: str) -> None:
    message = _details(edit(ecc_xml, {"erpaccountdetail/deletionflag": flag}))
    idoc = idoc_from_erp_account_details(message, PACKAGE)
    assert _field(idoc, "IDOC/E1KNA1M/E1KNVVM/LOEVM") == loevm
    assert _field(idoc, "IDOC/E1KNA1M/LOEVM") == "/"


def test_absent_deletion_flag_leaves_loevm_out(ecc_xml: bytes, edit: Edit) -> None:
    message = _details(edit(ecc_xml, {"erpaccountdetail/deletionflag": None}))
    idoc = idoc_from_erp_account_details(message, PACKAGE)
    assert _field(idoc, "IDOC/E1KNA1M/E1KNVVM/LOEVM") is None


def test_unknown_deletion_flag_is_rejected(ecc_xml: bytes, edit: Edit) -> None:
    message = _details(edit(ecc_xml, {"erpaccountdetail/deletionflag": "N"}))
    with pytest.raises(ValidationError) as caught:
        idoc_from_erp_account_details(message, PACKAGE)
    assert caught.value.field == "erpaccountdetails/erpaccountdetail/deletionflag"


def test_control_record_root_and_msgfn_come_from_settings(ecc_xml: bytes) -> None:
    control = IdocControlSettings(
        root_element="DEBMAS07",
        cimtyp="ZZ_EXT",
        mestyp="DEBMAS",
        sndpor="SAPCPI",
        sndprn="CRMPRD",
        rcvpor="SAPPRD",
        rcvprn="PRDCLNT100",
        rcvprt="LI",
        msgfn="004",
    )
    idoc = idoc_from_erp_account_details(_details(ecc_xml), control)
    root = etree.fromstring(idoc)
    assert root.tag == "DEBMAS07"
    header = _segment(idoc, "IDOC/EDI_DC40")
    assert [(str(c.tag), c.text) for c in header] == [
        ("TABNAM", "EDI_DC40"),
        ("DIRECT", "2"),
        ("IDOCTYP", "DEBMAS07"),
        ("CIMTYP", "ZZ_EXT"),
        ("MESTYP", "DEBMAS"),
        ("SNDPOR", "SAPCPI"),
        ("SNDPRT", "LS"),
        ("SNDPRN", "CRMPRD"),
        ("RCVPOR", "SAPPRD"),
        ("RCVPRT", "LI"),
        ("RCVPRN", "PRDCLNT100"),
    ]
    assert _field(idoc, "IDOC/E1KNA1M/MSGFN") == "004"
    assert _field(idoc, "IDOC/E1KNA1M/E1KNVVM/MSGFN") == "004"


def test_default_msgfn_is_replace(accounts_xml: bytes) -> None:
    idoc = idoc_from_erp_accounts(_accounts(accounts_xml), IdocControlSettings())
    assert _field(idoc, "IDOC/E1KNA1M/MSGFN") == "005"


def test_segments_follow_schema_order(accounts_xml: bytes, ecc_xml: bytes) -> None:
    general = _segment(idoc_from_erp_accounts(_accounts(accounts_xml), PACKAGE), "IDOC/E1KNA1M")
    names = [str(child.tag) for child in general]
    assert names == [f.name for f in debmas_segment_fields("E1KNA1M")] + ["Z1ZAKNA1"]
    assert len(names) == 111
    detail = _segment(idoc_from_erp_account_details(_details(ecc_xml), PACKAGE), "IDOC/E1KNA1M")
    assert [str(c.tag) for c in detail][-2:] == ["Z1ZAKNA1", "E1KNVVM"]
    sales = detail.find("E1KNVVM")
    assert sales is not None
    assert [str(c.tag) for c in sales] == [f.name for f in debmas_segment_fields("E1KNVVM")]
    assert len(sales) == 63
    assert all(element.get("SEGMENT") == "1" for element in detail.iter() if len(element))


@pytest.mark.parametrize("number", ["", "   ", None])
def test_customer_number_is_required(
    accounts_xml: bytes, ecc_xml: bytes, edit: Edit, number: str | None
) -> None:
    accounts = _accounts(edit(accounts_xml, {"erpaccount/number": number}))
    with pytest.raises(ValidationError) as caught:
        idoc_from_erp_accounts(accounts, PACKAGE)
    assert caught.value.field == "erpaccounts/erpaccount/number"
    details = _details(edit(ecc_xml, {"erpaccountdetail/number": number}))
    with pytest.raises(ValidationError) as caught:
        idoc_from_erp_account_details(details, PACKAGE)
    assert caught.value.field == "erpaccountdetails/erpaccountdetail/number"


def test_sales_area_key_is_required(ecc_xml: bytes, edit: Edit) -> None:
    details = _details(edit(ecc_xml, {"linkederporg/sap_vkorg": " "}))
    with pytest.raises(ValidationError) as caught:
        idoc_from_erp_account_details(details, PACKAGE)
    assert caught.value.field == "erpaccountdetails/linkederporg/sap_vkorg"


def test_customer_number_is_stripped(accounts_xml: bytes, edit: Edit) -> None:
    message = _accounts(edit(accounts_xml, {"erpaccount/number": " 100123\n"}))
    assert _field(idoc_from_erp_accounts(message, PACKAGE), "IDOC/E1KNA1M/KUNNR") == "100123"
    assert idoc_customer_number(message) == "100123"


def test_name_too_long(accounts_xml: bytes, edit: Edit) -> None:
    message = _accounts(edit(accounts_xml, {"erpaccount/name1": "N" * 40}))
    with pytest.raises(ValidationError) as caught:
        idoc_from_erp_accounts(message, PACKAGE)
    assert caught.value.field == "E1KNA1M-NAME1 (erpaccounts/erpaccount/name1)"
    assert str(caught.value) == (
        "E1KNA1M-NAME1 (erpaccounts/erpaccount/name1): 40 characters, at most 35 allowed"
    )


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("erpaccount/phone1", "+49 231 4102-0000", "E1KNA1M-TELF1 (erpaccounts/erpaccount/phone1)"),
        ("erpaccount/number", "12345678901", "E1KNA1M-KUNNR (erpaccounts/erpaccount/number)"),
        ("erpaccount/addr1zip", "12345678901", "E1KNA1M-PSTLZ (erpaccounts/erpaccount/addr1zip)"),
        ("erpaccount/langiso2", "DEU", "E1KNA1M-SPRAS_ISO (erpaccounts/erpaccount/langiso2)"),
        ("erpaccount/id", "x" * 37, "Z1ZAKNA1-ZZ_ID (erpaccounts/erpaccount/id)"),
    ],
)
def test_general_data_lengths(
    accounts_xml: bytes, edit: Edit, path: str, value: str, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        idoc_from_erp_accounts(_accounts(edit(accounts_xml, {path: value})), PACKAGE)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (
            "erpaccountdetail/salesdistrict",
            "DE00001",
            "E1KNVVM-BZIRK (erpaccountdetails/erpaccountdetail/salesdistrict)",
        ),
        (
            "linkederporg/sap_vkorg",
            "10000",
            "E1KNVVM-VKORG (erpaccountdetails/linkederporg/sap_vkorg)",
        ),
        (
            "erpaccountdetail/salesoffice",
            "10000",
            "E1KNVVM-VKBUR (erpaccountdetails/erpaccountdetail/salesoffice)",
        ),
    ],
)
def test_sales_data_lengths(ecc_xml: bytes, edit: Edit, path: str, value: str, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        idoc_from_erp_account_details(_details(edit(ecc_xml, {path: value})), PACKAGE)
    assert caught.value.field == field


def test_currency_is_ignored_for_erp(ecc_xml: bytes, edit: Edit) -> None:
    message = _details(edit(ecc_xml, {"erpaccountdetail/currency": "TOO-LONG-CURRENCY"}))
    idoc = idoc_from_erp_account_details(message, PACKAGE)
    assert _field(idoc, "IDOC/E1KNA1M/E1KNVVM/WAERS") == "/"


def test_dispatch_and_customer_number(ecc_xml: bytes, accounts_xml: bytes) -> None:
    details, accounts = _details(ecc_xml), _accounts(accounts_xml)
    assert idoc_for_message(details, PACKAGE) == idoc_from_erp_account_details(details, PACKAGE)
    assert idoc_for_message(accounts, PACKAGE) == idoc_from_erp_accounts(accounts, PACKAGE)
    assert idoc_customer_number(details) == "100123"


@pytest.mark.parametrize(("flag", "loevm", "indicator"), [("1", "X", True), ("0", "", False)])
def test_example_b_deletion_flag_means_the_same_on_both_targets(
    ecc_xml: bytes, edit: Edit, flag: str, loevm: str, indicator: bool
) -> None:
    message = _details(edit(ecc_xml, {"erpaccountdetail/deletionflag": flag}))
    idoc = idoc_from_erp_account_details(message, PACKAGE)
    assert _field(idoc, "IDOC/E1KNA1M/E1KNVVM/LOEVM") == loevm
    assert update_payload(message, S4MappingOptions())["DeletionIndicator"] is indicator
    assert create_payload(message, S4MappingOptions())["DeletionIndicator"] is indicator

"""Strict parsing of the inbound CRM XML."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from d365sap.errors import ValidationError
from d365sap.mapping.crm_xml import (
    ErpAccountDetailsMessage,
    ErpAccountsMessage,
    parse_customer_message,
)

Edit = Callable[[bytes, Mapping[str, str | None]], bytes]


def test_example_a_parses_every_field(s4_xml: bytes) -> None:
    message = parse_customer_message(s4_xml)
    assert isinstance(message, ErpAccountDetailsMessage)
    org, detail = message.linkederporg, message.erpaccountdetail
    assert org.id == "5d2c1e7a-9b3f-4c21-8e6a-0f4b7c9d2a11"
    assert org.name == "S/4HANA Cloud 1710 / 10 / 00"
    assert org.erpsystemtype == "S4HC"
    assert (org.sap_vkorg, org.sap_vtweg, org.sap_spart) == ("1710", "10", "00")
    assert org.sap_create_incotermslocation1 == "Palo Alto"
    assert org.sap_create_taxcategory == "UTXJ"
    assert detail.id == "a8e4f0c2-3d51-4b7e-9c16-2e7f5a1b8d30"
    assert detail.erpaccountid == "c1b9d2e4-6f7a-4e3b-8d2c-9a0b1c2d3e4f"
    assert detail.accountid == "e2f3a4b5-c6d7-4e8f-9a0b-1c2d3e4f5a6b"
    assert detail.number == "17100001"
    assert detail.currency == "USD"


def test_values_stay_strings_with_leading_zeros(s4_xml: bytes) -> None:
    message = parse_customer_message(s4_xml)
    assert isinstance(message, ErpAccountDetailsMessage)
    assert message.linkederporg.sap_spart == "00"
    assert message.linkederporg.sap_create_paymentterms == "0001"


def test_empty_and_absent_are_different(s4_xml: bytes) -> None:
    message = parse_customer_message(s4_xml)
    assert isinstance(message, ErpAccountDetailsMessage)
    assert message.linkederporg.sap_create_orderblock == ""
    assert message.linkederporg.sap_create_incotermslocation2 == ""


def test_ecc_example_lacks_create_fields(ecc_xml: bytes) -> None:
    message = parse_customer_message(ecc_xml)
    assert isinstance(message, ErpAccountDetailsMessage)
    assert message.linkederporg.sap_create_incoterms is None
    assert message.linkederporg.erpsystemtype == "ECC"


def test_erpaccounts_example(accounts_xml: bytes) -> None:
    message = parse_customer_message(accounts_xml)
    assert isinstance(message, ErpAccountsMessage)
    account = message.erpaccount
    assert account.id == "4c3b2a19-8f7e-4d6c-b5a4-93827160f5e4"
    assert account.number == "100123"
    assert account.addr1zip == "44263"
    assert account.name3 == ""
    assert account.fax == ""
    assert account.owner == "j.schmidt@contoso.example"


def test_string_body_is_accepted(accounts_xml: bytes) -> None:
    assert isinstance(parse_customer_message(accounts_xml.decode()), ErpAccountsMessage)


def test_whitespace_is_kept_verbatim(s4_xml: bytes, edit: Edit) -> None:
    message = parse_customer_message(edit(s4_xml, {"erpaccountdetail/salesgroup": " 170 "}))
    assert isinstance(message, ErpAccountDetailsMessage)
    assert message.erpaccountdetail.salesgroup == " 170 "


def test_xml_declaration_and_comments_are_fine() -> None:
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<!-- sent by CRM -->\n'
        b"<erpaccounts><erpaccount><id>x</id><!-- c --><number>1</number></erpaccount>"
        b"</erpaccounts>"
    )
    message = parse_customer_message(body)
    assert isinstance(message, ErpAccountsMessage)
    assert message.erpaccount.number == "1"


@pytest.mark.parametrize(
    ("body", "root"),
    [
        (b"<customer/>", "customer"),
        (b"<root><message/></root>", "root"),
        (b'<erpaccounts xmlns="urn:x"><erpaccount/></erpaccounts>', "{urn:x}erpaccounts"),
    ],
)
def test_unsupported_root_names_body_and_root(body: bytes, root: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_customer_message(body)
    assert caught.value.field == "body"
    assert f"'{root}'" in caught.value.reason


@pytest.mark.parametrize("body", [b"", b"   ", b"not xml", b"<erpaccounts>"])
def test_malformed_body(body: bytes) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_customer_message(body)
    assert caught.value.field == "body"


def test_doctype_is_refused() -> None:
    body = b'<!DOCTYPE erpaccounts [<!ENTITY x "y">]><erpaccounts><erpaccount/></erpaccounts>'
    with pytest.raises(ValidationError) as caught:
        parse_customer_message(body)
    assert caught.value.field == "body"


def test_unknown_leaf_names_path(s4_xml: bytes, edit: Edit) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_customer_message(edit(s4_xml, {"linkederporg/sap_vkbur": "1"}))
    assert caught.value.field == "erpaccountdetails/linkederporg/sap_vkbur"
    assert "unknown element" in caught.value.reason


def test_unknown_structural_element(accounts_xml: bytes, edit: Edit) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_customer_message(edit(accounts_xml, {"extra": "1"}))
    assert caught.value.field == "erpaccounts/extra"


def test_namespaced_child_is_unknown() -> None:
    body = b'<erpaccounts><erpaccount><x:id xmlns:x="urn:x">1</x:id></erpaccount></erpaccounts>'
    with pytest.raises(ValidationError) as caught:
        parse_customer_message(body)
    assert caught.value.field == "erpaccounts/erpaccount/{urn:x}id"


def test_several_linkederporg_are_rejected(s4_xml: bytes) -> None:
    body = s4_xml.replace(b"</erpaccountdetails>", b"<linkederporg/></erpaccountdetails>")
    with pytest.raises(ValidationError) as caught:
        parse_customer_message(body)
    assert caught.value.field == "erpaccountdetails/linkederporg"
    assert "2 times" in caught.value.reason


def test_several_erpaccounts_are_rejected(accounts_xml: bytes) -> None:
    body = accounts_xml.replace(b"</erpaccounts>", b"<erpaccount/></erpaccounts>")
    with pytest.raises(ValidationError) as caught:
        parse_customer_message(body)
    assert caught.value.field == "erpaccounts/erpaccount"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"<erpaccounts/>", "erpaccounts/erpaccount"),
        (
            b"<erpaccountdetails><linkederporg/></erpaccountdetails>",
            "erpaccountdetails/erpaccountdetail",
        ),
        (
            b"<erpaccountdetails><erpaccountdetail/></erpaccountdetails>",
            "erpaccountdetails/linkederporg",
        ),
    ],
)
def test_missing_structural_element(body: bytes, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_customer_message(body)
    assert caught.value.field == field
    assert "missing" in caught.value.reason


def test_repeated_leaf_is_rejected(s4_xml: bytes) -> None:
    body = s4_xml.replace(b"<number>17100001</number>", b"<number>1</number><number>2</number>")
    with pytest.raises(ValidationError) as caught:
        parse_customer_message(body)
    assert caught.value.field == "erpaccountdetails/erpaccountdetail/number"


def test_child_elements_inside_a_value_are_rejected(s4_xml: bytes) -> None:
    body = s4_xml.replace(b"<number>17100001</number>", b"<number><value>1</value></number>")
    with pytest.raises(ValidationError) as caught:
        parse_customer_message(body)
    assert caught.value.field == "erpaccountdetails/erpaccountdetail/number"
    assert "child elements" in caught.value.reason


def test_text_in_structural_element_is_rejected(s4_xml: bytes) -> None:
    body = s4_xml.replace(b"<linkederporg>", b"<linkederporg>oops")
    with pytest.raises(ValidationError) as caught:
        parse_customer_message(body)
    assert caught.value.field == "erpaccountdetails/linkederporg"


def test_text_between_root_children_is_rejected(accounts_xml: bytes) -> None:
    body = accounts_xml.replace(b"</erpaccount>", b"</erpaccount>tail")
    with pytest.raises(ValidationError) as caught:
        parse_customer_message(body)
    assert caught.value.field == "erpaccounts"


def test_unexpected_attribute_is_rejected(s4_xml: bytes) -> None:
    body = s4_xml.replace(b"<number>", b'<number type="int">')
    with pytest.raises(ValidationError) as caught:
        parse_customer_message(body)
    assert caught.value.field == "erpaccountdetails/erpaccountdetail/number"
    assert "attribute" in caught.value.reason


def test_xsi_attributes_are_ignored() -> None:
    body = (
        b'<erpaccounts xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        b'<erpaccount><id xsi:type="string">a</id></erpaccount></erpaccounts>'
    )
    message = parse_customer_message(body)
    assert isinstance(message, ErpAccountsMessage)
    assert message.erpaccount.id == "a"


def test_models_are_frozen(accounts_xml: bytes) -> None:
    message = parse_customer_message(accounts_xml)
    assert isinstance(message, ErpAccountsMessage)
    with pytest.raises(Exception, match="frozen"):
        message.erpaccount.number = "2"  # type: ignore[misc]

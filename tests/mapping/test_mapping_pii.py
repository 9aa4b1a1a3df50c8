"""Masking personal data in logged payloads (D14)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from lxml import etree

from d365sap.config import IdocControlSettings
from d365sap.mapping.crm_xml import ErpAccountsMessage, parse_customer_message
from d365sap.mapping.debmas import idoc_from_erp_accounts
from d365sap.mapping.pii import MASK, is_personal_field, mask_payload

PERSONAL_VALUES = (
    "Muster Pumpentechnik GmbH",
    "Werk Dortmund",
    "MUSTERPUMP",
    "Industriestrasse 12",
    "44263",
    "Dortmund",
    "+49 231 4102-0",
    "info@muster-pumpen.example",
    "https://www.muster-pumpen.example",
    "j.schmidt@contoso.example",
)


def _texts(xml: str) -> dict[str, str]:
    root = etree.fromstring(xml.encode())
    return {str(e.tag): e.text or "" for e in root.iter() if not len(e)}


def test_crm_xml_is_masked_and_codes_stay(accounts_xml: bytes) -> None:
    masked = mask_payload(accounts_xml.decode(), "application/xml")
    for value in PERSONAL_VALUES:
        assert value not in masked
    texts = _texts(masked)
    assert texts["name1"] == MASK
    assert texts["owner"] == MASK
    assert texts["id"] == "4c3b2a19-8f7e-4d6c-b5a4-93827160f5e4"
    assert texts["number"] == "100123"
    assert texts["addr1ctry"] == "DE"
    assert texts["addr1spcode"] == "05"
    assert texts["langiso2"] == "DE"
    assert texts["custgroup"] == "02"
    assert texts["name3"] == ""


def test_idoc_is_masked(accounts_xml: bytes) -> None:
    message = parse_customer_message(accounts_xml)
    assert isinstance(message, ErpAccountsMessage)
    idoc = idoc_from_erp_accounts(message, IdocControlSettings()).decode()
    masked = mask_payload(idoc, "application/x-sap.idoc")
    for value in PERSONAL_VALUES[:7]:
        assert value not in masked
    texts = _texts(masked)
    assert texts["KUNNR"] == "100123"
    assert texts["LAND1"] == "DE"
    assert texts["TELFX"] == "/"
    assert texts["TABNAM"] == "EDI_DC40"
    assert texts["ZZ_ID"] == "4c3b2a19-8f7e-4d6c-b5a4-93827160f5e4"
    assert texts["STRAS"] == MASK


def test_soap_wrapped_idoc_is_masked() -> None:
    envelope = (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
        "<soapenv:Body><ZZ_DEBMAS><IDOC><E1KNA1M><NAME1>Jane Doe</NAME1><KUNNR>1</KUNNR>"
        "</E1KNA1M></IDOC></ZZ_DEBMAS></soapenv:Body></soapenv:Envelope>"
    )
    masked = mask_payload(envelope, "text/xml; charset=utf-8")
    assert "Jane Doe" not in masked
    assert "<KUNNR>1</KUNNR>" in masked


def test_s4_json_is_masked() -> None:
    payload = {
        "d": {
            "results": [
                {
                    "Customer": "17100001",
                    "OrganizationBPName1": "Muster GmbH",
                    "to_EmailAddress": {"results": [{"EmailAddress": "a@b.example"}]},
                    "StreetName": "Main St",
                    "CityName": "Palo Alto",
                    "PhoneNumber": "",
                    "SearchTerm1": "MUSTER",
                    "Country": "US",
                    "DeletionIndicator": False,
                }
            ]
        }
    }
    masked = json.loads(mask_payload(json.dumps(payload), "application/json"))
    row = masked["d"]["results"][0]
    assert row["Customer"] == "17100001"
    assert row["OrganizationBPName1"] == MASK
    assert row["to_EmailAddress"]["results"][0]["EmailAddress"] == MASK
    assert row["StreetName"] == MASK
    assert row["CityName"] == MASK
    assert row["PhoneNumber"] == ""
    assert row["SearchTerm1"] == MASK
    assert row["Country"] == "US"
    assert row["DeletionIndicator"] is False


def test_sales_area_json_is_unchanged(s4_xml: bytes) -> None:
    body = {"Customer": "17100001", "SalesOrganization": "1710", "Currency": "USD"}
    assert json.loads(mask_payload(json.dumps(body), "application/json")) == body


def test_list_under_personal_key_is_masked() -> None:
    masked = json.loads(mask_payload('{"emails": ["a@b", "c@d"], "codes": ["A"]}', ""))
    assert masked == {"emails": [MASK, MASK], "codes": ["A"]}


def test_format_is_sniffed_without_content_type(accounts_xml: bytes) -> None:
    assert "Dortmund" not in mask_payload(accounts_xml.decode(), "")


@pytest.mark.parametrize(
    ("text", "content_type"),
    [
        ("<erpaccounts><name1>Jane</name1>", "application/xml"),
        ('{"name": "Jane"', "application/json"),
        ("Jane Doe, Main Street", "text/plain"),
        ('<!DOCTYPE x [<!ENTITY e "Jane">]><x>&e;</x>', "application/xml"),
    ],
)
def test_unparseable_payloads_are_withheld(text: str, content_type: str) -> None:
    masked = mask_payload(text, content_type)
    assert "Jane" not in masked
    assert masked.startswith("[payload withheld:")


@pytest.mark.parametrize(
    ("name", "personal"),
    [
        ("name1", True),
        ("NAME4", True),
        ("addr1line1", True),
        ("TELF1", True),
        ("WebsiteURL", True),
        ("owner", True),
        ("addr1spname", False),
        ("TABNAM", False),
        ("Customer", False),
        ("KUNNR", False),
        ("sap_vkorg", False),
        ("erpsystemtype", False),
    ],
)
def test_personal_field_names(name: str, personal: bool) -> None:
    assert is_personal_field(name) is personal


def test_masking_keeps_no_data_sign(example: Callable[[str], bytes]) -> None:
    golden = example("out_DEBMAS07_ZZ_DEBMAS_WILO360_erpaccountdetails.xml").decode()
    texts = _texts(mask_payload(golden, "text/xml"))
    assert texts["NAME1"] == "/"

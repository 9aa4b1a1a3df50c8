"""Documents ECC refuses: SOAP 1.1 faults naming segment and field, and nothing saved."""

from __future__ import annotations

import httpx2
import pytest
from lxml import etree

from emulators.erp.erp_support import (
    ACCOUNTS,
    DETAILS,
    PLAIN_PATH,
    RFC_STYLE_NS,
    SOAP_PATH,
    TEXT_XML,
    golden,
    golden_bytes,
    post_plain,
    post_soap,
    remove,
    set_text,
    soap_fault,
    xml,
)


def _nothing_saved(client: httpx2.Client) -> None:
    assert client.get("/emulator/idocs").json()["idocs"] == []
    customer = client.get("/emulator/customers/100123").json()
    assert customer["kna1"]["NAME2"] == "Zentrale"
    assert customer["changed_by_idocs"] == []


def test_too_long_value(erp: httpx2.Client) -> None:
    long_name = "Muster Pumpentechnik GmbH & Co. KG Niederlassung Dortmund"
    document = set_text(golden(ACCOUNTS), "IDOC/E1KNA1M/NAME1", long_name)

    fault = soap_fault(post_soap(erp, xml(document)))

    assert fault.code == "soap-env:Client"
    assert fault.name == "TagError"
    assert fault.string == (
        "E1KNA1M-NAME1: value 'Muster Pumpentechnik GmbH & Co. KG…' is longer than 35 characters"
    )
    assert fault.text == fault.string
    _nothing_saved(erp)


def test_too_long_value_in_a_sales_area(erp: httpx2.Client) -> None:
    document = set_text(golden(DETAILS), "IDOC/E1KNA1M/E1KNVVM/VKORG", "10000")
    fault = soap_fault(post_soap(erp, xml(document)))
    assert fault.string == "E1KNVVM-VKORG: value '10000' is longer than 4 characters"


def test_unknown_field(erp: httpx2.Client) -> None:
    document = golden(ACCOUNTS)
    name1 = document.find("IDOC/E1KNA1M/NAME1")
    assert name1 is not None
    extra = etree.Element("EMAIL")
    extra.text = "info@muster-pumpen.example"
    name1.addnext(extra)

    fault = soap_fault(post_soap(erp, xml(document)))

    assert fault.string.startswith("E1KNA1M-EMAIL: unknown field")
    _nothing_saved(erp)


def test_wrong_field_order(erp: httpx2.Client) -> None:
    document = golden(ACCOUNTS)
    name1 = document.find("IDOC/E1KNA1M/NAME1")
    ort01 = document.find("IDOC/E1KNA1M/ORT01")
    assert name1 is not None and ort01 is not None
    ort01.addnext(name1)  # moves NAME1 behind ORT01

    fault = soap_fault(post_soap(erp, xml(document)))

    assert fault.string.startswith("E1KNA1M-NAME1: field out of sequence")
    assert "ORT02" in fault.string


@pytest.mark.parametrize("field", ["TABNAM", "DIRECT", "SNDPOR", "SNDPRN", "RCVPOR", "RCVPRN"])
def test_missing_mandatory_control_field(erp: httpx2.Client, field: str) -> None:
    document = remove(golden(ACCOUNTS), f"IDOC/EDI_DC40/{field}")
    fault = soap_fault(post_soap(erp, xml(document)))
    assert fault.string.startswith(f"EDI_DC40-{field}: mandatory field is missing")
    _nothing_saved(erp)


def test_missing_general_data_segment(erp: httpx2.Client) -> None:
    document = remove(golden(ACCOUNTS), "IDOC/E1KNA1M")
    fault = soap_fault(post_soap(erp, xml(document)))
    assert fault.string == "IDOC-E1KNA1M: mandatory segment is missing"


def test_basic_type_must_be_debmas07(erp: httpx2.Client) -> None:
    document = set_text(golden(ACCOUNTS), "IDOC/EDI_DC40/IDOCTYP", "DEBMAS06")
    fault = soap_fault(post_soap(erp, xml(document)))
    assert (
        fault.string == "EDI_DC40-IDOCTYP: value 'DEBMAS06' is not allowed, it must be 'DEBMAS07'"
    )


def test_segment_without_segment_attribute(erp: httpx2.Client) -> None:
    document = golden(ACCOUNTS)
    segment = document.find("IDOC/E1KNA1M/Z1ZAKNA1")
    assert segment is not None
    del segment.attrib["SEGMENT"]
    fault = soap_fault(post_soap(erp, xml(document)))
    assert fault.string == "Z1ZAKNA1: attribute SEGMENT is missing"


def test_all_problems_are_listed(erp: httpx2.Client) -> None:
    document = set_text(golden(DETAILS), "IDOC/E1KNA1M/E1KNVVM/BZIRK", "DE00001")
    set_text(document, "IDOC/EDI_DC40/DIRECT", "3")
    fault = soap_fault(post_soap(erp, xml(document)))
    assert "(and 1 more problem)" in fault.string
    assert "EDI_DC40-DIRECT: value '3' is not allowed" in fault.text
    assert "E1KNVVM-BZIRK: value 'DE00001' is longer than 6 characters" in fault.text


def test_second_idoc_of_a_document_is_named(erp: httpx2.Client) -> None:
    document = golden(ACCOUNTS)
    second = golden(ACCOUNTS).find("IDOC")
    assert second is not None
    set_text(second, "E1KNA1M/PSTLZ", "44263-12345")
    document.append(second)
    fault = soap_fault(post_soap(erp, xml(document)))
    assert fault.string == "IDOC 2: E1KNA1M-PSTLZ: value '44263-12345' is longer than 10 characters"
    _nothing_saved(erp)


def test_unaccepted_message_type(erp: httpx2.Client) -> None:
    document = set_text(golden(ACCOUNTS), "IDOC/EDI_DC40/MESTYP", "CREMAS")
    fault = soap_fault(post_soap(erp, xml(document)))
    assert fault.code == "soap-env:Client"
    assert fault.name == "NoIdocsSaved"
    assert fault.string.startswith(
        "EDI_DC40-MESTYP: message type 'CREMAS' is not maintained in the inbound partner profile"
    )
    _nothing_saved(erp)


def test_unaccepted_extension(erp: httpx2.Client) -> None:
    document = set_text(golden(ACCOUNTS), "IDOC/EDI_DC40/CIMTYP", "ZZ_OTHER")
    fault = soap_fault(post_soap(erp, xml(document)))
    assert fault.string.startswith("EDI_DC40-CIMTYP: extension 'ZZ_OTHER' is not maintained")


def test_unknown_root_element(erp: httpx2.Client) -> None:
    document = golden(ACCOUNTS)
    document.tag = "MATMAS05"
    fault = soap_fault(post_soap(erp, xml(document)))
    assert fault.string.startswith("MATMAS05: not a DEBMAS07 IDoc document")


def test_document_without_idoc(erp: httpx2.Client) -> None:
    fault = soap_fault(post_soap(erp, b"<ZZ_DEBMAS/>"))
    assert fault.name == "NoIdocsReceived"


def test_empty_body(erp: httpx2.Client) -> None:
    fault = soap_fault(erp.post(SOAP_PATH, content=b"", headers=TEXT_XML))
    assert fault.name == "NoDataReceived"


def test_empty_soap_body(erp: httpx2.Client) -> None:
    fault = soap_fault(post_soap(erp, b""))
    assert fault.name == "NoDataReceived"
    assert "soap-env:Body" in fault.string


def test_malformed_xml(erp: httpx2.Client) -> None:
    broken = golden_bytes(ACCOUNTS).replace(b"</NAME1>", b"</NAME>", 1)
    fault = soap_fault(post_soap(erp, broken))
    assert fault.code == "soap-env:Client"
    assert fault.name == "TagError"
    assert "malformed XML" in fault.string
    _nothing_saved(erp)


def test_billion_laughs(erp: httpx2.Client) -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE ZZ_DEBMAS [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
        b'<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]><ZZ_DEBMAS><IDOC BEGIN="1">&d;</IDOC>'
        b"</ZZ_DEBMAS>"
    )
    fault = soap_fault(erp.post(SOAP_PATH, content=bomb, headers=TEXT_XML))
    assert fault.name == "TagError"
    assert "DOCTYPE" in fault.string or "entit" in fault.string
    _nothing_saved(erp)


def test_external_entity(erp: httpx2.Client) -> None:
    xxe = golden_bytes(ACCOUNTS).replace(b"Muster Pumpentechnik GmbH", b"&xxe;")
    xxe = b'<!DOCTYPE ZZ_DEBMAS [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>' + xxe
    response = erp.post(PLAIN_PATH, content=xxe, headers=TEXT_XML)
    assert response.status_code == 400
    assert b"root:" not in response.content
    root = etree.fromstring(response.content)
    assert root.tag == f"{{{RFC_STYLE_NS}}}ZidocInboundXmlSoapHttp.Exception"
    assert root.findtext("Name") == "TagError"
    _nothing_saved(erp)


def test_soap_12_envelope_is_a_version_mismatch(erp: httpx2.Client) -> None:
    envelope = (
        b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>'
        + golden_bytes(ACCOUNTS)
        + b"</env:Body></env:Envelope>"
    )
    fault = soap_fault(erp.post(SOAP_PATH, content=envelope, headers=TEXT_XML))
    assert fault.code == "soap-env:VersionMismatch"


def test_plain_endpoint_refuses_with_the_wsdl_exception(erp: httpx2.Client) -> None:
    document = set_text(golden(ACCOUNTS), "IDOC/E1KNA1M/LAND1", "DEU1")
    response = post_plain(erp, xml(document))
    assert response.status_code == 400
    root = etree.fromstring(response.content)
    assert root.findtext("Name") == "TagError"
    assert root.findtext("Text") == "E1KNA1M-LAND1: value 'DEU1' is longer than 3 characters"

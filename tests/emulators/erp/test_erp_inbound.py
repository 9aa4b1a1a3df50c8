"""Golden IDocs through both endpoints: accepted, numbered, answered per the WSDL, and posted."""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path

import httpx2
import pytest
from lxml import etree

from emulators.erp.erp_support import (
    ACCOUNTS,
    DETAILS,
    PLAIN_PATH,
    RFC_STYLE_NS,
    SOAP_NS,
    TEXT_XML,
    assigned,
    golden,
    golden_bytes,
    numbers,
    post_plain,
    post_soap,
    rfc_request,
    set_text,
    xml,
)

XSD_NS = "http://www.w3.org/2001/XMLSchema"


@pytest.fixture(scope="module")
def wsdl_schema(tmp_path_factory: pytest.TempPathFactory) -> etree.XMLSchema:
    """The two schemas embedded in the packaged WSDL, compiled together."""
    wsdl_bytes = (
        resources.files("d365sap.resources")
        .joinpath("wsdl", "IDOC_INBOUND_XML_SOAP_HTTP.wsdl")
        .read_bytes()
    )
    wsdl = etree.fromstring(wsdl_bytes)
    folder: Path = tmp_path_factory.mktemp("wsdl")
    main: Path | None = None
    for schema in wsdl.iter(f"{{{XSD_NS}}}schema"):
        # keep the prefixes declared on wsdl:definitions: type="tns:..." refers to them
        prefixes = {k: v for k, v in schema.nsmap.items() if k is not None}
        attributes = {str(k): str(v) for k, v in schema.attrib.items()}
        document = etree.Element(schema.tag, attrib=attributes, nsmap=prefixes)
        document.extend(copy.deepcopy(child) for child in schema)
        if document.get("targetNamespace") == RFC_STYLE_NS:
            for imported in document.iter(f"{{{XSD_NS}}}import"):
                imported.set("schemaLocation", "rfc.xsd")
            main = folder / "mc.xsd"
            main.write_bytes(etree.tostring(document))
        else:
            (folder / "rfc.xsd").write_bytes(etree.tostring(document))
    assert main is not None
    return etree.XMLSchema(etree.parse(str(main)))


def _customer(client: httpx2.Client, kunnr: str = "100123") -> dict[str, object]:
    response = client.get(f"/emulator/customers/{kunnr}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


def test_erpaccounts_golden_in_soap_envelope_is_posted(
    erp: httpx2.Client, wsdl_schema: etree.XMLSchema
) -> None:
    before = _customer(erp)
    response = post_soap(erp, golden_bytes(ACCOUNTS))

    assert response.headers["content-type"].startswith("text/xml")
    envelope = etree.fromstring(response.content)
    assert envelope.tag == f"{{{SOAP_NS}}}Envelope"
    body = envelope.find(f"{{{SOAP_NS}}}Body")
    assert body is not None and len(body) == 1
    answer = body[0]
    assert answer.tag == f"{{{RFC_STYLE_NS}}}ZidocInboundXmlSoapHttpResponse"
    assert wsdl_schema.validate(etree.fromstring(etree.tostring(answer))), wsdl_schema.error_log
    assert assigned(response) == [("", "0000000000000001")]
    assert response.headers["SapIDocDbId"] == "0000000000000001"
    assert response.headers["SapIDocType"] == "DEBMAS07"

    idoc = erp.get("/emulator/idocs/0000000000000001").json()
    assert idoc["status"] == "53"
    assert idoc["status_text"] == "Application document posted"
    assert [s["status"] for s in idoc["statuses"]] == ["50", "64", "62", "53"]
    assert idoc["mestyp"] == "ZZ_DEBMAS_WILO360" and idoc["cimtyp"] == "ZZ_DEBMAS_WILO360"
    assert idoc["kunnr"] == "0000100123"
    assert idoc["received_at"] and idoc["posted_at"]
    stored = etree.fromstring(idoc["raw_xml"].encode())
    assert stored.tag == "ZZ_DEBMAS"
    assert stored.findtext("IDOC/E1KNA1M/NAME1") == "Muster Pumpentechnik GmbH"

    after = _customer(erp)
    kna1 = after["kna1"]
    assert isinstance(kna1, dict) and isinstance(before["kna1"], dict)
    assert kna1["NAME2"] == "Werk Dortmund"  # value replaced
    assert kna1["STRAS"] == "Industriestrasse 12"
    assert kna1["TELF1"] == "+49 231 4102-0"
    assert kna1["NAME3"] == ""  # <NAME3 /> cleared the seed's "Einkauf"
    assert before["kna1"]["NAME3"] == "Einkauf"
    assert kna1["TELFX"] == before["kna1"]["TELFX"] == "+49 231 4102-199"  # '/' kept it
    assert kna1["KTOKD"] == "0001" and kna1["STCEG"] == "DE123456789"
    assert after["z1zakna1"] == {
        "ZZ_ID": "4c3b2a19-8f7e-4d6c-b5a4-93827160f5e4",
        "ZZ_BAULEISTER_ABLAUFDATUM": "20271231",  # absent element: unchanged
    }
    assert after["sales_areas"] == before["sales_areas"]
    assert after["changed_by_idocs"] == ["0000000000000001"]


def test_erpaccountdetails_golden_plain_updates_the_sales_area(erp: httpx2.Client) -> None:
    response = post_plain(erp, golden_bytes(DETAILS))

    root = etree.fromstring(response.content)
    assert root.tag == f"{{{RFC_STYLE_NS}}}ZidocInboundXmlSoapHttpResponse"
    assert numbers(response) == ["0000000000000001"]
    assert erp.get("/emulator/idocs/1").json()["status"] == "53"

    customer = _customer(erp)
    kna1 = customer["kna1"]
    assert isinstance(kna1, dict)
    assert kna1["NAME2"] == "Zentrale"  # every E1KNA1M field was '/'
    assert kna1["NAME3"] == "Einkauf"
    areas = customer["sales_areas"]
    assert isinstance(areas, list) and len(areas) == 1
    area = areas[0]
    assert (area["vkorg"], area["vtweg"], area["spart"]) == ("1000", "10", "00")
    assert area["deletion_flag"] is False
    knvv = area["knvv"]
    assert (knvv["KDGRP"], knvv["BZIRK"], knvv["VKGRP"], knvv["VKBUR"]) == (
        "02",
        "DE0001",
        "101",
        "1000",
    )
    assert (knvv["WAERS"], knvv["ZTERM"], knvv["INCO1"]) == ("EUR", "0001", "EXW")
    assert customer["z1zakna1"] == {
        "ZZ_ID": "3f2e1d0c-9b8a-4765-8432-10fedcba9876",
        "ZZ_BAULEISTER_ABLAUFDATUM": "20271231",
    }


def test_numbers_are_16_digits_and_increase(erp: httpx2.Client) -> None:
    seen: list[str] = []
    for _ in range(3):
        seen += numbers(post_soap(erp, golden_bytes(ACCOUNTS)))
    seen += numbers(post_plain(erp, golden_bytes(DETAILS)))
    assert all(len(n) == 16 and n.isdigit() for n in seen)
    assert [int(n) for n in seen] == [1, 2, 3, 4]
    listed = erp.get("/emulator/idocs").json()["idocs"]
    assert [i["docnum"] for i in listed] == seen


def test_several_idocs_in_one_document(erp: httpx2.Client) -> None:
    document = golden(ACCOUNTS)
    second = golden(DETAILS).find("IDOC")
    tabnam = second.find("EDI_DC40/TABNAM") if second is not None else None
    assert second is not None and tabnam is not None
    docnum = etree.Element("DOCNUM")
    docnum.text = "4711"  # the sender's number comes back as TransferId
    tabnam.addnext(docnum)
    document.append(second)

    response = post_soap(erp, xml(document))

    assert assigned(response) == [
        ("", "0000000000000001"),
        ("0000000000004711", "0000000000000002"),
    ]
    statuses = [i["status"] for i in erp.get("/emulator/idocs").json()["idocs"]]
    assert statuses == ["53", "53"]
    assert erp.get("/emulator/idocs/2").json()["transfer_id"] == "0000000000004711"


def test_bare_idoc_on_the_soap_endpoint(erp: httpx2.Client) -> None:
    response = erp.post(
        "/sap/bc/srt/idoc?sap-client=001", content=golden_bytes(ACCOUNTS), headers=TEXT_XML
    )
    assert etree.fromstring(response.content).tag == f"{{{SOAP_NS}}}Envelope"
    assert numbers(response) == ["0000000000000001"]


def test_wsdl_rfc_request_with_base64_stream(erp: httpx2.Client) -> None:
    response = erp.post(
        "/sap/bc/srt/idoc?sap-client=001",
        content=rfc_request(golden_bytes(ACCOUNTS)),
        headers=TEXT_XML,
    )
    assert numbers(response) == ["0000000000000001"]
    assert erp.get("/emulator/idocs/1").json()["status"] == "53"


@pytest.mark.parametrize("root", ["DEBMAS07", "ZZ_DEBMAS_WILO360", "ZZ_DEBMAS"])
def test_accepted_root_names(erp: httpx2.Client, root: str) -> None:
    document = golden(ACCOUNTS)
    document.tag = root
    assert numbers(post_plain(erp, xml(document))) == ["0000000000000001"]


def test_root_in_the_idoc_soap_namespace(erp: httpx2.Client) -> None:
    body = golden_bytes(ACCOUNTS).replace(
        b"<ZZ_DEBMAS>", b'<n1:ZZ_DEBMAS xmlns:n1="urn:sap-com:document:sap:idoc:soap:messages">'
    )
    body = body.replace(b"</ZZ_DEBMAS>", b"</n1:ZZ_DEBMAS>")
    assert numbers(post_soap(erp, body)) == ["0000000000000001"]


def test_basic_type_without_extension(erp: httpx2.Client) -> None:
    document = golden(ACCOUNTS)
    document.tag = "DEBMAS07"
    set_text(document, "IDOC/EDI_DC40/MESTYP", "DEBMAS")
    control = document.find("IDOC/EDI_DC40")
    cimtyp = document.find("IDOC/EDI_DC40/CIMTYP")
    assert control is not None and cimtyp is not None
    control.remove(cimtyp)
    assert numbers(post_soap(erp, xml(document))) == ["0000000000000001"]
    assert erp.get("/emulator/idocs/1").json()["status"] == "53"


def test_plain_endpoint_without_client_uses_the_default(erp: httpx2.Client) -> None:
    response = erp.post(PLAIN_PATH.split("?")[0], content=golden_bytes(ACCOUNTS), headers=TEXT_XML)
    assert numbers(response) == ["0000000000000001"]

"""Helpers for the ERP emulator tests: golden IDocs, envelopes, and reading answers and faults."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from importlib import resources

import httpx2
from lxml import etree

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
RFC_STYLE_NS = "urn:sap-com:document:sap:soap:functions:mc-style"
AUTH = ("IDOC_USER", "Welcome1!")
ACCOUNTS = "out_DEBMAS07_ZZ_DEBMAS_WILO360_erpaccounts.xml"
DETAILS = "out_DEBMAS07_ZZ_DEBMAS_WILO360_erpaccountdetails.xml"
SOAP_PATH = "/sap/bc/srt/idoc?sap-client=001"
PLAIN_PATH = "/sap/bc/idoc_xml?sap-client=001"
TEXT_XML = {"Content-Type": "text/xml; charset=utf-8"}


def golden_bytes(name: str) -> bytes:
    """A golden IDoc from the packaged examples, unchanged."""
    return resources.files("d365sap.resources").joinpath("examples", name).read_bytes()


def golden(name: str) -> etree._Element:
    """A golden IDoc as a tree, to be changed by a test."""
    return etree.fromstring(golden_bytes(name))


def xml(document: etree._Element) -> bytes:
    return etree.tostring(document, encoding="utf-8")


def envelope(document: bytes) -> bytes:
    """``document`` in the body of a SOAP 1.1 envelope, as the IDoc adapter sends it."""
    body = document.split(b"?>", 1)[1] if document.startswith(b"<?xml") else document
    return (
        b'<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/">'
        b"<soap-env:Header/><soap-env:Body>" + body + b"</soap-env:Body></soap-env:Envelope>"
    )


def rfc_request(document: bytes) -> bytes:
    """``document`` base64-encoded in the WSDL's ZidocInboundXmlSoapHttp request."""
    stream = base64.b64encode(document)
    return envelope(
        b'<n0:ZidocInboundXmlSoapHttp xmlns:n0="' + RFC_STYLE_NS.encode() + b'">'
        b"<XmlStream>" + stream + b"</XmlStream></n0:ZidocInboundXmlSoapHttp>"
    )


def set_text(document: etree._Element, path: str, value: str | None) -> etree._Element:
    """Set the text of the (single) element at ``path`` and return the document."""
    found = document.find(path)
    assert found is not None, path
    found.text = value
    return document


def remove(document: etree._Element, path: str) -> etree._Element:
    found = document.find(path)
    assert found is not None, path
    parent = found.getparent()
    assert parent is not None
    parent.remove(found)
    return document


def post_soap(
    client: httpx2.Client,
    document: bytes,
    *,
    headers: dict[str, str] | None = None,
    path: str = SOAP_PATH,
) -> httpx2.Response:
    return client.post(path, content=envelope(document), headers={**TEXT_XML, **(headers or {})})


def post_plain(
    client: httpx2.Client, document: bytes, *, headers: dict[str, str] | None = None
) -> httpx2.Response:
    return client.post(PLAIN_PATH, content=document, headers={**TEXT_XML, **(headers or {})})


def assigned(response: httpx2.Response) -> list[tuple[str, str]]:
    """(TransferId, DbId) pairs of an IdocAssign answer, SOAP or plain."""
    assert response.status_code == 200, response.text
    root = etree.fromstring(response.content)
    answer = root.find(f".//{{{RFC_STYLE_NS}}}ZidocInboundXmlSoapHttpResponse")
    if answer is None:
        answer = root
    assert etree.QName(answer).localname == "ZidocInboundXmlSoapHttpResponse"
    return [
        (item.findtext("TransferId") or "", item.findtext("DbId") or "")
        for item in answer.iterfind("Assign/item")
    ]


def numbers(response: httpx2.Response) -> list[str]:
    return [docnum for _, docnum in assigned(response)]


@dataclass(frozen=True)
class Fault:
    code: str
    string: str
    name: str
    text: str


def soap_fault(response: httpx2.Response) -> Fault:
    """The SOAP 1.1 fault of a refused request (asserts HTTP 500 and the SOAP structure)."""
    assert response.status_code == 500, response.text
    assert response.headers["content-type"].startswith("text/xml")
    root = etree.fromstring(response.content)
    assert root.tag == f"{{{SOAP_NS}}}Envelope"
    fault = root.find(f"{{{SOAP_NS}}}Body/{{{SOAP_NS}}}Fault")
    assert fault is not None, response.text
    detail = fault.find(f"detail/{{{RFC_STYLE_NS}}}ZidocInboundXmlSoapHttp.Exception")
    assert detail is not None, response.text
    return Fault(
        code=fault.findtext("faultcode") or "",
        string=fault.findtext("faultstring") or "",
        name=detail.findtext("Name") or "",
        text=detail.findtext("Text") or "",
    )


CREATE_GENERAL = {
    "NAME1": "Neukunde Pumpen AG",
    "LAND1": "DE",
    "ORT01": "Essen",
    "SORTL": "NEUKUNDE",
}


def create_document(
    *,
    kunnr: str | None = None,
    ktokd: str | None = "0001",
    general: dict[str, str] | None = None,
    sales_areas: tuple[tuple[str, str, str], ...] = (("1000", "10", "00"),),
) -> bytes:
    """A DEBMAS07 IDoc (the golden control record) that creates a customer."""
    document = golden("out_DEBMAS07_ZZ_DEBMAS_WILO360_erpaccounts.xml")
    idoc = document.find("IDOC")
    assert idoc is not None
    old = idoc.find("E1KNA1M")
    assert old is not None
    idoc.remove(old)
    segment = etree.SubElement(idoc, "E1KNA1M", SEGMENT="1")
    fields = {"MSGFN": "005", "KUNNR": kunnr, "KTOKD": ktokd, **(general or CREATE_GENERAL)}
    for name in ("MSGFN", "KUNNR", "KTOKD", "LAND1", "NAME1", "ORT01", "SORTL"):
        value = fields.get(name)
        if value is not None:
            etree.SubElement(segment, name).text = value
    for vkorg, vtweg, spart in sales_areas:
        area = etree.SubElement(segment, "E1KNVVM", SEGMENT="1")
        for name, value in (
            ("MSGFN", "005"),
            ("VKORG", vkorg),
            ("VTWEG", vtweg),
            ("SPART", spart),
            ("KDGRP", "02"),
            ("WAERS", "EUR"),
        ):
            etree.SubElement(area, name).text = value
    return xml(document)

"""IDOC_READ_COMPLETELY as a SOAP service: control record, status table, exceptions, logon."""

from __future__ import annotations

import httpx2
import pytest
from lxml import etree

from emulators.erp.erp_support import (
    ACCOUNTS,
    RFC_STYLE_NS,
    SOAP_NS,
    TEXT_XML,
    create_document,
    golden,
    numbers,
    post_soap,
    set_text,
    xml,
)

STATUS_PATH = "/sap/bc/srt/rfc/sap/zidoc_read_completely/001/zidoc_read_completely/binding"


def read_request(docnum: str, *tables: str) -> bytes:
    parts = "".join(f"<{table}/>" for table in tables)
    return (
        f'<soap-env:Envelope xmlns:soap-env="{SOAP_NS}"><soap-env:Body>'
        f'<n0:IdocReadCompletely xmlns:n0="{RFC_STYLE_NS}"><DocumentNumber>{docnum}'
        f"</DocumentNumber>{parts}</n0:IdocReadCompletely></soap-env:Body></soap-env:Envelope>"
    ).encode()


def read(erp: httpx2.Client, docnum: str, *tables: str, path: str = STATUS_PATH) -> httpx2.Response:
    return erp.post(path, content=read_request(docnum, *tables), headers=TEXT_XML)


def response_of(reply: httpx2.Response) -> etree._Element:
    assert reply.status_code == 200, reply.text
    found = etree.fromstring(reply.content).find(
        f"{{{SOAP_NS}}}Body/{{{RFC_STYLE_NS}}}IdocReadCompletelyResponse"
    )
    assert found is not None, reply.text
    return found


def test_status_of_a_created_customer(erp: httpx2.Client) -> None:
    docnum = numbers(post_soap(erp, create_document()))[0]
    answer = response_of(read(erp, docnum.lstrip("0"), "IntEdids"))
    control = answer.find("IdocControl")
    assert control is not None
    assert control.findtext("Docnum") == docnum
    assert control.findtext("Status") == "53"
    assert control.findtext("Idoctp") == "DEBMAS07"
    assert control.findtext("Mestyp") == "ZZ_DEBMAS_WILO360"
    assert control.findtext("Mandt") == "001"
    items = answer.findall("IntEdids/item")
    assert [item.findtext("Status") for item in items] == ["50", "64", "62", "53"]
    assert [item.findtext("Countr") for item in items][-1] == "0000000000000004"
    last = items[-1]
    assert last.findtext("Stamid") == "F2" and last.findtext("Stamno") == "172"
    assert last.findtext("Statyp") == "S" and last.findtext("Stamqu") == "SAP"
    assert last.findtext("Statxt") == "Customer &1 has been created for sales area &2 &3 &4"
    parameters = [last.findtext(f"Stapa{n}") for n in range(1, 5)]
    assert parameters == ["0000100201", "1000", "10", "00"]
    assert answer.findtext("NumberOfStatusRecords") == "4"
    assert answer.findtext("NumberOfDataRecords") == "2"  # E1KNA1M and one E1KNVVM
    assert answer.find("IntEdidd") is None


def test_a_change_that_failed_reads_as_51_without_message(erp: httpx2.Client) -> None:
    document = set_text(golden(ACCOUNTS), "IDOC/E1KNA1M/KUNNR", "4711")
    docnum = numbers(post_soap(erp, xml(document)))[0]
    last = response_of(read(erp, docnum, "IntEdids")).findall("IntEdids/item")[-1]
    assert last.findtext("Status") == "51"
    assert last.findtext("Statxt") == "Customer 4711 does not exist"
    assert last.findtext("Stamid") == ""


def test_tables_come_back_only_when_asked_for(erp: httpx2.Client) -> None:
    docnum = numbers(post_soap(erp, create_document()))[0]
    bare = response_of(read(erp, docnum))
    assert bare.find("IntEdids") is None and bare.find("IntEdidd") is None
    assert bare.findtext("IdocControl/Status") == "53"
    both = response_of(read(erp, docnum, "IntEdidd", "IntEdids"))
    data_records = both.find("IntEdidd")
    assert data_records is not None and len(data_records) == 0
    assert len(both.findall("IntEdids/item")) == 4


@pytest.mark.parametrize(
    ("docnum", "name"),
    [
        ("99", "DocumentNotExist"),
        ("12AB", "DocumentNumberInvalid"),
        ("1" * 17, "DocumentNumberInvalid"),
    ],
)
def test_exceptions_are_soap_faults(erp: httpx2.Client, docnum: str, name: str) -> None:
    reply = read(erp, docnum, "IntEdids")
    assert reply.status_code == 500
    fault = etree.fromstring(reply.content).find(f"{{{SOAP_NS}}}Body/{{{SOAP_NS}}}Fault")
    assert fault is not None
    assert fault.findtext("faultcode") == "soap-env:Client"
    exception = fault.find(f"detail/{{{RFC_STYLE_NS}}}IdocReadCompletely.Exception")
    assert exception is not None and exception.findtext("Name") == name


def test_logon_client_content_type_and_body(erp: httpx2.Client) -> None:
    wrong_client = STATUS_PATH.replace("/001/", "/002/")
    assert read(erp, "1", path=wrong_client).status_code == 401
    anonymous = httpx2.post(
        str(erp.base_url) + STATUS_PATH, content=read_request("1"), headers=TEXT_XML
    )
    assert anonymous.status_code == 401
    assert "SAP NetWeaver Application Server [ERP/001]" in anonymous.headers["www-authenticate"]
    json_body = erp.post(STATUS_PATH, json={"DocumentNumber": "1"})
    assert json_body.status_code == 415
    not_soap = erp.post(STATUS_PATH, content=b"<IdocReadCompletely/>", headers=TEXT_XML)
    assert not_soap.status_code == 500 and b"TagError" in not_soap.content

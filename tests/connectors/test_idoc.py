"""IDoc client: SOAP envelope, stable SapMessageId, receipt parsing, fault classification."""

from __future__ import annotations

import httpx2
import pytest

from d365sap.connectors.idoc import IdocClient, parse_receipt, soap_envelope, stable_message_id
from d365sap.errors import PermanentError, TransientError
from d365sap.xmlsafe import local_name, parse_xml

pytestmark = pytest.mark.anyio

IDOC = (
    b"<ZZ_DEBMAS><IDOC BEGIN='1'><EDI_DC40 SEGMENT='1'><TABNAM>EDI_DC40</TABNAM>"
    b"</EDI_DC40></IDOC></ZZ_DEBMAS>"
)
RECEIPT = b"""<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/">
<soap-env:Body><n0:ZidocInboundXmlSoapHttpResponse xmlns:n0="urn:x"><Assign><item>
<TransferId>0000000000000042</TransferId><DbId>0000000000001001</DbId></item></Assign>
</n0:ZidocInboundXmlSoapHttpResponse></soap-env:Body></soap-env:Envelope>"""
FAULT = b"""<soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/">
<soap-env:Body><soap-env:Fault><faultcode>soap-env:Client</faultcode>
<faultstring>E1KNA1M-NAME1: too long</faultstring></soap-env:Fault></soap-env:Body>
</soap-env:Envelope>"""


def test_stable_message_id() -> None:
    first = stable_message_id("message-1")
    assert first == stable_message_id("message-1")
    assert first != stable_message_id("message-2")
    assert len(first) == 32 and int(first, 16) >= 0


def test_envelope_wraps_the_idoc() -> None:
    envelope = parse_xml(soap_envelope(IDOC))
    body = envelope[1]
    assert local_name(envelope) == "Envelope" and local_name(body) == "Body"
    assert local_name(body[0]) == "ZZ_DEBMAS"


def test_receipt() -> None:
    receipt = parse_receipt(RECEIPT, message_id="M", status=200)
    assert receipt.idoc_numbers == ("0000000000001001",)
    assert receipt.transfer_id == "0000000000000042"
    with pytest.raises(PermanentError, match="no IDoc number"):
        parse_receipt(b"<ok/>", message_id="M", status=200)


async def test_send_with_message_id_header() -> None:
    seen: list[httpx2.Request] = []

    def erp(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, content=RECEIPT, headers={"content-type": "text/xml"})

    async with IdocClient(
        "http://erp.test/sap/bc/srt/idoc?sap-client=001",
        user="U",
        password="P",
        transport=httpx2.MockTransport(erp),
    ) as client:
        receipt = await client.send(IDOC, message_id="ABC")
    assert receipt.idoc_numbers == ("0000000000001001",)
    assert seen[0].headers["SapMessageId"] == "ABC"
    assert seen[0].headers["content-type"].startswith("application/x-sap.idoc")


async def test_text_xml_sends_no_message_id() -> None:
    seen: list[httpx2.Request] = []

    def erp(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, content=RECEIPT)

    async with IdocClient(
        "http://erp.test/x", content_type="text/xml", transport=httpx2.MockTransport(erp)
    ) as client:
        await client.send(IDOC, message_id="ABC")
    assert "SapMessageId" not in seen[0].headers


async def test_faults_and_statuses() -> None:
    replies = iter(
        [
            httpx2.Response(500, content=FAULT),
            httpx2.Response(500, content=FAULT.replace(b"soap-env:Client", b"soap-env:Server")),
            httpx2.Response(503, text="maintenance"),
            httpx2.Response(401, text="no"),
        ]
    )
    async with IdocClient(
        "http://erp.test/x", transport=httpx2.MockTransport(lambda r: next(replies))
    ) as client:
        with pytest.raises(PermanentError, match="E1KNA1M-NAME1: too long"):
            await client.send(IDOC, message_id="A")
        with pytest.raises(TransientError):
            await client.send(IDOC, message_id="A")
        with pytest.raises(TransientError):
            await client.send(IDOC, message_id="A")
        with pytest.raises(PermanentError):
            await client.send(IDOC, message_id="A")

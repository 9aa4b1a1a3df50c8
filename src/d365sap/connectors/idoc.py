"""Client for SAP ERP's IDoc-XML SOAP inbound service (``/sap/bc/srt/idoc``).

The IDoc travels in a SOAP 1.1 envelope. With content type ``application/x-sap.idoc`` the client
sends a ``SapMessageId`` derived from the d365sap message, so SAP posts a retried IDoc only once
(exactly-once, D6); with ``text/xml`` SAP offers no such guarantee. The reply carries the IDoc
number(s) that SAP assigned.

The reply only confirms receipt. :meth:`IdocClient.create_customer` also reads the IDoc's status
(``IDOC_READ_COMPLETELY``, :mod:`d365sap.connectors.idoc_status`) until SAP has posted it, and
returns the number of the customer the IDoc created, or SAP's reason why it did not post (G5).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

import httpx2
from lxml import etree

from d365sap.connectors.base import (
    ConnectorClient,
    classify_status,
    client_kwargs,
    transport_error,
)
from d365sap.connectors.idoc_status import (
    IdocStatus,
    parse_status_reply,
    status_fault,
    status_request,
)
from d365sap.errors import PermanentError, TransientError, ValidationError
from d365sap.xmlsafe import local_name, parse_xml

SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP_ACTION = "http://sap.com/xi/WebService/soap1.1"
MESSAGE_ID_NAMESPACE = uuid.UUID("8c0f8a52-3f41-4a43-9f0c-5b8f3c1d7e21")


def stable_message_id(key: str) -> str:
    """A 32-hex-digit SAP message id that is the same every time for the same ``key``."""
    return uuid.uuid5(MESSAGE_ID_NAMESPACE, key).hex.upper()


def soap_envelope(idoc_xml: bytes) -> bytes:
    """Wrap an IDoc document into a SOAP 1.1 envelope."""
    idoc = parse_xml(idoc_xml, what="idoc")
    envelope = etree.Element(f"{{{SOAP11_ENV}}}Envelope", nsmap={"soapenv": SOAP11_ENV})
    etree.SubElement(envelope, f"{{{SOAP11_ENV}}}Header")
    body = etree.SubElement(envelope, f"{{{SOAP11_ENV}}}Body")
    body.append(idoc)
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))


@dataclass(frozen=True)
class IdocReceipt:
    """What SAP answered: the IDoc numbers (``DbId``), transfer id and the message id used."""

    idoc_numbers: tuple[str, ...]
    transfer_id: str | None
    message_id: str
    status: int
    raw: bytes = field(repr=False, default=b"")


def _fault_text(root: etree._Element) -> tuple[str, str]:
    code = text = ""
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        name = local_name(node)
        if name == "faultcode" and not code:
            code = (node.text or "").strip()
        elif name in {"faultstring", "Text"} and not text:
            text = (node.text or "").strip()
    return code, text


def parse_receipt(body: bytes, *, message_id: str, status: int) -> IdocReceipt:
    """Read the IDoc numbers from the IdocAssign reply (``DbId`` / ``TransferId`` elements)."""
    try:
        root = parse_xml(body, what="IDoc reply")
    except ValidationError as exc:
        raise PermanentError(
            f"SAP ERP: unreadable IDoc reply: {exc.message}", status=status
        ) from exc
    numbers: list[str] = []
    transfer_id: str | None = None
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        name = local_name(node)
        if name in {"DbId", "DOCNUM"} and node.text and node.text.strip():
            numbers.append(node.text.strip())
        elif name == "TransferId" and transfer_id is None and node.text:
            transfer_id = node.text.strip()
    if not numbers:
        raise PermanentError(f"SAP ERP: no IDoc number in the reply: {body[:300]!r}", status=status)
    return IdocReceipt(
        idoc_numbers=tuple(numbers),
        transfer_id=transfer_id,
        message_id=message_id,
        status=status,
        raw=body,
    )


@dataclass(frozen=True)
class CreatedCustomer:
    """A customer SAP ERP created from an IDoc: its number, the IDoc and the IDoc's status."""

    kunnr: str
    receipt: IdocReceipt
    status: IdocStatus


class IdocClient(ConnectorClient):
    """Sends IDoc-XML documents to one SAP ERP client and reads their status."""

    system = "SAP ERP"

    def __init__(
        self,
        url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        content_type: str = "application/x-sap.idoc",
        timeout: float = 60.0,
        verify: bool = True,
        transport: httpx2.AsyncBaseTransport | None = None,
        status_url: str | None = None,
    ) -> None:
        self.url = url
        self.status_url = status_url
        self.content_type = content_type
        auth = httpx2.BasicAuth(user, password or "") if user else None
        self._client = httpx2.AsyncClient(
            auth=auth, **client_kwargs(timeout=timeout, verify=verify, transport=transport)
        )

    async def send(self, idoc_xml: bytes, *, message_id: str) -> IdocReceipt:
        """POST one IDoc document; returns the receipt or raises a classified error."""
        headers = {
            "Content-Type": f"{self.content_type}; charset=utf-8",
            "SOAPAction": SOAP_ACTION,
        }
        if self.content_type == "application/x-sap.idoc":
            headers["SapMessageId"] = message_id
        try:
            response = await self._client.post(
                self.url, content=soap_envelope(idoc_xml), headers=headers
            )
        except httpx2.HTTPError as exc:
            raise transport_error(self.system, exc) from exc
        if response.status_code == 200:
            return parse_receipt(response.content, message_id=message_id, status=200)
        if response.status_code == 500 and b"Fault" in response.content:
            try:
                root = parse_xml(response.content, what="SOAP fault")
            except ValidationError:
                root = None
            if root is not None:
                code, text = _fault_text(root)
                message = f"{self.system} rejected the IDoc: {text or code}"
                if code.endswith("Client"):
                    raise PermanentError(message, status=500, backend_message=text)
                raise TransientError(message, status=500, backend_message=text)
        raise classify_status(self.system, response, response.text[:500])

    async def read_status(self, docnum: str) -> IdocStatus:
        """The IDoc's current status and status records (``IDOC_READ_COMPLETELY``)."""
        if not self.status_url:
            raise PermanentError(f"{self.system}: no status_url configured to read IDoc status")
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": SOAP_ACTION}
        try:
            response = await self._client.post(
                self.status_url, content=status_request(docnum), headers=headers
            )
        except httpx2.HTTPError as exc:
            raise transport_error(self.system, exc) from exc
        if response.status_code == 200:
            return parse_status_reply(response.content, docnum=docnum)
        if response.status_code == 500:
            fault = status_fault(response.content, docnum=docnum)
            if fault is not None:
                raise fault
        raise classify_status(self.system, response, response.text[:500])

    async def await_posting(
        self, docnum: str, *, attempts: int = 5, interval: float = 1.0
    ) -> IdocStatus:
        """Read the status until SAP has posted the IDoc or given up on it.

        A status that is still open after ``attempts`` reads (SAP posts in a background job) is a
        :class:`TransientError`: the message is tried again later, and the IDoc, sent with the
        same ``SapMessageId``, is not posted twice.
        """
        status = await self.read_status(docnum)
        for _ in range(attempts - 1):
            if status.final:
                break
            await asyncio.sleep(interval)
            status = await self.read_status(docnum)
        if not status.final:
            raise TransientError(
                f"{self.system}: IDoc {docnum} is not posted yet (status {status.status}) "
                f"after {attempts} reads"
            )
        return status

    async def create_customer(
        self,
        idoc_xml: bytes,
        *,
        message_id: str,
        kunnr: str | None = None,
        attempts: int = 5,
        interval: float = 1.0,
    ) -> CreatedCustomer:
        """Send a DEBMAS that creates a customer; return the number once SAP has posted it.

        ``kunnr`` is the number the IDoc carries (external number range); without it SAP numbers
        the customer and reports the number in the status 53 record. Status 51 (not posted) is a
        :class:`PermanentError` with SAP's message.
        """
        receipt = await self.send(idoc_xml, message_id=message_id)
        docnum = receipt.idoc_numbers[0]
        status = await self.await_posting(docnum, attempts=attempts, interval=interval)
        latest = status.latest()
        text = latest.expanded_text() if latest is not None else ""
        if status.failed:
            raise PermanentError(
                f"{self.system}: IDoc {docnum} not posted (status {status.status}): {text}",
                status=422,
                backend_message=text,
                code=status.status,
            )
        number = status.created_customer() or kunnr
        if number is None:
            raise PermanentError(
                f"{self.system}: IDoc {docnum} posted, but SAP reported no created customer: "
                f"{text}",
                status=502,
                backend_message=text,
            )
        return CreatedCustomer(kunnr=number, receipt=receipt, status=status)

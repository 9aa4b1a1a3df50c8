"""Reading what became of an IDoc: SAP's status records, and the customer number a posting created.

SAP's IDoc inbound confirms receipt only (an IDoc number). Whether the IDoc posted (status 53) or
not (51, with the application's message), and the number of a customer it created, are in the
IDoc's status records. d365sap reads them with ``IDOC_READ_COMPLETELY`` exposed as a SOAP service
(``[erp] status_url``), asking for the status table only. A created customer is reported in the
status 53 record by a message of class F2 (172 "Customer &1 has been created for sales area &2 &3
&4", 247 "Customer &1 has been created", 170/171/174 from other creation paths) with the
number as parameter 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from d365sap.errors import NotFoundError, PermanentError, ValidationError
from d365sap.xmlsafe import local_name, parse_xml

SOAP11_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
RFC_STYLE_NS = "urn:sap-com:document:sap:soap:functions:mc-style"
POSTED = "53"
FAILED_STATUSES = frozenset({"51", "56", "60", "63", "65", "68"})
"""Inbound statuses after which SAP does nothing more by itself (errors)."""
CREATED_MESSAGES = frozenset(("F2", number) for number in ("170", "171", "172", "174", "247"))


@dataclass(frozen=True)
class StatusRecord:
    """One EDIDS line: status, text and the application message (class, number, parameters)."""

    status: str
    text: str
    message_id: str = ""
    message_number: str = ""
    message_type: str = ""
    parameters: tuple[str, ...] = ()

    def expanded_text(self) -> str:
        """The text with ``&1``..``&4`` (or ``&``) replaced by the parameters, as WE02 shows it."""
        text = self.text
        for index, value in enumerate(self.parameters, start=1):
            text = text.replace(f"&{index}", value)
        for value in self.parameters:
            text = text.replace("&", value, 1)
        return " ".join(text.split())


@dataclass(frozen=True)
class IdocStatus:
    """An IDoc's current status and its status history, oldest first."""

    docnum: str
    status: str
    records: tuple[StatusRecord, ...]
    raw: bytes = field(repr=False, default=b"")

    @property
    def posted(self) -> bool:
        """Status 53: the application document (customer) was posted."""
        return self.status == POSTED

    @property
    def failed(self) -> bool:
        """An error status SAP will not leave by itself."""
        return self.status in FAILED_STATUSES

    @property
    def final(self) -> bool:
        """Posted or failed: reading again will not change the outcome."""
        return self.posted or self.failed

    def latest(self) -> StatusRecord | None:
        """The status record of the current status."""
        for record in reversed(self.records):
            if record.status == self.status:
                return record
        return self.records[-1] if self.records else None

    def created_customer(self) -> str | None:
        """The number of the customer this IDoc created (leading zeros removed), or None."""
        for record in reversed(self.records):
            key = (record.message_id.strip(), record.message_number.strip())
            if record.status == POSTED and key in CREATED_MESSAGES and record.parameters:
                number = record.parameters[0].strip()
                if number:
                    return (number.lstrip("0") or "0") if number.isdigit() else number
        return None


def status_request(docnum: str) -> bytes:
    """The SOAP request reading ``docnum`` with its status table (``IntEdids``)."""
    envelope = etree.Element(f"{{{SOAP11_ENV}}}Envelope", nsmap={"soapenv": SOAP11_ENV})
    etree.SubElement(envelope, f"{{{SOAP11_ENV}}}Header")
    body = etree.SubElement(envelope, f"{{{SOAP11_ENV}}}Body")
    call = etree.SubElement(
        body, f"{{{RFC_STYLE_NS}}}IdocReadCompletely", nsmap={"n0": RFC_STYLE_NS}
    )
    etree.SubElement(call, "DocumentNumber").text = docnum
    etree.SubElement(call, "IntEdids")
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))


def _child_text(element: etree._Element, name: str) -> str:
    for child in element:
        if isinstance(child.tag, str) and local_name(child) == name:
            return (child.text or "").strip()
    return ""


def _find(root: etree._Element, name: str) -> etree._Element | None:
    for node in root.iter():
        if isinstance(node.tag, str) and local_name(node) == name:
            return node
    return None


def parse_status_reply(body: bytes, *, docnum: str) -> IdocStatus:
    """Read ``IdocReadCompletelyResponse``: the control record's status and the status table."""
    try:
        root = parse_xml(body, what="IDoc status reply")
    except ValidationError as exc:
        raise PermanentError(f"SAP ERP: unreadable IDoc status reply: {exc.message}") from exc
    response = _find(root, "IdocReadCompletelyResponse")
    if response is None:
        raise PermanentError(f"SAP ERP: no IdocReadCompletelyResponse in {body[:200]!r}")
    control = _find(response, "IdocControl")
    table = _find(response, "IntEdids")
    records = []
    for item in table if table is not None else ():
        if not isinstance(item.tag, str):
            continue
        parameters = tuple(_child_text(item, f"Stapa{n}") for n in range(1, 5))
        while parameters and not parameters[-1]:
            parameters = parameters[:-1]
        records.append(
            StatusRecord(
                status=_child_text(item, "Status"),
                text=_child_text(item, "Statxt"),
                message_id=_child_text(item, "Stamid"),
                message_number=_child_text(item, "Stamno"),
                message_type=_child_text(item, "Statyp"),
                parameters=parameters,
            )
        )
    status = _child_text(control, "Status") if control is not None else ""
    if not status and records:
        status = records[-1].status
    if not status:
        raise PermanentError(f"SAP ERP: no status for IDoc {docnum} in the reply")
    number = _child_text(control, "Docnum") if control is not None else ""
    return IdocStatus(docnum=number or docnum, status=status, records=tuple(records), raw=body)


def status_fault(body: bytes, *, docnum: str) -> Exception | None:
    """The error for a SOAP fault of ``IDOC_READ_COMPLETELY``, or None if ``body`` is none."""
    try:
        root = parse_xml(body, what="SOAP fault")
    except ValidationError:
        return None
    if _find(root, "Fault") is None:
        return None
    exception = _find(root, "IdocReadCompletely.Exception")
    name = _child_text(exception, "Name") if exception is not None else ""
    text = _child_text(exception, "Text") if exception is not None else ""
    fault = _find(root, "Fault")
    fault_text = text or (_child_text(fault, "faultstring") if fault is not None else "")
    message = f"SAP ERP: reading IDoc {docnum} failed: {name or 'fault'}: {fault_text}"
    if name == "DocumentNotExist":
        return NotFoundError(message, status=404, backend_message=fault_text)
    return PermanentError(message, status=500, backend_message=fault_text)

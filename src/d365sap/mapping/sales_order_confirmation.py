"""S/4's confirmation of one processed order (``SalesOrderBulkConfirmation``) read into values.

S/4's confirmation services answer a bulk message per order with a new message header that
refers to the request (``ReferenceID`` = the request's ``MessageHeader/ID``), the order as S/4
knows it (``SalesOrderID`` when it was created, and the references the sender gave:
``ExternalDocumentID``, ``PurchaseOrderByCustomer``, the custom field ``YY1_CRMOrderID``) and
SAP's ``Log``: ``BusinessDocumentProcessingResultCode`` (3 processed, 5 failed), the highest
severity and one ``Item`` per message (``TypeID``, ``SeverityCode``,
``ReferenceMessageElementName``, ``Note``).

The message arrives in a SOAP 1.1 or 1.2 envelope (or bare). Everything outside the elements
read here is ignored; a confirmation without the order's reference or without a result is a
:class:`~d365sap.errors.ValidationError` naming the element.
"""

from __future__ import annotations

from lxml import etree
from pydantic import BaseModel, ConfigDict

from d365sap.errors import ValidationError
from d365sap.xmlsafe import local_name, parse_xml

MESSAGE_NS = "http://sap.com/xi/SD-SLS"
CUSTOM_NS = "http://SAPCustomFields.com/YY1_"
ROOT = "SalesOrderBulkConfirmation"
ENVELOPES = frozenset(
    {"http://schemas.xmlsoap.org/soap/envelope/", "http://www.w3.org/2003/05/soap-envelope"}
)
PROCESSED = "3"
FAILED = "5"
ERROR_SEVERITY = 3


class LogEntry(BaseModel):
    """One item of S/4's log."""

    model_config = ConfigDict(frozen=True)

    type_id: str | None = None
    severity: int | None = None
    element: str | None = None
    note: str = ""

    def text(self) -> str:
        """``810(V1) Product X does not exist (SalesOrder[1]/Item[1]/Material)``."""
        parts = [self.type_id or "", self.note]
        text = " ".join(part for part in parts if part)
        return f"{text} ({self.element})" if self.element else text


class OrderConfirmation(BaseModel):
    """What S/4 made of one order of a bulk message."""

    model_config = ConfigDict(frozen=True)

    confirmation_id: str | None
    reference_id: str | None
    order_id: str
    sales_order: str | None
    purchase_order: str | None = None
    external_document_id: str | None = None
    result_code: str | None = None
    max_severity: int | None = None
    log: tuple[LogEntry, ...] = ()

    @property
    def created(self) -> bool:
        """Whether S/4 created the order."""
        return self.sales_order is not None and self.result_code != FAILED

    def notes(self) -> str:
        """S/4's log in one line: the errors when it failed, else everything it said."""
        entries = self.log
        if not self.created:
            errors = [e for e in entries if (e.severity or 0) >= ERROR_SEVERITY]
            entries = tuple(errors) or entries
        return "; ".join(entry.text() for entry in entries)


def _child(parent: etree._Element, name: str, namespace: str | None = None) -> str | None:
    for node in parent:
        if not isinstance(node.tag, str) or local_name(node) != name:
            continue
        if namespace is not None and etree.QName(node).namespace != namespace:
            continue
        text = (node.text or "").strip()
        return text or None
    return None


def _integer(value: str | None, field: str) -> int | None:
    if value is None:
        return None
    if not value.isdigit():
        raise ValidationError(field, f"{value[:20]!r} is not a number")
    return int(value)


def parse_confirmation(body: bytes) -> OrderConfirmation:
    """The confirmation in ``body`` (SOAP envelope or bare)."""
    root = parse_xml(body, what="body")
    message = root
    if etree.QName(root).namespace in ENVELOPES:
        bodies = [n for n in root if isinstance(n.tag, str) and local_name(n) == "Body"]
        if len(bodies) != 1:
            raise ValidationError("Envelope/Body", "the SOAP envelope has no single Body")
        content = [n for n in bodies[0] if isinstance(n.tag, str)]
        if len(content) != 1:
            raise ValidationError("Envelope/Body", "expected exactly one element in the Body")
        message = content[0]
    qname = etree.QName(message)
    if qname.localname != ROOT or qname.namespace != MESSAGE_NS:
        raise ValidationError(
            "body", f"expected {{{MESSAGE_NS}}}{ROOT}, got {str(message.tag)[:100]}"
        )
    header = message.find("MessageHeader")
    order = message.find("SalesOrder")
    log = message.find("Log")
    if order is None:
        raise ValidationError(f"{ROOT}/SalesOrder", "is missing")
    if log is None:
        raise ValidationError(f"{ROOT}/Log", "is missing")
    order_id = _child(order, "YY1_CRMOrderID", CUSTOM_NS)
    if order_id is None:
        raise ValidationError(
            f"{ROOT}/SalesOrder/YY1_CRMOrderID", "is missing: the order cannot be identified"
        )
    result = _child(log, "BusinessDocumentProcessingResultCode")
    if result is None:
        raise ValidationError(f"{ROOT}/Log/BusinessDocumentProcessingResultCode", "is missing")
    entries = []
    for position, item in enumerate(log.findall("Item"), start=1):
        where = f"{ROOT}/Log/Item[{position}]/SeverityCode"
        entries.append(
            LogEntry(
                type_id=_child(item, "TypeID"),
                severity=_integer(_child(item, "SeverityCode"), where),
                element=_child(item, "ReferenceMessageElementName"),
                note=_child(item, "Note") or "",
            )
        )
    return OrderConfirmation(
        confirmation_id=_child(header, "ID") if header is not None else None,
        reference_id=_child(header, "ReferenceID") if header is not None else None,
        order_id=order_id,
        sales_order=_child(order, "SalesOrderID"),
        purchase_order=_child(order, "PurchaseOrderByCustomer"),
        external_document_id=_child(order, "ExternalDocumentID"),
        result_code=result,
        max_severity=_integer(
            _child(log, "MaximumLogItemSeverityCode"),
            f"{ROOT}/Log/MaximumLogItemSeverityCode",
        ),
        log=tuple(entries),
    )

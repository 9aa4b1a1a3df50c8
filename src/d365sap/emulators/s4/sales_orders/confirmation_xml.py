"""The confirmation S/4 sends for one processed order, in the shape of SAP's A2A confirmations.

SAP's confirmation services (here "Sales Order - Confirm Processing (A2A)", which the package's
guide leaves deactivated) answer a message with a new message header that refers to the
original one (``ReferenceID``, ``ReferenceUUID``), the business document and SAP's ``Log``:
``BusinessDocumentProcessingResultCode`` (3 processed, 5 failed), the highest severity and one
``Item`` per message with ``TypeID`` ``<number>(<class>)``, ``SeverityCode`` and ``Note``. The
emulator sends one ``SalesOrderBulkConfirmation`` per order: with ``SalesOrderID`` when the
order was created, with the error log when it was not, plus the references the sender gave
(``ExternalDocumentID``, ``PurchaseOrderByCustomer``, and the custom field ``YY1_CRMOrderID``)
so it can find its own order again. ``ReferenceMessageElementName`` names the element of the
request a log item is about.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from lxml import etree

from d365sap.emulators.s4.sales_orders.message import MessageHeader
from d365sap.emulators.s4.sales_orders.outcome import OrderOutcome
from d365sap.emulators.s4.sales_orders.schema import CUSTOM_FIELDS_NS, MESSAGE_NS

CONFIRMATION_ROOT = "SalesOrderBulkConfirmation"
PROCESSED = "3"
FAILED = "5"
_NOTE_LENGTH = 200
"""SAP's log notes are at most 200 characters."""


def _add(parent: etree._Element, name: str, text: str | None) -> None:
    if text:
        etree.SubElement(parent, name).text = text


def build_confirmation(
    header: MessageHeader, outcome: OrderOutcome, sender_system: str, message_id: uuid.UUID
) -> etree._Element:
    """The ``n0:SalesOrderBulkConfirmation`` element for ``outcome``."""
    root = etree.Element(
        etree.QName(MESSAGE_NS, CONFIRMATION_ROOT),
        nsmap={"n0": MESSAGE_NS, "yy1": CUSTOM_FIELDS_NS},
    )
    head = etree.SubElement(root, "MessageHeader")
    _add(head, "ID", message_id.hex.upper())
    _add(head, "UUID", str(message_id))
    _add(head, "ReferenceID", header.id)
    _add(head, "ReferenceUUID", header.uuid)
    moment = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    _add(head, "CreationDateTime", moment)
    _add(head, "SenderBusinessSystemID", sender_system)
    _add(head, "RecipientBusinessSystemID", header.sender_system)
    order = etree.SubElement(root, "SalesOrder")
    _add(order, "SalesOrderID", outcome.sales_order)
    _add(order, "ExternalDocumentID", outcome.external_document_id)
    _add(order, "PurchaseOrderByCustomer", outcome.purchase_order_by_customer)
    if outcome.crm_order_id:
        etree.SubElement(
            order, etree.QName(CUSTOM_FIELDS_NS, "YY1_CRMOrderID")
        ).text = outcome.crm_order_id
    log = etree.SubElement(root, "Log")
    _add(log, "BusinessDocumentProcessingResultCode", PROCESSED if outcome.created else FAILED)
    _add(log, "MaximumLogItemSeverityCode", str(outcome.max_severity))
    for entry in outcome.log:
        item = etree.SubElement(log, "Item")
        _add(item, "TypeID", entry.message.type_id)
        _add(item, "SeverityCode", str(entry.severity))
        _add(item, "ReferenceMessageElementName", entry.element)
        _add(item, "Note", entry.note[:_NOTE_LENGTH])
    return root

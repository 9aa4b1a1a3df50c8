"""The result of processing one order: the SAP order number or the error log, SAP's Log shape.

A log item has a type id ``<number>(<message class>)``, a severity (1 information, 2 warning,
3 error), a note and the element of the request it is about. ``V1/311`` ("... has been saved")
is SAP's message; the others are this emulator's, numbered ``V1/8xx`` so they cannot be
mistaken for SAP's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Message(Enum):
    """The messages of the order processing: (message class, number)."""

    SAVED = ("V1", "311")
    ACTION_NOT_SUPPORTED = ("V1", "801")
    FIELD_MISSING = ("V1", "802")
    ORDER_TYPE_UNKNOWN = ("V1", "803")
    SOLD_TO_MISSING = ("V1", "804")
    CUSTOMER_UNKNOWN = ("V1", "805")
    SALES_AREA_MISSING = ("V1", "806")
    CUSTOMER_BLOCKED = ("V1", "807")
    PARTNER_INVALID = ("V1", "808")
    NO_ITEMS = ("V1", "809")
    PRODUCT_UNKNOWN = ("V1", "810")
    PRODUCT_DELETED = ("V1", "811")
    PRODUCT_NOT_IN_SALES_AREA = ("V1", "812")
    QUANTITY_NOT_POSITIVE = ("V1", "813")
    UNIT_INVALID = ("V1", "814")
    ITEM_NUMBER_INVALID = ("V1", "815")
    CONDITION_INVALID = ("V1", "816")
    NUMBER_RANGE_EXHAUSTED = ("V1", "817")
    EXTERNAL_NUMBER = ("V1", "818")
    DATA_REJECTED = ("V1", "819")

    @property
    def type_id(self) -> str:
        """``311(V1)``: how SAP's Log writes a message."""
        message_class, number = self.value
        return f"{number}({message_class})"


INFORMATION = 1
WARNING = 2
ERROR = 3


@dataclass(frozen=True)
class LogItem:
    """One entry of an order's log."""

    message: Message
    severity: int
    note: str
    element: str = ""

    def view(self) -> dict[str, Any]:
        """JSON for the admin routes."""
        return {
            "type_id": self.message.type_id,
            "severity": self.severity,
            "note": self.note,
            "element": self.element,
        }


def error(message: Message, note: str, element: str) -> LogItem:
    """An error about ``element`` (its path in the request)."""
    return LogItem(message, ERROR, note, element)


@dataclass
class OrderOutcome:
    """What processing one ``SalesOrder`` of a message produced."""

    position: int
    sales_order: str | None = None
    log: list[LogItem] = field(default_factory=list)
    external_document_id: str | None = None
    purchase_order_by_customer: str | None = None
    crm_order_id: str | None = None

    @property
    def created(self) -> bool:
        """Whether the order was saved."""
        return self.sales_order is not None

    @property
    def max_severity(self) -> int:
        """The highest severity in the log (1 when it is empty)."""
        return max((item.severity for item in self.log), default=INFORMATION)

    def view(self) -> dict[str, Any]:
        """JSON for the admin routes."""
        return {
            "position": self.position,
            "status": "created" if self.created else "failed",
            "sales_order": self.sales_order,
            "external_document_id": self.external_document_id,
            "purchase_order_by_customer": self.purchase_order_by_customer,
            "crm_order_id": self.crm_order_id,
            "log": [item.view() for item in self.log],
        }

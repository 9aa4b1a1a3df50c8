"""The IDoc database of the emulated ECC: numbers, status records, and exactly-once message ids.

Every accepted IDoc gets the next 16-digit number (EDIDC-DOCNUM, zero-padded) and a status history
like WE02 shows it: 50 added, 64 ready for the application, 62 passed to it, then 53 posted or 51
not posted. For requests sent as ``application/x-sap.idoc`` the message id is remembered with the
numbers it produced, so a retried message gets the same numbers back instead of new IDocs.

Holds no lock of its own; :class:`~d365sap.emulators.erp.state.ErpState` serialises access.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DOCNUM_DIGITS = 16
STATUS_TEXTS = {
    "50": "IDoc added",
    "51": "Application document not posted",
    "53": "Application document posted",
    "62": "IDoc passed to application",
    "64": "IDoc ready to be transferred to application",
}


def now() -> datetime:
    """The current time in UTC (one place, so records are comparable)."""
    return datetime.now(UTC)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z") if moment else None


def pad_docnum(docnum: str) -> str:
    """A numeric IDoc number in its 16-digit internal form (others unchanged)."""
    value = docnum.strip()
    return value.zfill(DOCNUM_DIGITS) if value.isdigit() else value


@dataclass(frozen=True)
class SapMessage:
    """The application message of a status record (EDIDS STAMID, STAMNO, STATYP, STAPA1..4).

    ``template`` is the T100 text with ``&1``..``&4`` placeholders, as EDIDS-STATXT keeps it.
    """

    msgid: str
    msgno: str
    msgty: str
    parameters: tuple[str, ...]
    template: str

    def text(self) -> str:
        """The message with its parameters filled in, as WE02 shows it."""
        result = self.template
        for index, value in enumerate(self.parameters, start=1):
            result = result.replace(f"&{index}", value)
        return result

    def to_json(self) -> dict[str, Any]:
        """The message as the admin API shows it."""
        return {
            "id": self.msgid,
            "number": self.msgno,
            "type": self.msgty,
            "parameters": list(self.parameters),
            "template": self.template,
        }


@dataclass(frozen=True)
class StatusRecord:
    """One line of an IDoc's status history, with the application message when there is one."""

    status: str
    text: str
    at: datetime
    message: SapMessage | None = None

    def to_json(self) -> dict[str, Any]:
        """The status record as the admin API shows it."""
        return {
            "status": self.status,
            "text": self.text,
            "at": _iso(self.at),
            "message": self.message.to_json() if self.message is not None else None,
        }


@dataclass
class IdocRecord:
    """One IDoc in the emulated IDoc database."""

    docnum: str
    transfer_id: str
    message_id: str | None
    content_type: str
    endpoint: str
    control: dict[str, str]
    kunnr: str | None
    raw_xml: str
    received_at: datetime
    statuses: list[StatusRecord] = field(default_factory=list)
    processed_at: datetime | None = None
    posted_at: datetime | None = None
    posting_message: str = ""

    def add_status(
        self, status: str, text: str | None = None, message: SapMessage | None = None
    ) -> None:
        """Append a status record (default text: the message's, else SAP's status text)."""
        if text is None and message is not None:
            text = message.text()
        self.statuses.append(StatusRecord(status, text or STATUS_TEXTS[status], now(), message))

    @property
    def status(self) -> str:
        """The current (latest) status."""
        return self.statuses[-1].status

    @property
    def status_text(self) -> str:
        """Text of the current status: for 51 the application's error message."""
        return self.statuses[-1].text

    def to_json(self) -> dict[str, Any]:
        """The IDoc as the admin API shows it."""
        return {
            "docnum": self.docnum,
            "transfer_id": self.transfer_id,
            "message_id": self.message_id,
            "content_type": self.content_type,
            "endpoint": self.endpoint,
            "idoctyp": self.control.get("IDOCTYP", ""),
            "cimtyp": self.control.get("CIMTYP", ""),
            "mestyp": self.control.get("MESTYP", ""),
            "sender": self.control.get("SNDPRN", ""),
            "kunnr": self.kunnr,
            "status": self.status,
            "status_text": self.status_text,
            "posting_message": self.posting_message,
            "received_at": _iso(self.received_at),
            "processed_at": _iso(self.processed_at),
            "posted_at": _iso(self.posted_at),
            "statuses": [s.to_json() for s in self.statuses],
            "control": dict(self.control),
            "raw_xml": self.raw_xml,
        }


class IdocRegistry:
    """IDocs by number, the number range, and message id -> IDoc numbers."""

    def __init__(self) -> None:
        self._records: dict[str, IdocRecord] = {}
        self._by_message: dict[str, tuple[str, ...]] = {}
        self._last_number = 0

    def next_number(self) -> str:
        """Draw the next number of the IDoc number range."""
        self._last_number += 1
        return str(self._last_number).zfill(DOCNUM_DIGITS)

    def add(self, record: IdocRecord) -> None:
        """Store a new IDoc."""
        self._records[record.docnum] = record

    def get(self, docnum: str) -> IdocRecord | None:
        """The IDoc numbered ``docnum`` (leading zeros optional)."""
        return self._records.get(pad_docnum(docnum))

    def all(self) -> list[IdocRecord]:
        """Every IDoc in number order."""
        return [self._records[k] for k in sorted(self._records)]

    def remember_message(self, message_id: str, docnums: tuple[str, ...]) -> None:
        """Record which IDocs an exactly-once message produced."""
        self._by_message[message_id] = docnums

    def numbers_for_message(self, message_id: str) -> tuple[str, ...] | None:
        """The IDoc numbers an earlier delivery of ``message_id`` produced, if any."""
        return self._by_message.get(message_id)

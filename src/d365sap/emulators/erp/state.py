"""All mutable state of one emulator instance, behind one lock.

uvicorn serves the emulator from a thread next to the tests (or the demo), and FastAPI may run
handlers in a thread pool, so receipt, numbering, exactly-once bookkeeping and posting of a request
happen in one critical section: two deliveries of the same message id can never both create IDocs,
and readers never see a half-posted customer. Readers get JSON-ready copies, never live objects.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from d365sap.emulators.erp.customers import CustomerMaster, MasterLayout, alpha_in
from d365sap.emulators.erp.idoc import NO_DATA, ReceivedIdoc
from d365sap.emulators.erp.posting import post_debmas
from d365sap.emulators.erp.registry import IdocRecord, IdocRegistry, now
from d365sap.emulators.erp.schema import DebmasSchema
from d365sap.emulators.erp.seed import load_seed
from d365sap.emulators.faults import ERP_KINDS, FaultController
from d365sap.emulators.settings import ErpEmulatorSettings


@dataclass(frozen=True)
class Delivery:
    """The IDocs of one accepted request and how they came."""

    idocs: tuple[ReceivedIdoc, ...]
    content_type: str
    endpoint: str
    message_id: str | None
    exactly_once: bool


@dataclass(frozen=True)
class Assignment:
    """One line of the IdocAssign answer: sender's transfer id and the IDoc number given here."""

    transfer_id: str
    docnum: str


@dataclass(frozen=True)
class Receipt:
    """Answer to a delivery; ``duplicate`` when an exactly-once message had been received before."""

    assignments: tuple[Assignment, ...]
    duplicate: bool


def _kunnr_of(idoc: ReceivedIdoc) -> str | None:
    general = idoc.segment("E1KNA1M")
    raw = general.fields.get("KUNNR", "") if general is not None else ""
    return alpha_in(raw) if raw not in ("", NO_DATA) else None


class ErpState:
    """Customer master plus IDoc database, restorable to the seed by :meth:`reset`.

    ``faults`` (injected faults) has its own lock and survives :meth:`reset`: a test resets the
    data between scenarios without losing the faults it configured. ``idoc_endpoint`` tells the
    fault controller which paths are the inbound endpoints (the routes know them, not the state).
    """

    def __init__(
        self,
        settings: ErpEmulatorSettings,
        schema: DebmasSchema,
        *,
        idoc_endpoint: Callable[[str], bool],
    ) -> None:
        self.layout = MasterLayout.from_schema(schema)
        self._seed = load_seed(settings.seed_file, self.layout)
        self._groups = {group.name: group for group in settings.account_groups}
        self._lock = threading.RLock()
        self._master = CustomerMaster(self._seed)
        self._registry = IdocRegistry()
        self.faults = FaultController(settings.faults, ERP_KINDS, idoc_endpoint)

    def reset(self) -> None:
        """Back to the seed: customers restored, IDocs and message ids forgotten, numbers from 1."""
        with self._lock:
            self._master = CustomerMaster(self._seed)
            self._registry = IdocRegistry()

    def receive(self, delivery: Delivery) -> Receipt:
        """Store the delivery's IDocs, then post each one right away (status 53 or 51)."""
        with self._lock:
            if delivery.exactly_once and delivery.message_id:
                known = self._registry.numbers_for_message(delivery.message_id)
                if known is not None:
                    return Receipt(self._assignments(known), duplicate=True)
            received: list[tuple[IdocRecord, ReceivedIdoc]] = []
            for idoc in delivery.idocs:
                record = IdocRecord(
                    docnum=self._registry.next_number(),
                    transfer_id=idoc.sender_docnum,
                    message_id=delivery.message_id,
                    content_type=delivery.content_type,
                    endpoint=delivery.endpoint,
                    control=dict(idoc.control),
                    kunnr=_kunnr_of(idoc),
                    raw_xml=idoc.xml,
                    received_at=now(),
                )
                record.add_status("50")
                record.add_status("64")
                self._registry.add(record)
                received.append((record, idoc))
            numbers = tuple(record.docnum for record, _ in received)
            if delivery.exactly_once and delivery.message_id:
                self._registry.remember_message(delivery.message_id, numbers)
            for record, idoc in received:
                self._post(record, idoc)
            return Receipt(self._assignments(numbers), duplicate=False)

    def _assignments(self, numbers: tuple[str, ...]) -> tuple[Assignment, ...]:
        records = [self._registry.get(n) for n in numbers]
        return tuple(Assignment(r.transfer_id, r.docnum) for r in records if r is not None)

    def _post(self, record: IdocRecord, idoc: ReceivedIdoc) -> None:
        record.add_status("62")
        result = post_debmas(idoc, record.docnum, self._master, self.layout, self._groups)
        record.processed_at = now()
        record.posting_message = result.message
        if result.created:
            record.kunnr = result.kunnr
        if result.posted:
            record.posted_at = record.processed_at
            record.add_status("53", message=result.sap_message)
        else:
            record.add_status("51", result.message)

    def idocs(self) -> list[dict[str, Any]]:
        """Every IDoc, in number order."""
        with self._lock:
            return [record.to_json() for record in self._registry.all()]

    def idoc(self, docnum: str) -> dict[str, Any] | None:
        """One IDoc, or None."""
        with self._lock:
            record = self._registry.get(docnum)
            return record.to_json() if record is not None else None

    def customers(self) -> list[dict[str, Any]]:
        """Every customer, in number order."""
        with self._lock:
            return [customer.to_json() for customer in self._master.all()]

    def customer(self, kunnr: str) -> dict[str, Any] | None:
        """One customer as posted, or None."""
        with self._lock:
            customer = self._master.get(kunnr)
            return customer.to_json() if customer is not None else None

    def counts(self) -> dict[str, int]:
        """How many customers and IDocs the emulator holds (for the health route)."""
        with self._lock:
            return {"customers": len(self._master.all()), "idocs": len(self._registry.all())}

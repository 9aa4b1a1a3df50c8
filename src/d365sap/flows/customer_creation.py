"""Creating a customer SAP does not know yet, exactly once (SEED-SPEC §7 G1, G2).

The key registry (:mod:`d365sap.engine.xref`) is written **before** the write to SAP: the
customer itself (target system + account) and each of its sales areas (+ ERP account detail) are
reserved for the message, then SAP creates the customer, then the numbers SAP gave are
confirmed. Whatever cuts in between, nothing is created twice:

* the same message tried again finds its own reservation (``retry``) and looks first: S/4HANA
  Cloud by the partner's ``BusinessPartnerIDByExtSystem`` (derived from the account id); SAP ERP
  through the IDoc's ``SapMessageId``, which is derived from the reservation (message and the
  moment it was taken), so SAP answers a repeated create with the first IDoc and its number;
* another message meets ``in_progress`` and tries later; if the holder ended (parked, discarded)
  it takes the reservation over (``transfer``) where the customer can be found again (S/4, or an
  ERP number chosen by d365sap), and otherwise asks the operator to retry the holder;
* ``confirmed`` means the customer exists: the caller updates it instead.

A reservation whose write certainly did not happen (SAP refused the request with a 4xx, or the
IDoc failed with status 51) is released, so a corrected message can try again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

from d365sap.config import IdocControlSettings
from d365sap.config_create import ErpCreateSettings, S4CreateSettings
from d365sap.connectors.idoc import IdocClient, stable_message_id
from d365sap.connectors.s4_odata import S4ODataClient
from d365sap.engine.store import MessageStore
from d365sap.engine.trace import Trace
from d365sap.engine.xref import KeyEntry, KeyRegistry, RecordKey, Reservation, SalesArea
from d365sap.errors import D365SapError, PermanentError, TransientError
from d365sap.flows.sync_state import NumberCounter
from d365sap.mapping.debmas_create import create_idoc
from d365sap.mapping.s4_business_partner import business_partner_payload, external_reference
from d365sap.model.new_customer import NewCustomer, SystemType

S4_TARGET = "s4hc"
ECC_TARGET = "ecc"
TARGETS: dict[SystemType, str] = {"S4HC": S4_TARGET, "ECC": ECC_TARGET}
IN_PROGRESS_RETRY_SECONDS = 5.0
Action = Literal["created", "found", "registered"]


@dataclass(frozen=True)
class CreatedNumbers:
    """The SAP numbers of the customer, and how the flow came by them.

    ``created``: SAP created it just now (with the given sales areas); ``found``: an earlier
    attempt had created it and it was found again; ``registered``: the registry already knew it.
    After ``found`` and ``registered`` the caller makes sure the sales area exists (update path).
    """

    customer: str
    business_partner: str | None
    action: Action
    idoc_number: str | None = None


@dataclass(frozen=True)
class CreationSettings:
    """What creating needs from the configuration."""

    s4: S4CreateSettings
    erp: ErpCreateSettings
    idoc_control: IdocControlSettings
    send_tax_row: str = "when_complete"


def area_keys(customer: NewCustomer) -> list[RecordKey]:
    """The registry keys of the customer's sales areas."""
    target = TARGETS[customer.system_type]
    return [
        RecordKey(
            target,
            customer.source.account_id,
            SalesArea(area.sales_organization, area.distribution_channel, area.division),
            area.erp_account_detail_id,
        )
        for area in customer.sales_areas
    ]


def _certainly_not_written(error: D365SapError) -> bool:
    """SAP refused the request itself (4xx), or the IDoc failed to post: nothing was created."""
    if not isinstance(error, PermanentError):
        return False
    if error.code == "51":
        return True
    return error.status is not None and 400 <= error.status < 500


class CustomerCreator:
    """Creates customers in S/4HANA Cloud and SAP ERP behind the key registry."""

    def __init__(
        self,
        *,
        store: MessageStore,
        registry: KeyRegistry,
        s4: S4ODataClient,
        erp: IdocClient,
        settings: CreationSettings,
    ) -> None:
        self.store = store
        self.registry = registry
        self.s4 = s4
        self.erp = erp
        self.settings = settings
        numbers = settings.erp.number_range
        self.counter = NumberCounter(store, numbers) if numbers is not None else None

    async def create(
        self, customer: NewCustomer, *, message_id: str, trace: Trace
    ) -> CreatedNumbers:
        """Create ``customer`` (or find it) and confirm its numbers in the registry."""
        target = TARGETS[customer.system_type]
        key = RecordKey(target, customer.source.account_id)
        areas = area_keys(customer)
        reservation, held = await self._reserve(key, areas, message_id, target, trace)
        entry = reservation.entry
        if reservation.outcome == "confirmed":
            return self._registered(entry)
        sending = False
        try:
            for area, area_reservation in zip(areas, held, strict=True):
                # The customer is this message's now, so are its sales areas.
                if area_reservation is None:
                    await self.hold(area, message_id, takeable=True)
                else:
                    await self._take_over(area, area_reservation, message_id, takeable=True)
            sending = True
            if target == S4_TARGET:
                created = await self._create_in_s4(customer, trace)
            else:
                created = await self._create_in_erp(customer, entry, trace)
        except D365SapError as error:
            if not sending or _certainly_not_written(error):
                await self._release([key, *areas], message_id)
            raise
        await self._confirm(key, areas, message_id, created)
        return created

    def check(self, customer: NewCustomer) -> bytes:
        """Build the create request without sending it (dry run); mapping errors are raised.

        With an external ERP number range the range's first number stands in for the one the
        counter would draw.
        """
        settings = self.settings
        if TARGETS[customer.system_type] == S4_TARGET:
            body = business_partner_payload(
                customer, settings.s4, send_tax_row=settings.send_tax_row
            )
            return _json(body).encode("utf-8")
        numbers = settings.erp.number_range
        kunnr = numbers.number(0) if numbers is not None else None
        return create_idoc(customer, settings.idoc_control, settings.erp, kunnr=kunnr)

    def _registered(self, entry: KeyEntry) -> CreatedNumbers:
        number = entry.customer or entry.business_partner
        assert number is not None  # a confirmed entry always has one
        return CreatedNumbers(number, entry.business_partner, "registered")

    async def _reserve(
        self,
        key: RecordKey,
        areas: list[RecordKey],
        message_id: str,
        target: str,
        trace: Trace,
    ) -> tuple[Reservation, list[Reservation | None]]:
        """Reserve the customer and, in the same transaction, its sales areas.

        When another message held the customer and this one took it over, the sales areas are
        not reserved yet (``None``): the caller holds them one by one.
        """
        with trace.step("registry.reserve", detail=f"{target} account {key.account_id}") as step:
            kunnr = None
            if target == ECC_TARGET and self.counter is not None:
                known = await self.store.call(lambda: self.registry.lookup(key))
                if known is None:
                    kunnr = await self.store.call(self._next_number)
            reservation, reserved = await self.store.call(
                lambda: self.registry.reserve_creation(key, areas, message_id, customer=kunnr)
            )
            held: list[Reservation | None] = list(reserved)
            if reservation.outcome == "in_progress":
                # A creation can be taken over where the customer can be found again: by its
                # external reference in S/4, by the number d365sap chose in SAP ERP.
                takeable = target == S4_TARGET or reservation.entry.customer is not None
                reservation = await self._take_over(
                    key, reservation, message_id, customer=kunnr, takeable=takeable
                )
                held = [None] * len(areas)
            step.detail = f"{step.detail}: {reservation.outcome}"
            return reservation, held

    async def hold(
        self,
        key: RecordKey,
        message_id: str,
        *,
        customer: str | None = None,
        takeable: bool,
    ) -> Reservation:
        """Reserve ``key``; when another message holds it, wait for it or take over if it ended.

        ``takeable``: the holder's write can be found again, so a message that ended holding the
        reservation may hand it on. Otherwise the operator is asked to retry the holder.
        """
        reservation = await self.store.call(
            lambda: self.registry.reserve(key, message_id, customer=customer)
        )
        return await self._take_over(
            key, reservation, message_id, customer=customer, takeable=takeable
        )

    async def _take_over(
        self,
        key: RecordKey,
        reservation: Reservation,
        message_id: str,
        *,
        customer: str | None = None,
        takeable: bool,
    ) -> Reservation:
        """``reservation`` as it is, unless another message holds it (see :meth:`hold`)."""
        if reservation.outcome != "in_progress":
            return reservation
        holder = reservation.entry.reserved_by
        view = await self.store.call(lambda: self.store.status_of(holder))
        what = _describe(key)
        if view is not None and not view.final:
            raise TransientError(
                f"key registry: message {holder} is writing the {what}; trying again later",
                retry_after=IN_PROGRESS_RETRY_SECONDS,
            )
        if not takeable:
            ended = "is gone" if view is None else f"ended as {view.status}"
            raise PermanentError(
                f"key registry: message {holder} reserved the creation of the {what} and "
                f"{ended} without confirming it; SAP may hold the customer. Retry message "
                f"{holder}: it resends its IDoc with the same SapMessageId, and SAP answers "
                "with the customer it created, if any",
                status=409,
            )
        await self.store.call(lambda: self.registry.transfer(key, holder, message_id))
        return await self.store.call(
            lambda: self.registry.reserve(key, message_id, customer=customer)
        )

    def _next_number(self) -> str:
        assert self.counter is not None
        try:
            return self.counter.next_number()
        except ValueError as exc:
            raise PermanentError(f"SAP ERP: [erp.create] number_range: {exc}") from exc

    async def _create_in_s4(self, customer: NewCustomer, trace: Trace) -> CreatedNumbers:
        reference = external_reference(customer.source.account_id)
        with trace.step("s4.find_business_partner", detail=reference) as step:
            found = await self.s4.find_business_partner(reference)
            step.detail = f"{reference}: {found.business_partner if found else 'none'}"
        if found is not None:
            number = found.customer or found.business_partner
            return CreatedNumbers(number, found.business_partner, "found")
        settings = self.settings
        body = business_partner_payload(customer, settings.s4, send_tax_row=settings.send_tax_row)
        trace.snapshot_json("mapped.business_partner", body)
        with trace.step("s4.create_business_partner") as step:
            created = await self.s4.create_business_partner(body)
            step.reply(201, created.raw)
        if created.customer is None:
            raise PermanentError(
                f"S/4HANA Cloud created business partner {created.business_partner} without a "
                "customer: check the roles in [s4.create] (FLCU00/FLCU01)",
                status=502,
            )
        return CreatedNumbers(created.customer, created.business_partner, "created")

    async def _create_in_erp(
        self, customer: NewCustomer, entry: KeyEntry, trace: Trace
    ) -> CreatedNumbers:
        settings = self.settings
        kunnr = entry.customer if settings.erp.number_range is not None else None
        idoc = create_idoc(customer, settings.idoc_control, settings.erp, kunnr=kunnr)
        trace.snapshot("mapped.idoc", "application/xml", idoc)
        # Same reservation, same id: SAP answers a repeated create with the first IDoc.
        moment = entry.reserved_at.replace(tzinfo=None).isoformat()
        sap_id = stable_message_id(f"create:{entry.target_system}:{entry.account_id}:{moment}")
        with trace.step("erp.create_customer", detail=f"SapMessageId {sap_id}") as step:
            created = await self.erp.create_customer(
                idoc,
                message_id=sap_id,
                kunnr=kunnr,
                attempts=settings.erp.status_attempts,
                interval=settings.erp.status_interval_seconds,
            )
            step.reply(200, created.receipt.raw)
            step.detail = f"IDoc {created.receipt.idoc_numbers[0]}: customer {created.kunnr}"
        return CreatedNumbers(
            created.kunnr, None, "created", idoc_number=created.receipt.idoc_numbers[0]
        )

    async def _confirm(
        self, key: RecordKey, areas: list[RecordKey], message_id: str, created: CreatedNumbers
    ) -> None:
        await self.store.call(
            lambda: self.registry.confirm_creation(
                key,
                areas,
                message_id,
                customer=created.customer,
                business_partner=created.business_partner,
            )
        )

    async def _release(self, keys: list[RecordKey], message_id: str) -> None:
        def release_all() -> None:
            for key in keys:
                self.registry.release(key, message_id)

        await self.store.call(release_all)


def _json(body: dict[str, object]) -> str:
    return json.dumps(body, ensure_ascii=False)


def _describe(key: RecordKey) -> str:
    area = key.sales_area
    where = (
        f"sales area {area.sales_org}/{area.distribution_channel}/{area.division}"
        if area is not None
        else "customer"
    )
    return f"{key.target_system} {where} of account {key.account_id}"

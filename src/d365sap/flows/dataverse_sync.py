"""One record of an account to SAP: route it, create the customer or update it, remember it.

A record is an ERP account detail (sales-area data) or an ERP account (general data), see
:mod:`d365sap.flows.dataverse_assembly`. :meth:`RecordSyncer.sync` decides like SAP's package:

1. the package's routing (:func:`~d365sap.mapping.dataverse_customer.route_rows`): S/4HANA
   Cloud, SAP ERP, or discarded with the reason;
2. the customer number: from the rows, else from the key registry (a customer d365sap created
   before, whose number may not be written back yet);
3. no number: the customer is **created** (:mod:`d365sap.flows.customer_creation`), with the
   detail's sales area; general data without a detail is created in SAP ERP alone, and waits for
   its details when it has some;
4. a number: the package's message is built from the rows and sent through the legacy flow's
   own path (:meth:`CustomerFlow.deliver`: S/4 sales-area create-or-update with ``If-Match``,
   or a DEBMAS IDoc), unless its digest equals the one last applied: then it is ``unchanged``
   and nothing is sent. The registry gets the sales area (and the customer) before the write, so
   a deletion can later find it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from d365sap.connectors.idoc import stable_message_id
from d365sap.engine.store import MessageStore
from d365sap.engine.trace import Trace
from d365sap.engine.xref import KeyEntry, KeyRegistry, RecordKey, SalesArea
from d365sap.errors import ConflictError, D365SapError
from d365sap.flows.customer import CustomerFlow
from d365sap.flows.customer_creation import ECC_TARGET, S4_TARGET, CustomerCreator
from d365sap.flows.dataverse_assembly import AccountSnapshot, SyncRecord
from d365sap.flows.dataverse_result import RecordAction, RecordOutcome, RecordResult
from d365sap.flows.result import Outcome, error_info
from d365sap.flows.sync_state import Applied, AppliedDigests, digest
from d365sap.mapping.dataverse_customer import (
    CustomerRows,
    accounts_message,
    customer_number,
    details_message,
    new_customer,
    route_rows,
)
from d365sap.mapping.routing import Route, RouteDecision
from d365sap.model.crm import ErpAccountDetailsMessage, ErpAccountsMessage

RESULT_TARGETS = {S4_TARGET: "s4hc", ECC_TARGET: "erp"}
_EARLIER = frozenset(
    {RecordAction.CREATED.value, RecordAction.UPDATED.value, RecordAction.IDOC_SENT.value}
)
_ACTIONS = {
    Outcome.CREATED: RecordAction.CREATED,
    Outcome.UPDATED: RecordAction.UPDATED,
    Outcome.IDOC_SENT: RecordAction.IDOC_SENT,
}


@dataclass(frozen=True)
class RunContext:
    """What every record of one message run shares."""

    message_id: str
    version: int
    snapshot: AccountSnapshot
    trace: Trace
    force: bool = False
    """Send even when the digest is unchanged (``Load`` messages)."""
    dry_run: bool = False
    applied_now: set[str] = field(default_factory=set)
    """Rows whose digest this attempt recorded (so they are not taken for an earlier attempt's)."""
    known: dict[str, str] = field(default_factory=dict)
    """The account's confirmed SAP customer per target system: from the key registry when the
    message began (:func:`known_customers`), and the customers this attempt created."""


def known_customers(entries: Iterable[KeyEntry]) -> dict[str, str]:
    """The confirmed customer number per target system among an account's registry entries."""
    known: dict[str, str] = {}
    for entry in entries:
        number = entry.customer or entry.business_partner
        if entry.sales_area is None and entry.state == "confirmed" and number is not None:
            known[entry.target_system] = number
    return known


def with_number(record: SyncRecord, rows: CustomerRows, number: str) -> CustomerRows:
    """The rows as they read once the number is written back (so digests match the echo)."""
    if record.kind == "sales_area" and rows.detail is not None:
        return replace(rows, detail={**rows.detail, "sap_sapcustomernumber": number})
    return replace(rows, erp_account={**rows.erp_account, "sap_number": number})


def _result(record: SyncRecord, action: RecordAction, **values: Any) -> RecordResult:
    table = "sap_erpaccountdetail" if record.kind == "sales_area" else "sap_erpaccount"
    return RecordResult(table=table, id=record.row_id, action=action, **values)


def failed(record: SyncRecord, error: D365SapError, **values: Any) -> RecordOutcome:
    """The outcome of a record that failed with ``error``."""
    return RecordOutcome(
        record, _result(record, RecordAction.ERROR, error=error_info(error), **values), error
    )


class RecordSyncer:
    """Sends one record to SAP (see the module docstring)."""

    def __init__(
        self,
        *,
        store: MessageStore,
        registry: KeyRegistry,
        applied: AppliedDigests,
        customers: CustomerFlow,
        creator: CustomerCreator,
    ) -> None:
        self.store = store
        self.registry = registry
        self.applied = applied
        self.customers = customers
        self.creator = creator

    async def sync(self, record: SyncRecord, ctx: RunContext) -> RecordOutcome:
        """The record's outcome; business and back-end errors are returned, not raised."""
        if record.problem is not None or record.rows is None:
            assert record.problem is not None
            return failed(record, record.problem)
        if record.inactive:
            return RecordOutcome(
                record, _result(record, RecordAction.SKIPPED, reason="inactive in Dynamics")
            )
        target: str | None = None
        try:
            decision = route_rows(record.rows)
            if decision.route == Route.DISCARD:
                return RecordOutcome(
                    record, _result(record, RecordAction.DISCARDED, reason=decision.reason)
                )
            target = S4_TARGET if decision.route == Route.S4HC else ECC_TARGET
            return await self._sync_routed(record, record.rows, decision, target, ctx)
        except D365SapError as error:
            label = RESULT_TARGETS.get(target or "")
            return failed(record, error, target=label)

    async def _sync_routed(
        self,
        record: SyncRecord,
        rows: CustomerRows,
        decision: RouteDecision,
        target: str,
        ctx: RunContext,
    ) -> RecordOutcome:
        number = customer_number(rows)
        if number is None:
            number = ctx.known.get(target)
        if number is not None:
            return await self._update(record, rows, decision, target, number, ctx)
        if record.kind == "general":
            waiting = self._general_without_number(record, rows, ctx)
            if waiting is not None:
                return waiting
        elif rows.detail is not None and rows.detail.get("sap_deletionflag") is True:
            return RecordOutcome(
                record,
                _result(
                    record,
                    RecordAction.DISCARDED,
                    reason="flagged for deletion and unknown to SAP: not created",
                ),
            )
        return await self._create(record, rows, decision, target, ctx)

    def _general_without_number(
        self, record: SyncRecord, rows: CustomerRows, ctx: RunContext
    ) -> RecordOutcome | None:
        if ctx.snapshot.details_of(record.row_id):
            reason = "no SAP number yet: the customer is created from its ERP account details"
            return RecordOutcome(record, _result(record, RecordAction.SKIPPED, reason=reason))
        if rows.org is None:
            reason = (
                "no SAP number and no linked ERP organization: the SAP system to create the "
                "customer in is unknown"
            )
            return RecordOutcome(record, _result(record, RecordAction.DISCARDED, reason=reason))
        return None

    async def _create(
        self,
        record: SyncRecord,
        rows: CustomerRows,
        decision: RouteDecision,
        target: str,
        ctx: RunContext,
    ) -> RecordOutcome:
        customer = new_customer(rows)
        label = RESULT_TARGETS[target]
        if ctx.dry_run:
            self.creator.check(customer)  # the request is built (and checked), not sent
            reason = (
                f"would create the customer in {label} ({len(customer.sales_areas)} sales area(s))"
            )
            return RecordOutcome(
                record,
                _result(
                    record,
                    RecordAction.PLANNED,
                    target=label,
                    route=decision.route.value,
                    reason=reason,
                ),
            )
        created = await self.creator.create(customer, message_id=ctx.message_id, trace=ctx.trace)
        ctx.known[target] = created.customer
        if created.action != "created":
            # Known (registry) or found again after a lost answer: make sure of the sales area.
            outcome = await self._update(record, rows, decision, target, created.customer, ctx)
            if created.action == "found" and outcome.error is None:
                outcome.result.action = RecordAction.CREATED
                outcome.result.business_partner = created.business_partner
                outcome.result.reason = (
                    "created by an earlier attempt whose answer was lost; found again by its "
                    "external reference"
                )
            return outcome
        number = created.customer
        digests = [
            Applied(
                record.row_id,
                self._digest(record, with_number(record, rows, number)),
                RecordAction.CREATED.value,
                ctx.message_id,
            )
        ]
        if target == ECC_TARGET and record.kind == "sales_area" and record.erp_account_id:
            general = CustomerRows(account=rows.account, erp_account=rows.erp_account, org=rows.org)
            numbered = replace(general, erp_account={**rows.erp_account, "sap_number": number})
            digests.append(
                Applied(
                    record.erp_account_id,
                    self._general_digest(numbered),
                    RecordAction.CREATED.value,
                    ctx.message_id,
                )
            )
        await self.store.call(lambda: self.applied.put(digests))
        ctx.applied_now.update(entry.row_id for entry in digests)
        return RecordOutcome(
            record,
            _result(
                record,
                RecordAction.CREATED,
                target=label,
                route=decision.route.value,
                customer=created.customer,
                business_partner=created.business_partner,
                idoc_number=created.idoc_number,
            ),
        )

    def _message(
        self, record: SyncRecord, rows: CustomerRows
    ) -> ErpAccountDetailsMessage | ErpAccountsMessage:
        return details_message(rows) if record.kind == "sales_area" else accounts_message(rows)

    def _digest(self, record: SyncRecord, rows: CustomerRows) -> str:
        if record.kind == "general":
            return self._general_digest(rows)
        message = details_message(rows)
        return digest("sales_area", message.model_dump(mode="json"))

    @staticmethod
    def _general_digest(rows: CustomerRows) -> str:
        return digest("general", accounts_message(rows).model_dump(mode="json"))

    async def _update(
        self,
        record: SyncRecord,
        rows: CustomerRows,
        decision: RouteDecision,
        target: str,
        number: str,
        ctx: RunContext,
    ) -> RecordOutcome:
        label = RESULT_TARGETS[target]
        numbered = rows if customer_number(rows) is not None else with_number(record, rows, number)
        message = self._message(record, numbered)
        fingerprint = self._digest(record, numbered)
        common: dict[str, Any] = {
            "target": label,
            "route": decision.route.value,
            "customer": number,
        }
        if not ctx.force:
            applied = await self.store.call(lambda: self.applied.get(record.row_id))
            if applied is not None and applied.digest == fingerprint:
                return RecordOutcome(record, self._already_applied(record, applied, ctx, common))
        if ctx.dry_run:
            return RecordOutcome(
                record, _result(record, RecordAction.PLANNED, reason="would send", **common)
            )
        key = self._registry_key(record, message, target, ctx.snapshot.account_id)
        await self._register(key, number, ctx.message_id)
        sap_id = f"{ctx.message_id}:{record.row_id}:v{ctx.version}"
        sent = await self.customers.deliver(message, decision, ctx.trace, message_id=sap_id)
        action = _ACTIONS.get(sent.outcome, RecordAction.UPDATED)
        applied = Applied(record.row_id, fingerprint, action.value, ctx.message_id)
        await self.store.call(lambda: self.applied.put([applied]))
        ctx.applied_now.add(record.row_id)
        return RecordOutcome(
            record,
            _result(
                record,
                action,
                idoc_number=sent.idoc_number,
                reason=f"SapMessageId {stable_message_id(sap_id)}" if sent.idoc_number else None,
                **common,
            ),
        )

    @staticmethod
    def _already_applied(
        record: SyncRecord, applied: Applied, ctx: RunContext, common: dict[str, Any]
    ) -> RecordResult:
        """Unchanged; or, for a retry of the message that sent it, what that attempt did."""
        if applied.message_id == ctx.message_id and applied.action in _EARLIER:
            if record.row_id in ctx.applied_now:
                reason = "sent to SAP with the customer's creation by this message"
                return _result(record, RecordAction.UNCHANGED, reason=reason, **common)
            reason = "sent to SAP by an earlier attempt of this message"
            return _result(record, RecordAction(applied.action), reason=reason, **common)
        reason = "unchanged since it was last sent to SAP"
        return _result(record, RecordAction.UNCHANGED, reason=reason, **common)

    @staticmethod
    def _registry_key(
        record: SyncRecord,
        message: ErpAccountDetailsMessage | ErpAccountsMessage,
        target: str,
        account_id: str,
    ) -> RecordKey:
        if isinstance(message, ErpAccountsMessage):
            return RecordKey(target, account_id)
        org = message.linkederporg
        area = SalesArea(org.sap_vkorg or "", org.sap_vtweg or "", org.sap_spart or "")
        return RecordKey(target, account_id, area, record.row_id)

    async def _register(self, key: RecordKey, number: str, message_id: str) -> None:
        """Put a known customer's record into the registry before the write.

        The number comes from Dataverse (or the registry), not from this write, so the entry is
        confirmed at once: a failing write leaves no reservation behind. A reservation another
        message left behind when it ended is taken over (the number is known: nothing to find).
        """
        reservation = await self.creator.hold(key, message_id, customer=number, takeable=True)
        entry = reservation.entry
        if reservation.mine:
            await self.store.call(lambda: self.registry.confirm(key, message_id, customer=number))
            return
        registered = entry.customer or entry.business_partner
        if registered is not None and _differs(registered, number):
            what = "sales area" if key.sales_area else "customer"
            raise ConflictError(
                f"key registry: {key.target_system} {what} "
                f"of account {key.account_id} belongs to SAP customer {registered}, but "
                f"Dataverse names {number}"
            )


def _differs(first: str, second: str) -> bool:
    if first.isdigit() and second.isdigit():
        return int(first) != int(second)
    return first.strip() != second.strip()

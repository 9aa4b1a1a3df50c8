"""Deletions in Dataverse: what becomes of the SAP sales areas whose ERP account detail is gone.

SAP customers are not deleted by an interface: SAP marks them for deletion and archives them
later. The package's own way of saying "stop this sales area" is the detail's deletion flag, which
becomes ``DeletionIndicator`` in S/4HANA Cloud and ``LOEVM`` in SAP ERP. A deleted ERP account
detail is treated the same way (``[dataverse_flow] on_delete = "flag_for_deletion"``, the
default): the sales area the key registry holds for it gets its deletion flag, once. With
``on_delete = "ignore"`` SAP is left alone and the result says so.

Which details are gone is found by comparison, not from the message alone: every message of an
account checks the registry's sales areas of that account against the details that exist now.
That catches a deleted detail whichever trigger reported it (its own ``Delete``, the account's,
an ERP account deleted with its details, a delete the webhook missed), and also a detail whose
message had no account id (the registry knows the account of the detail). A deleted account
deletes its ERP accounts and details with it (cascade), so all its sales areas are flagged.

The registry only holds sales areas the flow has sent (or created): a detail deleted before it
ever reached SAP has nothing to flag. General data (an ERP account without details) is never
flagged: SAP ERP's KNA1 deletion flag would block the customer in every sales area.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from d365sap.connectors.s4_odata import S4ODataClient
from d365sap.engine.store import MessageStore
from d365sap.engine.trace import Trace
from d365sap.engine.xref import KeyEntry, KeyRegistry, SalesArea
from d365sap.errors import D365SapError
from d365sap.flows.customer import CustomerFlow
from d365sap.flows.customer_creation import ECC_TARGET, S4_TARGET
from d365sap.flows.dataverse_assembly import AccountSnapshot
from d365sap.flows.dataverse_result import RecordAction, RecordOutcome, RecordResult
from d365sap.flows.result import error_info
from d365sap.flows.sync_state import DELETED, Applied, AppliedDigests
from d365sap.mapping.routing import ECC_SYSTEM_TYPE, S4HC_SYSTEM_TYPE, Route, RouteDecision
from d365sap.model.crm import ErpAccountDetail, ErpAccountDetailsMessage, LinkedErpOrg

DETAIL_TABLE = "sap_erpaccountdetail"
OnDelete = Literal["flag_for_deletion", "ignore"]


@dataclass(frozen=True)
class DeletedArea:
    """A registered sales area whose ERP account detail is gone."""

    target_system: str
    account_id: str
    detail_id: str
    customer: str
    area: SalesArea

    @classmethod
    def of(cls, entry: KeyEntry) -> DeletedArea | None:
        """The entry as a deleted area, if it is a confirmed sales area with a detail."""
        if entry.sales_area is None or entry.detail_id is None or entry.customer is None:
            return None
        return cls(
            entry.target_system, entry.account_id, entry.detail_id, entry.customer, entry.sales_area
        )

    @property
    def s4(self) -> bool:
        """In S/4HANA Cloud (else SAP ERP)."""
        return self.target_system == S4_TARGET

    def label(self) -> str:
        """``customer 17100001 sales area 1710/10/00``."""
        area = self.area
        return (
            f"customer {self.customer} sales area "
            f"{area.sales_org}/{area.distribution_channel}/{area.division}"
        )


def deletion_message(deleted: DeletedArea) -> ErpAccountDetailsMessage:
    """The package's message that sets the sales area's deletion flag and nothing else."""
    area = deleted.area
    return ErpAccountDetailsMessage(
        linkederporg=LinkedErpOrg(
            erpsystemtype=S4HC_SYSTEM_TYPE if deleted.s4 else ECC_SYSTEM_TYPE,
            sap_vkorg=area.sales_org,
            sap_vtweg=area.distribution_channel,
            sap_spart=area.division,
        ),
        erpaccountdetail=ErpAccountDetail(
            id=deleted.detail_id,
            accountid=deleted.account_id,
            number=deleted.customer,
            deletionflag="1",
        ),
    )


class DeletionHandler:
    """Flags the SAP sales areas of deleted ERP account details (see the module docstring)."""

    def __init__(
        self,
        *,
        store: MessageStore,
        registry: KeyRegistry,
        applied: AppliedDigests,
        customers: CustomerFlow,
        s4: S4ODataClient,
        on_delete: OnDelete,
    ) -> None:
        self.store = store
        self.registry = registry
        self.applied = applied
        self.customers = customers
        self.s4 = s4
        self.on_delete = on_delete

    async def account_of_detail(self, detail_id: str) -> str | None:
        """The account a (deleted) detail belonged to, if the registry holds it."""

        def find() -> str | None:
            for target in (S4_TARGET, ECC_TARGET):
                entry = self.registry.by_detail(target, detail_id)
                if entry is not None:
                    return entry.account_id
            return None

        return await self.store.call(find)

    async def reconcile(
        self,
        snapshot: AccountSnapshot,
        entries: Iterable[KeyEntry],
        trace: Trace,
        *,
        message_id: str,
        dry_run: bool,
    ) -> list[RecordOutcome]:
        """Handle every registered sales area of the account whose detail no longer exists.

        ``entries``: the account's key registry entries (``KeyRegistry.of_account``).
        """
        present = snapshot.detail_ids if snapshot.account is not None else frozenset()
        gone = [
            deleted
            for entry in entries
            if entry.state == "confirmed"
            and (deleted := DeletedArea.of(entry)) is not None
            and deleted.detail_id not in present
        ]
        outcomes: list[RecordOutcome] = []
        for deleted in gone:
            detail_id = deleted.detail_id
            done = await self.store.call(functools.partial(self.applied.get, detail_id))
            if done is not None and done.action == DELETED:
                continue
            outcomes.append(
                await self._handle(deleted, trace, message_id=message_id, dry_run=dry_run)
            )
        return outcomes

    async def _handle(
        self, deleted: DeletedArea, trace: Trace, *, message_id: str, dry_run: bool
    ) -> RecordOutcome:
        common: dict[str, Any] = {
            "table": DETAIL_TABLE,
            "id": deleted.detail_id,
            "target": "s4hc" if deleted.s4 else "erp",
            "customer": deleted.customer,
        }
        where = deleted.label()
        if self.on_delete == "ignore":
            reason = f"deleted in Dataverse; {where} is left as it is in SAP (on_delete = ignore)"
            result = RecordResult(action=RecordAction.DISCARDED, reason=reason, **common)
            return await self._settled(deleted, result, dry_run, message_id)
        if dry_run:
            reason = f"deleted in Dataverse: would set the deletion flag of {where}"
            result = RecordResult(action=RecordAction.PLANNED, reason=reason, **common)
            return RecordOutcome(None, result)
        route = Route.S4HC if deleted.s4 else Route.ERP_ACCOUNT_DETAIL
        try:
            if deleted.s4 and not await self._s4_sales_area_exists(deleted):
                reason = f"deleted in Dataverse; {where} does not exist in S/4HANA Cloud"
                result = RecordResult(action=RecordAction.SKIPPED, reason=reason, **common)
                return await self._settled(deleted, result, dry_run, message_id)
            sent = await self.customers.deliver(
                deletion_message(deleted),
                RouteDecision(route, "ERP account detail deleted in Dataverse"),
                trace,
                message_id=f"{message_id}:{deleted.detail_id}:delete",
            )
        except D365SapError as error:
            result = RecordResult(action=RecordAction.ERROR, error=error_info(error), **common)
            return RecordOutcome(None, result, error)
        result = RecordResult(
            action=RecordAction.FLAGGED,
            route=route.value,
            idoc_number=sent.idoc_number,
            reason=f"deleted in Dataverse: deletion flag set on {where}",
            **common,
        )
        return await self._settled(deleted, result, dry_run, message_id)

    async def _settled(
        self, deleted: DeletedArea, result: RecordResult, dry_run: bool, message_id: str
    ) -> RecordOutcome:
        """Remember that this deletion was handled, so later messages leave it alone."""
        if not dry_run:
            entries = [Applied(deleted.detail_id, "", DELETED, message_id)]
            await self.store.call(functools.partial(self.applied.put, entries))
        return RecordOutcome(None, result)

    async def _s4_sales_area_exists(self, deleted: DeletedArea) -> bool:
        area = deleted.area
        found = await self.s4.query(
            "A_CustomerSalesArea",
            equals={
                "Customer": deleted.customer,
                "SalesOrganization": area.sales_org,
                "DistributionChannel": area.distribution_channel,
                "Division": area.division,
            },
            select=["Customer"],
        )
        return bool(found.entities)

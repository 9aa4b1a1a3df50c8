"""The native customer flow: Dataverse → S/4HANA Cloud or SAP ERP, one account per message.

A trigger (webhook, delta poll, ``d365sap load customers``) submits a
:class:`~d365sap.flows.dataverse_messages.DataverseChange`; this flow runs it:

1. **locate** the account the changed row belongs to (the message's ``account_id``, else the
   row's ``sap_accountid``, else — for a deleted detail — the key registry);
2. **read** the account with its ERP accounts, ERP account details and linked ERP organisations
   (:mod:`~d365sap.flows.dataverse_assembly`), fresh, whatever row the message named;
3. **deletions**: registered sales areas whose detail is gone get their deletion flag
   (:mod:`~d365sap.flows.dataverse_deletes`);
4. **each record** — detail (sales area) or ERP account (general data) — is routed like the
   package and created or updated in SAP (:mod:`~d365sap.flows.dataverse_sync`), or recognised
   as unchanged;
5. **write-back** of number, status and error to the rows, batched with other messages'
   (:mod:`~d365sap.flows.writeback`).

A failure reading Dataverse (429 storm, expired token after the retry, outage) fails the message
before anything was written: it is retried. Record failures are reported per record and written
back; see :mod:`~d365sap.flows.dataverse_result` for how they add up. ``dry_run`` messages (and
:meth:`DataverseCustomerFlow.dry_run`) read and map everything but write nowhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from d365sap.connectors.dataverse_batch import BatchResult
from d365sap.engine.dry_run import CHECK_FAILED, INVALID, DryRunReport, Problem
from d365sap.engine.store import MessageStore
from d365sap.engine.trace import Trace
from d365sap.engine.types import Description
from d365sap.errors import D365SapError, NotFoundError, PermanentError, TransientError
from d365sap.flows.dataverse_assembly import AccountReader, AccountSnapshot
from d365sap.flows.dataverse_deletes import DeletionHandler
from d365sap.flows.dataverse_messages import (
    CONTENT_TYPE,
    FLOW_NAME,
    ChangeKind,
    ChangeTable,
    DataverseChange,
    decode_change,
    describe_change,
)
from d365sap.flows.dataverse_result import (
    DataverseCustomerResult,
    RecordAction,
    RecordOutcome,
    summarize,
)
from d365sap.flows.dataverse_sync import RecordSyncer, RunContext, known_customers
from d365sap.flows.result import Outcome, error_info, http_status_for
from d365sap.flows.writeback import WriteBack, WriteBackBuffer, WriteBackPlanner


@dataclass(frozen=True)
class DataverseFlowOptions:
    """What the flow needs from the configuration besides its parts."""

    max_attempts: int = 8
    """The engine's attempts: the last one writes ``failed`` instead of ``pending`` back."""
    discard_status: int = 202


class DataverseCustomerFlow:
    """Runs :class:`DataverseChange` messages (see the module docstring)."""

    name: str = FLOW_NAME
    content_types: tuple[str, ...] = (CONTENT_TYPE,)

    def __init__(
        self,
        *,
        store: MessageStore,
        reader: AccountReader,
        syncer: RecordSyncer,
        deletions: DeletionHandler,
        planner: WriteBackPlanner,
        write_back: WriteBackBuffer,
        options: DataverseFlowOptions,
    ) -> None:
        self.store = store
        self.reader = reader
        self.syncer = syncer
        self.deletions = deletions
        self.planner = planner
        self.write_back = write_back
        self.options = options

    def describe(self, payload: bytes) -> Description:
        """Business key (the account when known) and queue; the route is decided when it runs."""
        return describe_change(payload)

    async def run(
        self, payload: bytes, trace: Trace, *, message_id: str
    ) -> DataverseCustomerResult:
        """Process one change; business and back-end errors are returned, not raised."""
        try:
            with trace.step("parse"):
                change = decode_change(payload)
        except D365SapError as error:
            return DataverseCustomerResult(
                outcome=Outcome.ERROR,
                http_status=http_status_for(error),
                flow=FLOW_NAME,
                error=error_info(error),
            )
        if trace.attempt is not None and trace.version is not None:
            attempt, version = trace.attempt, trace.version
        else:
            view = await self.store.call(lambda: self.store.status_of(message_id))
            attempt = view.attempts if view is not None else 1
            version = view.version if view is not None else 1
        final = attempt >= self.options.max_attempts
        return await self._run(change, trace, message_id, version=version, final=final)

    async def _run(
        self, change: DataverseChange, trace: Trace, message_id: str, *, version: int, final: bool
    ) -> DataverseCustomerResult:
        described: dict[str, object] = change.model_dump(mode="json")
        outcomes: list[RecordOutcome] = []
        account_id: str | None = None
        summary = _Summary(self.options, described)
        try:
            with trace.step("dataverse.locate", detail=f"{change.table.value} {change.id}") as step:
                account_id = await self._locate(change)
                step.detail = f"{step.detail}: account {account_id or 'unknown'}"
            if account_id is None:
                reason = (
                    f"{change.table.value} {change.id} no longer exists and names no account; "
                    "its details' own deletions are handled when they come"
                )
                return summary.discarded(reason, account_id)
            with trace.step("dataverse.read_account", detail=f"account {account_id}") as step:
                snapshot = await self.reader.read(account_id)
                step.detail = _read_detail(snapshot)
            # What the registry holds of the account, read once for all its records.
            entries = await self.store.call(
                lambda: self.syncer.registry.of_account(snapshot.account_id)
            )
            ctx = RunContext(
                message_id=message_id,
                version=version,
                snapshot=snapshot,
                trace=trace,
                force=change.change is ChangeKind.LOAD,
                dry_run=change.dry_run,
                known=known_customers(entries),
            )
            outcomes += await self.deletions.reconcile(
                snapshot, entries, trace, message_id=message_id, dry_run=change.dry_run
            )
            records = snapshot.records()
            if snapshot.account is not None and not records and not outcomes:
                reason = f"account {account_id} has no ERP account or ERP account detail"
                return summary.discarded(reason, account_id)
            if snapshot.account is None and not outcomes:
                reason = f"account {account_id} was deleted; SAP holds nothing of it to flag"
                return summary.discarded(reason, account_id)
            for record in records:
                with trace.step("record", detail=record.label) as step:
                    outcome = await self.syncer.sync(record, ctx)
                    step.detail = f"{record.label}: {outcome.action.value}"
                outcomes.append(outcome)
            failure = None
            if not change.dry_run:
                failure = await self._write_back(outcomes, snapshot, trace, message_id, final)
        except D365SapError as error:
            return summary.result(outcomes, account_id, failure=error)
        return summary.result(outcomes, account_id, failure=failure)

    async def _locate(self, change: DataverseChange) -> str | None:
        account_id = await self.reader.locate_account(change)
        if account_id is None and change.table is ChangeTable.ERP_ACCOUNT_DETAIL:
            account_id = await self.deletions.account_of_detail(str(change.id))
        return account_id

    async def _write_back(
        self,
        outcomes: list[RecordOutcome],
        snapshot: AccountSnapshot,
        trace: Trace,
        message_id: str,
        final: bool,
    ) -> D365SapError | None:
        """Write the outcomes back; the failure that should fail the message, if any."""
        plan = self.planner.plan(outcomes, snapshot, message_id=message_id, final=final)
        if not plan:
            return None
        with trace.step("dataverse.write_back", detail=f"{len(plan)} row(s)") as step:
            results = await self.write_back.write(plan)
            failed = [r for r in results if not r.ok]
            step.detail = f"{len(plan)} row(s), {len(failed)} failed"
        return _attach(outcomes, plan, results)

    async def dry_run(self, payload: bytes) -> DryRunReport:
        """What running ``payload`` would do now, reading Dataverse and SAP but writing nowhere."""
        try:
            change = decode_change(payload).model_copy(update={"dry_run": True})
        except D365SapError as error:
            return DryRunReport(
                outcome=INVALID,
                summary=f"invalid, nothing would be sent: {error.message}",
                flow=FLOW_NAME,
                problems=(Problem(getattr(error, "field", None), error.message),),
            )
        result = await self._run(change, Trace(), "dry-run", version=1, final=False)
        checks = tuple(
            f"{r.table} {r.id}: {r.action.value}" + (f" ({r.reason})" if r.reason else "")
            for r in result.records
        )
        problems = tuple(
            Problem(r.error.field, r.error.message) for r in result.records if r.error is not None
        )
        if result.outcome == Outcome.ERROR:
            message = result.error.message if result.error else "failed"
            return DryRunReport(
                outcome=CHECK_FAILED if not problems else INVALID,
                summary=f"would not go through: {message}",
                flow=FLOW_NAME,
                problems=problems or (Problem(None, message),),
                checks=checks,
            )
        planned = sum(1 for r in result.records if r.action == RecordAction.PLANNED)
        return DryRunReport(
            outcome="would_send" if planned else "would_discard",
            summary=f"{planned} record(s) would be sent to SAP"
            if planned
            else f"nothing would be sent: {result.reason}",
            flow=FLOW_NAME,
            checks=checks,
        )


class _Summary:
    """Builds the message's result (keeps the flow's method short)."""

    def __init__(self, options: DataverseFlowOptions, change: dict[str, object]) -> None:
        self.options = options
        self.change = change

    def discarded(self, reason: str, account_id: str | None) -> DataverseCustomerResult:
        return DataverseCustomerResult(
            outcome=Outcome.DISCARDED,
            http_status=self.options.discard_status,
            flow=FLOW_NAME,
            reason=reason,
            account_id=account_id,
            change=self.change,
        )

    def result(
        self,
        outcomes: list[RecordOutcome],
        account_id: str | None,
        *,
        failure: D365SapError | None,
    ) -> DataverseCustomerResult:
        return summarize(
            outcomes,
            flow=FLOW_NAME,
            account_id=account_id,
            change=self.change,
            discard_status=self.options.discard_status,
            failure=failure,
        )


def _read_detail(snapshot: AccountSnapshot) -> str:
    if snapshot.account is None:
        return f"account {snapshot.account_id}: deleted"
    return (
        f"account {snapshot.account_id}: {len(snapshot.erp_accounts)} ERP account(s), "
        f"{len(snapshot.details)} detail(s), {len(snapshot.orgs)} organization(s)"
    )


def _attach(
    outcomes: list[RecordOutcome], plan: list[WriteBack], results: list[BatchResult]
) -> D365SapError | None:
    """Note each write-back's result on its records; the first failure worth failing for."""
    by_row: dict[tuple[str, str], str] = {}
    failure: D365SapError | None = None
    for item, result in zip(plan, results, strict=True):
        key = (item.entity_set, item.row_id)
        if result.ok:
            by_row[key] = "written"
            continue
        error = result.error
        if isinstance(error, NotFoundError):
            by_row[key] = "row deleted meanwhile"
            continue
        text = error.message if isinstance(error, D365SapError) else (error or result.state)
        by_row[key] = f"failed: {text}"
        if failure is None:
            failure = _write_back_failure(result, item)
    for outcome in outcomes:
        record = outcome.record
        if record is not None:
            outcome.result.write_back = by_row.get((record.entity_set, record.row_id))
    return failure


def _write_back_failure(result: BatchResult, item: WriteBack) -> D365SapError:
    where = f"{item.entity_set}({item.row_id})"
    error = result.error
    if isinstance(error, TransientError) or result.state == "not_run":
        why = error.message if isinstance(error, D365SapError) else "the batch stopped before it"
        return TransientError(
            f"written to SAP; the write-back to Dataverse {where} failed and is retried: {why}",
            status=getattr(error, "status", None),
            retry_after=getattr(error, "retry_after", None),
        )
    message = error.message if isinstance(error, D365SapError) else str(error)
    return PermanentError(
        f"written to SAP; Dataverse refused the write-back to {where}: {message}",
        status=getattr(error, "status", None),
    )

"""Writing the outcome back to Dataverse: what to write, and ``$batch`` requests to write it.

**What** (:func:`plan_write_back`). The SAP customer number, the sync status, the last error,
the time and the message id go to the ERP account detail (general data: to the ERP account);
optionally the number to the ERP account's ``sap_number`` and the account's ``accountnumber``.
A record sent to SAP always gets its time and message id, plus the number, status and error
where they differ from the row as read; a record that was not sent gets at most those three
repaired, and nothing when they already hold. Every write-back comes back as a change (webhook
or change tracking): its records are unchanged and their columns already right, so nothing is
written and the echo ends after one round.

**How** (:class:`WriteBackBuffer`). Write-backs of messages running at the same time share
``$batch`` requests: each message submits its operations and awaits their results; the buffer
sends what has gathered once it holds ``batch_size`` operations or ``linger_seconds`` after the
first one arrived, one request at a time, while the next batch gathers. A quiet service writes
back after the linger (50 ms by default); a busy one sends full batches, up to 1000 operations in
one request against Dataverse's service protection limits (:mod:`~d365sap.flows.batch_buffer`;
the flow's account reads share the same requests). Each operation is a ``PATCH`` with
``If-Match: *``: it never creates a row, a deleted row answers 404 (reported, not fatal). A
transient failure of the request (429 after the retries, 5xx, timeout) fails the write-backs in
it; the message is then retried and, its records being unchanged, only writes back.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from d365sap.config_dataverse_flow import WriteBackSettings
from d365sap.connectors.dataverse_batch import BatchOperation, BatchResult
from d365sap.errors import TransientError
from d365sap.flows.batch_buffer import BatchBuffer
from d365sap.flows.dataverse_assembly import ACCOUNTS, ERP_ACCOUNTS, AccountSnapshot
from d365sap.flows.dataverse_result import SENT_ACTIONS, RecordAction, RecordOutcome

Row = Mapping[str, Any]


@dataclass(frozen=True)
class WriteBack:
    """The values to write to one row."""

    entity_set: str
    row_id: str
    values: dict[str, Any]

    def operation(self) -> BatchOperation:
        """``PATCH`` with ``If-Match: *``: update the row, never create it."""
        return BatchOperation.update(self.entity_set, self.row_id, self.values)


def _same(current: object, wanted: object) -> bool:
    """Whether the row already holds ``wanted`` (null and empty text are the same)."""
    if current in (None, "") and wanted in (None, ""):
        return True
    if isinstance(current, str) and isinstance(wanted, str):
        return current.strip() == wanted.strip()
    return current == wanted


def _differing(row: Row, wanted: Mapping[str, Any]) -> dict[str, Any]:
    return {
        name: value for name, value in wanted.items() if name and not _same(row.get(name), value)
    }


class WriteBackPlanner:
    """Turns record outcomes into the values to write back, per row."""

    def __init__(self, settings: WriteBackSettings) -> None:
        self.settings = settings

    def _error_text(self, outcome: RecordOutcome) -> str | None:
        result = outcome.result
        text = result.error.message if result.error else None
        if result.action == RecordAction.DISCARDED:
            text = result.reason
        if text and len(text) > self.settings.error_max_length:
            text = text[: self.settings.error_max_length - 1] + "…"
        return text

    def _status(self, outcome: RecordOutcome, *, final: bool) -> int | None:
        values = self.settings.status_values
        action = outcome.action
        if action in SENT_ACTIONS or action == RecordAction.UNCHANGED:
            return values.synchronized
        if action == RecordAction.DISCARDED:
            return values.discarded
        if action == RecordAction.ERROR:
            retried = isinstance(outcome.error, TransientError) and not final
            return values.pending if retried else values.failed
        return None

    def record_values(
        self, outcome: RecordOutcome, *, message_id: str, now: datetime, final: bool
    ) -> dict[str, Any]:
        """The write-back of one record's own row (empty: nothing to write)."""
        record = outcome.record
        status = self._status(outcome, final=final)
        if record is None or status is None:
            return {}
        if record.kind == "general" and outcome.result.route is None:
            return {}  # general data that was never routed to SAP ERP (e.g. S/4-linked, G3)
        cols = self.settings
        wanted: dict[str, Any] = {cols.status_column: status, cols.error_column: None}
        if outcome.action in (RecordAction.ERROR, RecordAction.DISCARDED):
            wanted[cols.error_column] = self._error_text(outcome)
        if record.kind == "sales_area" and outcome.result.customer:
            wanted[cols.customer_number_column] = outcome.result.customer
        changed = _differing(record.row, wanted)
        if outcome.action in SENT_ACTIONS:
            # Sent to SAP: always recorded (time, message). Its echo is unchanged and differs in
            # nothing, so it is not written back again.
            changed[cols.synced_on_column] = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        elif not changed:
            return {}
        changed[cols.message_id_column] = message_id
        return {name: value for name, value in changed.items() if name}

    def plan(
        self,
        outcomes: Sequence[RecordOutcome],
        snapshot: AccountSnapshot,
        *,
        message_id: str,
        final: bool,
        now: datetime | None = None,
    ) -> list[WriteBack]:
        """One :class:`WriteBack` per row that needs one."""
        moment = now or datetime.now(UTC)
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for outcome in outcomes:
            record = outcome.record
            if record is None:
                continue
            values = self.record_values(outcome, message_id=message_id, now=moment, final=final)
            if values:
                rows.setdefault((record.entity_set, record.row_id), {}).update(values)
        self._numbers(outcomes, snapshot, rows)
        return [
            WriteBack(entity_set, row_id, values) for (entity_set, row_id), values in rows.items()
        ]

    def _numbers(
        self,
        outcomes: Sequence[RecordOutcome],
        snapshot: AccountSnapshot,
        rows: dict[tuple[str, str], dict[str, Any]],
    ) -> None:
        """The created number on the ERP account (when empty) and on the account (if chosen)."""
        erp_rows = {
            str(row.get("sap_erpaccountid", "")).lower(): row for row in snapshot.erp_accounts
        }
        first_number: str | None = None
        for outcome in outcomes:
            number = outcome.result.customer
            record = outcome.record
            if record is None or not number or outcome.action == RecordAction.ERROR:
                continue
            first_number = first_number or number
            erp = erp_rows.get(record.erp_account_id or "")
            if (
                self.settings.erp_account_number
                and outcome.action == RecordAction.CREATED
                and erp is not None
                and not (erp.get("sap_number") or "").strip()
            ):
                key = (ERP_ACCOUNTS, str(record.erp_account_id))
                rows.setdefault(key, {})["sap_number"] = number
        account = snapshot.account
        mode = self.settings.account_number
        if account is None or first_number is None or mode == "never":
            return
        current = (account.get("accountnumber") or "").strip()
        if (mode == "when_empty" and not current) or (mode == "always" and current != first_number):
            rows.setdefault((ACCOUNTS, snapshot.account_id), {})["accountnumber"] = first_number


class WriteBackBuffer(BatchBuffer):
    """A :class:`BatchBuffer` taking write-backs (its reads may share the same requests)."""

    async def write(self, items: Sequence[WriteBack]) -> list[BatchResult]:
        """Write ``items``; one result per item, once the request holding them has answered."""
        return await self.submit([item.operation() for item in items])

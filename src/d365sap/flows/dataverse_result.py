"""The result of one native customer flow message: the uniform answer plus one line per record.

A message covers a whole account (see :mod:`d365sap.flows.dataverse_assembly`), so its result
is the engine's uniform :class:`~d365sap.flows.result.FlowResult` (outcome, HTTP status, error,
retry hint) summing up, and ``records``: what happened to each ERP account detail (sales area)
and ERP account (general data), and whether its outcome was written back to Dataverse.

How the records add up:

* any record failed with a transient error (or the write-back did): the message failed and is
  retried; records already applied are skipped on the retry (their digest is unchanged);
* else any record failed: the message failed (parked) with the first error;
* else the strongest success: ``created`` > ``updated`` > ``idoc_sent``;
* else discarded: every record was discarded, unchanged or skipped, with the reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, Field

from d365sap.errors import D365SapError, TransientError
from d365sap.flows.dataverse_assembly import SyncRecord
from d365sap.flows.result import ErrorInfo, FlowResult, Outcome, error_info, http_status_for


class RecordAction(StrEnum):
    """What happened to one record."""

    CREATED = "created"
    """SAP created the customer (or, for a known customer, the sales area)."""
    UPDATED = "updated"
    IDOC_SENT = "idoc_sent"
    FLAGGED = "flagged_for_deletion"
    """Deleted in Dataverse: the SAP sales area got its deletion flag."""
    UNCHANGED = "unchanged"
    """Nothing changed since it was last applied to SAP: not sent again."""
    DISCARDED = "discarded"
    SKIPPED = "skipped"
    PLANNED = "planned"
    """Dry run: what would be sent."""
    ERROR = "error"


SENT_ACTIONS = frozenset(
    {RecordAction.CREATED, RecordAction.UPDATED, RecordAction.IDOC_SENT, RecordAction.FLAGGED}
)


class RecordResult(BaseModel):
    """One record's line in the result."""

    table: str
    id: str
    action: RecordAction
    target: str | None = None
    route: str | None = None
    customer: str | None = None
    business_partner: str | None = None
    idoc_number: str | None = None
    reason: str | None = None
    error: ErrorInfo | None = None
    write_back: str | None = None


@dataclass
class RecordOutcome:
    """A record's outcome while the message runs (the error object kept for the summary)."""

    record: SyncRecord | None
    result: RecordResult
    error: D365SapError | None = None
    digests: list[tuple[str, str]] = field(default_factory=list)
    """Digests to record once the outcome is written back: (row id, digest)."""

    @property
    def action(self) -> RecordAction:
        """Shortcut to the result's action."""
        return self.result.action


class DataverseCustomerResult(FlowResult):
    """The uniform result with the account and one line per record."""

    account_id: str | None = None
    change: dict[str, object] = Field(default_factory=dict)
    records: list[RecordResult] = Field(default_factory=list)


_SUCCESS_ORDER = (
    (RecordAction.CREATED, Outcome.CREATED, 201),
    (RecordAction.UPDATED, Outcome.UPDATED, 200),
    (RecordAction.FLAGGED, Outcome.UPDATED, 200),
    (RecordAction.IDOC_SENT, Outcome.IDOC_SENT, 200),
)


def summarize(
    outcomes: list[RecordOutcome],
    *,
    flow: str,
    account_id: str | None,
    change: dict[str, object],
    discard_status: int,
    failure: D365SapError | None = None,
) -> DataverseCustomerResult:
    """The message's result from its records' outcomes (and a failure outside any record)."""
    records = [outcome.result for outcome in outcomes]
    common = {"flow": flow, "account_id": account_id, "change": change, "records": records}
    errors = [o.error for o in outcomes if o.error is not None]
    if failure is not None:
        errors.insert(0, failure)
    if errors:
        transient = next((e for e in errors if isinstance(e, TransientError)), None)
        chosen = transient or errors[0]
        targets = {o.result.target for o in outcomes if o.error is chosen}
        return DataverseCustomerResult(
            outcome=Outcome.ERROR,
            http_status=http_status_for(chosen),
            target=next(iter(targets), None),
            backend_status=getattr(chosen, "status", None),
            backend_message=getattr(chosen, "backend_message", None),
            error=error_info(chosen),
            **common,
        )
    actions = {outcome.action for outcome in outcomes}
    for action, outcome, status in _SUCCESS_ORDER:
        if action in actions:
            first = next(o.result for o in outcomes if o.action == action)
            return DataverseCustomerResult(
                outcome=outcome,
                http_status=status,
                target=first.target,
                route=first.route,
                idoc_number=first.idoc_number,
                keys=_keys(outcomes),
                **common,
            )
    reasons = [o.result.reason for o in outcomes if o.result.reason]
    return DataverseCustomerResult(
        outcome=Outcome.DISCARDED,
        http_status=discard_status,
        reason="; ".join(dict.fromkeys(reasons)) or "nothing to send",
        **common,
    )


def _keys(outcomes: list[RecordOutcome]) -> dict[str, str]:
    """Customer numbers per target system, for the message list and search."""
    keys: dict[str, str] = {}
    for outcome in outcomes:
        result = outcome.result
        if result.customer and result.target and result.target not in keys:
            keys[result.target] = result.customer
    return keys

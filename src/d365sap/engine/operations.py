"""Operator actions on stored messages: retry, resubmit a corrected payload, discard, dry run.

A message that failed stays in the store with every attempt, error and payload version (the dead
letter). These functions are the only way an operator changes such a message; the CLI and the
REST API are thin shells over them.

Every action is one guarded transaction: the status is changed with a conditional ``UPDATE``
(compare-and-set), so an operator can never overwrite what a worker is doing at the same moment,
and a message whose job a worker has just claimed is refused rather than queued twice. Each call
reports per message what changed or why it was refused; nothing is raised for a refusal, so a
bulk action goes on with the next message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, cast, runtime_checkable

import anyio.to_thread
from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from d365sap.engine.dry_run import UNSUPPORTED, DryRun, DryRunFlow, DryRunReport
from d365sap.engine.guard import newer_applied
from d365sap.engine.queue import DOING, remove_job
from d365sap.engine.runtime import Enqueuer, JobRequest
from d365sap.engine.store import MessageStore, keep_first_version, payload_hash
from d365sap.engine.tables import JobRow, MessageRow, MessageVersionRow
from d365sap.engine.types import Description
from d365sap.engine.views import (
    DISCARDED,
    DONE,
    FAILED,
    PROCESSING,
    QUEUED,
    RECEIVED,
    RETRYING,
    SUPERSEDED,
    MessageView,
)

RETRYABLE = frozenset({FAILED, RETRYING, SUPERSEDED})
"""Statuses an operator may queue again without ``force``."""
FORCE_RETRYABLE = RETRYABLE | {DONE, DISCARDED}
"""Settled on purpose: queued again only with ``force`` (it sends the data once more)."""
DISCARDABLE = frozenset({RECEIVED, QUEUED, RETRYING, FAILED, SUPERSEDED})
"""Statuses an operator may discard; ``processing`` is refused because a worker owns it."""
DEFAULT_SELECTION = (FAILED, RETRYING)
"""What ``--all-matching`` picks when no status is given: the messages that need an operator."""

NOT_FOUND = "not_found"
NOT_ALLOWED = "not_allowed"
IN_PROGRESS = "in_progress"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ActionResult:
    """What one action did to one message, or why it did nothing (``refusal`` set)."""

    message_id: str
    action: str
    applied: bool
    before: str | None
    after: str | None
    detail: str
    refusal: str | None = None
    version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form used by the REST API."""
        return {
            "message_id": self.message_id,
            "action": self.action,
            "applied": self.applied,
            "status_before": self.before,
            "status": self.after,
            "detail": self.detail,
            "refusal": self.refusal,
            "version": self.version,
        }


@dataclass(frozen=True)
class Selection:
    """A filter over stored messages, as ``messages list`` and ``--all-matching`` take it."""

    flow: str | None = None
    statuses: tuple[str, ...] = ()
    business_key: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int | None = None
    newest_first: bool = False


def select_messages(store: MessageStore, selection: Selection) -> list[MessageView]:
    """Every message matching ``selection`` (any of its statuses), oldest first by default.

    Oldest first is the order an operator's bulk action works in, so that messages of one
    record are queued again in the order they arrived.
    """
    found: dict[str, MessageView] = {}
    for status in selection.statuses or (None,):
        for message in store.list(
            flow=selection.flow,
            status=status,
            business_key=selection.business_key,
            since=selection.since,
            until=selection.until,
            limit=selection.limit,
            oldest_first=not selection.newest_first,
        ):
            found[message.id] = message
    ordered = sorted(found.values(), key=lambda m: m.seq, reverse=selection.newest_first)
    return ordered[: selection.limit] if selection.limit is not None else ordered


@runtime_checkable
class Describer(Protocol):
    """The part of a flow that re-derives route and key of a corrected payload."""

    def describe(self, payload: bytes) -> Description:
        """Route, business key and queue of ``payload``; empty if unreadable."""
        ...


class UnknownMessageError(LookupError):
    """No message has this id."""


class _RefusedError(Exception):
    """Rolls the action's transaction back; carries the refusal for the result."""

    def __init__(self, refusal: str, detail: str, before: str | None) -> None:
        super().__init__(detail)
        self.refusal = refusal
        self.detail = detail
        self.before = before


def lock_key_for(flow: str, route: str | None, business_key: str | None, message_id: str) -> str:
    """The ordering key the store gives a message (kept in step with ``MessageStore.accept``)."""
    if business_key:
        return f"{flow}:{route}:{business_key}"[:300]
    return f"{flow}:message:{message_id}"


def _why_not(action: str, status: str, *, force: bool) -> str:
    if status == PROCESSING:
        return "a worker is processing it right now; try again when it has settled"
    if status in (QUEUED, RECEIVED):
        return "it is already queued" if action != "discard" else "it cannot be discarded"
    if action == "discard":
        return f"it is already settled as {status}"
    if status in (DONE, DISCARDED) and not force:
        return f"it is {status}; use force to process it once more"
    return f"status {status} does not allow {action}"


class MessageOperations:
    """Retry, resubmit, discard and dry-run stored messages."""

    def __init__(
        self,
        store: MessageStore,
        enqueuer: Enqueuer,
        flows: Mapping[str, object] | None = None,
    ) -> None:
        self.store = store
        self.enqueuer = enqueuer
        self.flows: Mapping[str, object] = flows or {}

    # -- selection ----------------------------------------------------------------------------

    def select(self, selection: Selection) -> list[MessageView]:
        """Every message matching ``selection`` (see :func:`select_messages`)."""
        return select_messages(self.store, selection)

    # -- actions ------------------------------------------------------------------------------

    def retry(
        self,
        message_ids: Iterable[str],
        *,
        force: bool = False,
        progress: Callable[[ActionResult], None] | None = None,
    ) -> list[ActionResult]:
        """Queue each message again with its current payload version."""
        return self._each(message_ids, lambda mid: self.retry_one(mid, force=force), progress)

    def retry_one(self, message_id: str, *, force: bool = False) -> ActionResult:
        """Queue one message again (failed, retrying, superseded; done/discarded with ``force``)."""
        allowed = FORCE_RETRYABLE if force else RETRYABLE
        return self._requeue("retry", message_id, allowed, force=force)

    def resubmit(
        self,
        message_id: str,
        payload: bytes,
        *,
        comment: str | None = None,
        force: bool = False,
    ) -> ActionResult:
        """Keep ``payload`` as a new version beside the earlier ones and queue the message."""
        if not payload.strip():
            return ActionResult(
                message_id, "resubmit", False, None, None, "the payload is empty", NOT_ALLOWED
            )
        allowed = FORCE_RETRYABLE if force else RETRYABLE
        return self._requeue(
            "resubmit",
            message_id,
            allowed,
            force=force,
            payload=payload,
            comment=comment or "corrected and resubmitted by an operator",
        )

    def discard(
        self,
        message_ids: Iterable[str],
        reason: str,
        *,
        progress: Callable[[ActionResult], None] | None = None,
    ) -> list[ActionResult]:
        """Settle each message as discarded with the operator's reason."""
        return self._each(message_ids, lambda mid: self.discard_one(mid, reason), progress)

    def discard_one(self, message_id: str, reason: str) -> ActionResult:
        """Settle one message as discarded; its waiting job (embedded runtime) is removed.

        Other runtimes keep their job, but the processor skips a settled message.
        """
        reason = reason.strip()
        if not reason:
            raise ValueError("a reason is required to discard a message")
        now = _now()
        values = {
            "status": DISCARDED,
            "outcome": DISCARDED,
            "error": f"discarded by an operator: {reason}",
            "next_attempt_at": None,
            "finished_at": now,
            "updated_at": now,
        }

        def change(session: Session) -> ActionResult:
            _, before = self._guarded_update(
                session, "discard", message_id, DISCARDABLE, values, force=False
            )
            remove_job(session, message_id)
            return ActionResult(message_id, "discard", True, before, DISCARDED, reason)

        return self._transaction("discard", message_id, change)

    # -- dry run ------------------------------------------------------------------------------

    async def dry_run(self, message_id: str, payload: bytes | None = None) -> DryRun:
        """Run the message's flow without writing: ``payload``, or else the current version."""
        message = await anyio.to_thread.run_sync(lambda: self.store.status_of(message_id))
        if message is None:
            raise UnknownMessageError(message_id)
        tested = "submitted payload" if payload is not None else f"version {message.version}"
        flow = self.flows.get(message.flow)
        if not isinstance(flow, DryRunFlow):
            report = DryRunReport(
                outcome=UNSUPPORTED,
                summary=f"flow {message.flow!r} cannot dry-run",
                flow=message.flow,
            )
            return DryRun(message_id, tested, report)
        report = await flow.dry_run(message.payload if payload is None else payload)
        return DryRun(message_id, tested, report)

    # -- internals ----------------------------------------------------------------------------

    @staticmethod
    def _each(
        message_ids: Iterable[str],
        act: Callable[[str], ActionResult],
        progress: Callable[[ActionResult], None] | None,
    ) -> list[ActionResult]:
        """Act on each id once, in the given order, reporting every result as it comes."""
        results = []
        for message_id in dict.fromkeys(message_ids):
            results.append(act(message_id))
            if progress is not None:
                progress(results[-1])
        return results

    def _transaction(
        self, action: str, message_id: str, change: Callable[[Session], ActionResult]
    ) -> ActionResult:
        """Run ``change`` in one transaction; a refusal rolls it back and becomes the result."""
        try:
            with self.store.write() as session:
                return change(session)
        except _RefusedError as no:
            return ActionResult(
                message_id, action, False, no.before, no.before, no.detail, no.refusal
            )

    def _guarded_update(
        self,
        session: Session,
        action: str,
        message_id: str,
        allowed: frozenset[str],
        values: Mapping[str, object],
        *,
        force: bool,
    ) -> tuple[MessageRow, str]:
        """Compare-and-set the message row, then make sure no worker holds its job.

        Returns the updated row and the status it had before.
        """
        before = session.scalar(select(MessageRow.status).where(MessageRow.id == message_id))
        result = cast(
            CursorResult[Any],
            session.execute(
                update(MessageRow)
                .where(MessageRow.id == message_id, MessageRow.status.in_(allowed))
                .values(**values)
                .execution_options(synchronize_session=False)
            ),
        )
        if result.rowcount != 1:
            status = session.scalar(select(MessageRow.status).where(MessageRow.id == message_id))
            if status is None:
                raise _RefusedError(NOT_FOUND, f"no message {message_id}", None)
            raise _RefusedError(NOT_ALLOWED, _why_not(action, status, force=force), status)
        running = session.scalar(
            select(JobRow.id)
            .where(JobRow.message_id == message_id, JobRow.status == DOING)
            .with_for_update()
        )
        if running is not None:
            raise _RefusedError(
                IN_PROGRESS,
                "a worker has just picked it up; try again when it has settled",
                before,
            )
        row = session.get_one(MessageRow, message_id, populate_existing=True)
        return row, before or row.status

    def _requeue(
        self,
        action: str,
        message_id: str,
        allowed: frozenset[str],
        *,
        force: bool,
        payload: bytes | None = None,
        comment: str | None = None,
    ) -> ActionResult:
        now = _now()
        values: dict[str, object] = {
            "status": QUEUED,
            "next_attempt_at": None,
            "finished_at": None,
            "updated_at": now,
        }
        if payload is not None:
            values.update(
                payload=payload,
                payload_hash=payload_hash(payload),
                version=MessageRow.version + 1,
            )

        def change(session: Session) -> ActionResult:
            if payload is not None:
                keep_first_version(session, message_id)
            row, before = self._guarded_update(
                session, action, message_id, allowed, values, force=force
            )
            old_queue, old_lock = row.queue, row.lock_key
            if payload is not None:
                session.add(
                    MessageVersionRow(
                        message_id=message_id,
                        version=row.version,
                        content_type=row.content_type,
                        payload=payload,
                        comment=comment,
                        created_at=now,
                    )
                )
                self._redescribe(row, payload)
            if (row.queue, row.lock_key) != (old_queue, old_lock):
                # the job must follow the message to its new queue and key order
                remove_job(session, message_id)
            lock_key = row.lock_key or row.id
            self.enqueuer.enqueue(
                session, JobRequest(message_id=row.id, queue=row.queue, lock_key=lock_key)
            )
            detail = "queued again" if payload is None else f"version {row.version} queued"
            newer = newer_applied(session, lock_key, row.seq) if row.lock_key else None
            if newer is not None:
                detail += (
                    f"; message {newer}, which arrived later, was already applied to the same"
                    " record, so this one will end as superseded"
                )
            return ActionResult(message_id, action, True, before, QUEUED, detail, None, row.version)

        return self._transaction(action, message_id, change)

    def _redescribe(self, row: MessageRow, payload: bytes) -> None:
        """A corrected payload may name another record or target: follow it."""
        flow = self.flows.get(row.flow)
        if not isinstance(flow, Describer):
            return
        description = flow.describe(payload)
        if description.route is None:
            return  # unreadable: keep route and key so the message stays findable
        row.route = description.route
        row.business_key = description.business_key
        row.queue = description.queue
        row.lock_key = lock_key_for(row.flow, row.route, row.business_key, row.id)

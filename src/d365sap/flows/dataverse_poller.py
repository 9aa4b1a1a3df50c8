"""The scheduled delta poll: Dataverse change tracking as a trigger of the native customer flow.

Webhooks are fast but not guaranteed (Dataverse gives up on an endpoint after a few attempts,
and a webhook registered late misses what came before). The poll reads each configured table's
change tracking at an interval (``[dataverse_triggers] poll_interval_seconds``) through the
engine's :class:`~d365sap.engine.change_loader.ChangeLoader`, and submits one
:class:`~d365sap.flows.dataverse_messages.DataverseChange` per changed or deleted row to the
same flow the webhook feeds.

- **Checkpoints.** Each table has its checkpoint ``dataverse:<entity set>``, saved after every
  page; a restart continues from there, and an expired delta token is answered with the
  loader's bounded re-baseline, which hands on only rows that changed.
- **Stable source ids.** A change is submitted with the source id
  ``delta:<table>:<row id>:<version>`` (a deletion: ``…:deleted:<last version seen>``), so a
  page handed on again after a crash, or a change a webhook already reported under its own id
  and that the poll sees again, is deduplicated by the store where the ids match, and at worst
  processed once more on the rows as they are now (the flow reads Dataverse when it runs).
- **The first pass.** By default the first pass over a table only records the rows' versions
  (``poll_initial = "baseline"``): initial loads are the job of ``d365sap load customers``.
  With ``"submit"`` every row is handed on as a ``Load``.
- **One poller per checkpoint.** A second process polling the same table gets
  :class:`~d365sap.engine.checkpoints.CheckpointConflictError` and leaves that round to the
  other one.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from d365sap.config_triggers import ENTITY_SETS, DataverseTriggerSettings
from d365sap.connectors.dataverse import DataverseClient
from d365sap.connectors.dataverse_feed import DataverseFeed, row_identity
from d365sap.engine.change_loader import ChangeBatch, ChangeLoader, LoadReport
from d365sap.engine.checkpoints import CheckpointConflictError, CheckpointStore
from d365sap.engine.intake import Intake
from d365sap.errors import D365SapError
from d365sap.flows.dataverse_messages import (
    CONTENT_TYPE,
    FLOW_NAME,
    ChangeKind,
    ChangeSource,
    ChangeTable,
    DataverseChange,
    encode_change,
)

log = structlog.get_logger("d365sap.triggers")

ACCOUNT_LOOKUP_COLUMN = "_sap_accountid_value"
SOURCE_PREFIX = "delta:"


def checkpoint_name(table: ChangeTable) -> str:
    """The loader checkpoint of ``table``'s change tracking."""
    return f"dataverse:{ENTITY_SETS[table.value]}"


def delta_source_id(table: ChangeTable, row_id: str, version: str) -> str:
    """The source id of a changed row: the same row at the same version is one message."""
    return f"{SOURCE_PREFIX}{table.value}:{row_id}:{version}"


def deletion_source_id(table: ChangeTable, row_id: str, last_version: str | None) -> str:
    """The source id of a deleted row (with the last version seen, as a row id may come back)."""
    return f"{SOURCE_PREFIX}{table.value}:{row_id}:deleted:{last_version or '-'}"


def _account_of(table: ChangeTable, row_id: str, row: Mapping[str, Any] | None) -> uuid.UUID | None:
    if table is ChangeTable.ACCOUNT:
        return uuid.UUID(row_id)
    value = row.get(ACCOUNT_LOOKUP_COLUMN) if row is not None else None
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


@dataclass
class PollStats:
    """What the poll did since the process started, per table and in total."""

    rounds: int = 0
    rebaselines: int = 0
    submitted: int = 0
    duplicates: int = 0
    errors: int = 0
    last_error: str | None = None
    reports: dict[str, LoadReport] = field(default_factory=dict)


class TablePoll:
    """The change tracking of one table, handed to the flow as messages."""

    def __init__(
        self,
        table: ChangeTable,
        *,
        intake: Intake,
        checkpoints: CheckpointStore,
        client: DataverseClient,
        initial: Literal["baseline", "submit"] = "baseline",
        rebaseline_cap: int = 10_000,
        page_size: int | None = None,
    ) -> None:
        self.table = table
        self.intake = intake
        self.checkpoints = checkpoints
        self.initial = initial
        self.name = checkpoint_name(table)
        primary_key = f"{table.value}id"
        select = [primary_key]
        if table is not ChangeTable.ACCOUNT:
            select.append(ACCOUNT_LOOKUP_COLUMN)
        feed = DataverseFeed(client, ENTITY_SETS[table.value], select=select, page_size=page_size)
        self.identity = row_identity(primary_key)
        self.loader = ChangeLoader(
            checkpoints, self.name, feed, self.identity, rebaseline_cap=rebaseline_cap
        )
        self.submitted = 0
        self.duplicates = 0

    async def run(self) -> LoadReport:
        """Read from the checkpoint to the end of the current pass, submitting as it goes."""
        return await self.loader.run(self._handle)

    async def _handle(self, batch: ChangeBatch) -> None:
        if batch.phase == "initial" and self.initial == "baseline":
            return  # versions are recorded by the loader; nothing is handed to the flow
        identities = [self.identity(row) for row in batch.upserts]
        ids = [row_id for row_id, _ in identities] + list(batch.removals)
        known = await self.checkpoints.store.call(
            lambda: self.checkpoints.known_versions(self.name, ids)
        )
        submissions: list[tuple[DataverseChange, str]] = []
        for row, (row_id, version) in zip(batch.upserts, identities, strict=True):
            if batch.phase == "initial":
                kind = ChangeKind.LOAD
            else:
                kind = ChangeKind.UPDATE if row_id in known else ChangeKind.CREATE
            change = DataverseChange(
                table=self.table,
                id=uuid.UUID(row_id),
                account_id=_account_of(self.table, row_id, row),
                change=kind,
                source=ChangeSource.DELTA,
                version=int(version) if version.isdigit() else None,
            )
            submissions.append((change, delta_source_id(self.table, row_id, version)))
        for row_id in batch.removals:
            change = DataverseChange(
                table=self.table,
                id=uuid.UUID(row_id),
                account_id=_account_of(self.table, row_id, None),
                change=ChangeKind.DELETE,
                source=ChangeSource.DELTA,
            )
            submissions.append((change, deletion_source_id(self.table, row_id, known.get(row_id))))
        await self._submit(submissions, batch.checkpoint)

    async def _submit(self, submissions: Sequence[tuple[DataverseChange, str]], name: str) -> None:
        correlation_id = uuid.uuid4().hex  # one per page: the messages a poll round handed on
        results = await asyncio.gather(
            *(
                self.intake.submit(
                    FLOW_NAME,
                    encode_change(change),
                    content_type=CONTENT_TYPE,
                    correlation_id=correlation_id,
                    source_id=source_id,
                )
                for change, source_id in submissions
            )
        )
        duplicates = sum(1 for result in results if result.duplicate)
        self.submitted += len(results) - duplicates
        self.duplicates += duplicates
        log.info(
            "delta changes submitted",
            checkpoint=name,
            submitted=len(results) - duplicates,
            duplicates=duplicates,
        )


class DataversePoller:
    """Polls each configured table's change tracking, one after the other, at an interval."""

    def __init__(self, polls: Sequence[TablePoll], *, interval_seconds: float) -> None:
        self.polls = list(polls)
        self.interval_seconds = interval_seconds
        self.stats = PollStats()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def poll_once(self) -> dict[str, LoadReport]:
        """One round over every table; a table that fails is logged and left for the next."""
        reports: dict[str, LoadReport] = {}
        for poll in self.polls:
            try:
                reports[poll.name] = await poll.run()
            except CheckpointConflictError as conflict:
                log.warning("delta poll skipped: another process advanced it", error=str(conflict))
            except D365SapError as failure:
                self.stats.errors += 1
                self.stats.last_error = f"{poll.name}: {failure}"
                log.error("delta poll failed", checkpoint=poll.name, error=str(failure))
        self.stats.rounds += 1
        self.stats.rebaselines += sum(1 for report in reports.values() if report.rebaselined)
        self.stats.submitted = sum(poll.submitted for poll in self.polls)
        self.stats.duplicates = sum(poll.duplicates for poll in self.polls)
        self.stats.reports.update(reports)
        return reports

    def poke(self) -> None:
        """Start the next round now instead of at the end of the interval."""
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                await self.poll_once()
            except Exception:  # never let one bad round end the schedule
                log.exception("delta poll round failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval_seconds)

    def start(self) -> None:
        """Run the schedule as a background task of the running loop."""
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.create_task(self._loop(), name="dataverse-delta-poll")

    async def stop(self) -> None:
        """Stop the schedule; a round under way is cancelled (its pages are checkpointed)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def delta_poller(
    settings: DataverseTriggerSettings,
    *,
    intake: Intake,
    checkpoints: CheckpointStore,
    client: DataverseClient,
    rebaseline_cap: int,
    page_size: int | None = None,
) -> DataversePoller | None:
    """The poll configured in ``[dataverse_triggers]``, or None when it is switched off."""
    if not settings.poll:
        return None
    polls = [
        TablePoll(
            ChangeTable(table),
            intake=intake,
            checkpoints=checkpoints,
            client=client,
            initial=settings.poll_initial,
            rebaseline_cap=rebaseline_cap,
            page_size=page_size,
        )
        for table in settings.poll_tables
    ]
    return DataversePoller(polls, interval_seconds=settings.poll_interval_seconds)

"""A resumable, checkpointed reader of a remote table's changes.

:class:`ChangeLoader` reads a :class:`ChangeFeed` (for Dataverse: change tracking through
``DataverseClient.changes``) and hands each page's changed rows and removals to a handler, then
saves the checkpoint, page by page:

- the first run is an ``initial`` pass over every row; it ends with a delta link, and every later
  run is a ``delta`` pass from the saved delta link;
- a restart continues from the last saved page (``next_link``), never from zero. Each save
  also records the version of every row handed on, so rows are recognised when they come
  again: in a re-baseline, and in a full pass that has to start over because its saved page
  link is no longer honoured. A page handed on but not saved (a crash in between) is handed on
  again: the handler must tolerate that (the message store's deduplication does);
- an expired delta token (:class:`~d365sap.errors.DeltaTokenExpiredError`) starts a
  ``rebaseline``: a full read whose rows are compared with the versions last handed on. Only
  rows that changed or are unknown are handed on, and known rows the pass never met are handed
  on as removals (deleted while the token was expired). At most ``rebaseline_cap`` rows are handed
  on in one re-baseline: the page that would pass the cap is held back, the checkpoint gets an
  alarm and :class:`RebaselineCapExceededError` is raised; a run with a higher cap continues
  from that page.

The engine knows nothing of Dataverse: the feed's pages only need ``upserts``,
``removals``, ``next_link`` and ``delta_link``, and ``identity`` gives a row's id and version.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from d365sap.engine.checkpoints import Advance, Checkpoint, CheckpointStore
from d365sap.errors import D365SapError, DeltaTokenExpiredError, PermanentError

Row = Mapping[str, Any]
Identity = Callable[[Row], tuple[str, str]]
"""A row's id and version (Dataverse: the primary key and the ETag's version number)."""


class FeedPage(Protocol):
    """One page of a change feed (``DataverseClient.changes`` yields these)."""

    @property
    def upserts(self) -> Sequence[Row]: ...
    @property
    def removals(self) -> Sequence[str]: ...
    @property
    def next_link(self) -> str | None: ...
    @property
    def delta_link(self) -> str | None: ...


class ChangeFeed(Protocol):
    """Reads a table's changes from ``link``; from scratch (every row) when it is ``None``."""

    def read(self, link: str | None) -> AsyncIterator[FeedPage]: ...


@dataclass(frozen=True)
class ChangeBatch:
    """What the handler gets for one page: rows to apply and ids removed."""

    upserts: list[Row]
    removals: list[str]
    phase: str
    checkpoint: str


Handler = Callable[[ChangeBatch], Awaitable[None]]


@dataclass(frozen=True)
class LoadReport:
    """One run: pages and rows read, rows handed on, whether it re-baselined."""

    pages: int = 0
    rows: int = 0
    emitted: int = 0
    removals: int = 0
    rebaselined: bool = False
    phase: str = ""
    delta_link: str | None = None


class RebaselineCapExceededError(D365SapError):
    """A re-baseline would hand on more rows than allowed; an operator has to look first."""

    def __init__(self, checkpoint: str, emitted: int, pending: int, cap: int) -> None:
        super().__init__(
            f"re-baseline of {checkpoint!r} stopped: {emitted} rows handed on and {pending} more "
            f"changed on the next page would pass the cap of {cap}; raise the cap or reset the "
            "checkpoint"
        )
        self.checkpoint = checkpoint
        self.emitted = emitted
        self.pending = pending
        self.cap = cap


class ChangeLoader:
    """Runs the feed of one checkpoint (``name``) through a handler, saving after each page."""

    def __init__(
        self,
        checkpoints: CheckpointStore,
        name: str,
        feed: ChangeFeed,
        identity: Identity,
        *,
        rebaseline_cap: int = 10_000,
    ) -> None:
        if rebaseline_cap < 0:
            raise ValueError("rebaseline_cap must not be negative")
        self.checkpoints = checkpoints
        self.name = name
        self.feed = feed
        self.identity = identity
        self.rebaseline_cap = rebaseline_cap
        self._call = checkpoints.store.call
        self._current: Checkpoint
        self._report = LoadReport()

    async def run(self, handler: Handler) -> LoadReport:
        """Read from the checkpoint to the end of the current pass (a delta link)."""
        self._current = await self._call(lambda: self.checkpoints.open(self.name))
        self._report = LoadReport()
        if self._current.pass_id is None:  # never run: every row, from the start
            await self._start_pass("initial")
        try:
            await self._pass(handler)
        except DeltaTokenExpiredError:
            if self._current.phase != "delta":
                raise
            await self._start_pass("rebaseline")
            self._report = replace(self._report, rebaselined=True)
            await self._pass(handler)
        current = self._current
        return replace(self._report, phase=current.phase, delta_link=current.delta_link)

    async def _save(self, advance: Advance) -> None:
        current = self._current
        self._current = await self._call(lambda: self.checkpoints.save(current, advance))

    async def _start_pass(self, phase: str) -> None:
        current = self._current
        await self._save(
            Advance(
                phase=phase,
                next_link=None,
                delta_link=current.delta_link if phase == "delta" else None,
                pass_id=str(uuid.uuid4()),
                pages=0,
                rows=0,
                emitted=0,
                emitted_total=current.emitted_total,
                passes=current.passes,
                alarm=current.alarm,
            )
        )

    async def _pass(self, handler: Handler) -> None:
        """One pass from where the checkpoint stands to its delta link."""
        current = self._current
        resuming = current.next_link is not None
        link = current.next_link or (current.delta_link if current.phase == "delta" else None)
        if current.phase == "delta" and current.next_link is None:
            await self._start_pass("delta")
        first = True
        try:
            async for page in self.feed.read(link):
                first = False
                await self._page(page, handler)
        except PermanentError as refused:
            full = self._current.phase in ("initial", "rebaseline")
            if not (first and resuming and full) or isinstance(refused, DeltaTokenExpiredError):
                raise
            # The saved page link of a full pass is no longer honoured (paging cookies do not
            # outlive every restart): read the pass again; known versions keep it from handing
            # rows on twice.
            async for page in self.feed.read(None):
                await self._page(page, handler)

    async def _page(self, page: FeedPage, handler: Handler) -> None:
        current = self._current
        seen = [self.identity(row) for row in page.upserts]
        removed_ids = list(page.removals)
        ids = [row_id for row_id, _ in seen] + removed_ids
        known = await self._call(lambda: self.checkpoints.known_versions(self.name, ids))
        changed = [
            row
            for row, (row_id, version) in zip(page.upserts, seen, strict=True)
            if known.get(row_id) != version
        ]
        removals = [row_id for row_id in removed_ids if row_id in known]
        end = page.next_link is None
        if end and not page.delta_link:
            raise PermanentError(f"change feed of {self.name!r} ended without a delta link")
        unseen: list[str] = []
        if end and current.phase != "delta" and current.pass_id is not None:
            pass_id = current.pass_id
            met = {row_id for row_id, _ in seen}
            stale = await self._call(lambda: self.checkpoints.unseen(self.name, pass_id))
            unseen = [row_id for row_id in stale if row_id not in met and row_id not in removals]
        count = len(changed) + len(removals) + len(unseen)
        if current.phase == "rebaseline" and current.emitted + count > self.rebaseline_cap:
            await self._alarm(count)
        if count:
            await handler(ChangeBatch(list(changed), removals + unseen, current.phase, self.name))
        full = current.phase != "delta"
        await self._save(
            Advance(
                phase="delta" if end else current.phase,
                next_link=page.next_link,
                delta_link=page.delta_link if end else current.delta_link,
                pass_id=current.pass_id,
                pages=current.pages + 1,
                rows=current.rows + len(seen) + len(removed_ids),
                emitted=current.emitted + count,
                emitted_total=current.emitted_total + count,
                passes=current.passes + (1 if end else 0),
                alarm=None,
                seen=seen if full else [(i, v) for i, v in seen if known.get(i) != v],
                removed=removals + unseen,
            )
        )
        report = self._report
        self._report = replace(
            report,
            pages=report.pages + 1,
            rows=report.rows + len(seen) + len(removed_ids),
            emitted=report.emitted + len(changed),
            removals=report.removals + len(removals) + len(unseen),
        )

    async def _alarm(self, pending: int) -> None:
        current = self._current
        error = RebaselineCapExceededError(self.name, current.emitted, pending, self.rebaseline_cap)
        await self._save(
            Advance(
                **{
                    name: getattr(current, name)
                    for name in Advance.__dataclass_fields__
                    if name not in ("alarm", "seen", "removed")
                },
                alarm=error.message,
            )
        )
        raise error

"""The initial load of customers from Dataverse: one message per account, resumable by page.

``d365sap load customers`` (``cli_load.py``) drives this module. It pages through the accounts
(all of them, or those of the operator's ``--filter``), passes over those without ERP data (no
``sap_erpaccount`` row: nothing for SAP), submits one
:class:`~d365sap.flows.dataverse_messages.DataverseChange` (``table=account``, ``change=Load``,
``source=load``) per account to the native customer flow, and saves a checkpoint after every
page:

- **Run.** A load is a run with its own id; its messages carry the source id
  ``load:<run>:<account id>``. A page submitted again (the process was killed after submitting
  it, before its checkpoint was saved) is answered by the store with the messages already there:
  nothing is doubled.
- **Checkpoint.** ``load:customers:<digest of the filter and the mode>`` holds the run id (as
  the pass id), the link of the next page and the counters; ``passes`` becomes 1 when the run
  has read its last page. A run that did not finish is resumed by the next invocation with the
  same filter (unless told to restart), from the page after the last one saved; a saved link
  the service no longer honours starts the pages over under the same run id (deduplicated).
- **Dry run.** ``dry_run=True`` on every message: the flow maps and validates, and writes
  nowhere. Dry runs have their own checkpoint and never resume a real load.

The load itself never reads an account's rows: the flow does, when it processes the message.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from d365sap.connectors.dataverse import DataverseClient
from d365sap.connectors.dataverse_keys import etag_version, query_string
from d365sap.engine.checkpoints import Advance, Checkpoint, CheckpointStore
from d365sap.engine.intake import Intake
from d365sap.errors import PermanentError
from d365sap.flows.dataverse_messages import (
    CONTENT_TYPE,
    FLOW_NAME,
    ChangeKind,
    ChangeSource,
    ChangeTable,
    DataverseChange,
    encode_change,
)

ENTITY_SET = "accounts"
ERP_ACCOUNTS = "sap_account_sap_erpaccount"
FIRST_PAGE_OPTIONS = (
    ("$select", "accountid"),
    ("$expand", f"{ERP_ACCOUNTS}($select=sap_erpaccountid)"),
    ("$orderby", "accountid"),
)
CHECKPOINT_PREFIX = "load:customers:"


def checkpoint_name(filter_text: str | None, *, dry_run: bool) -> str:
    """The checkpoint of loads with this filter and mode."""
    digest = hashlib.sha256(f"{dry_run}\n{filter_text or ''}".encode()).hexdigest()[:16]
    return f"{CHECKPOINT_PREFIX}{'dry-run:' if dry_run else ''}{digest}"


def run_prefix(run_id: str) -> str:
    """The source id prefix of a run's messages."""
    return f"load:{run_id}:"


def first_page(user_filter: str | None) -> str:
    """The query of the first page (below the service root): every account the filter selects,
    with the ids of its ERP accounts.

    Accounts without ERP accounts are passed over by the load itself rather than by a
    ``sap_account_sap_erpaccount/any()`` filter: the expanded ids cost Dataverse little, and a
    lambda over a large table is what a query should not ask for page after page.
    """
    options = list(FIRST_PAGE_OPTIONS)
    if user_filter and user_filter.strip():
        options.append(("$filter", user_filter.strip()))
    return f"{ENTITY_SET}?{query_string(options)}"


def has_erp_data(row: dict[str, Any]) -> bool:
    """Whether the account has at least one ERP account (a customer master in some SAP system)."""
    related = row.get(ERP_ACCOUNTS)
    return isinstance(related, list) and bool(related)


@dataclass(frozen=True)
class LoadRun:
    """The run a load works on, and whether it continues an earlier invocation."""

    run_id: str
    checkpoint: str
    resumed: bool
    start_link: str | None
    accounts_before: int
    submitted_before: int

    @property
    def prefix(self) -> str:
        return run_prefix(self.run_id)


@dataclass(frozen=True)
class PageDone:
    """One page read and submitted."""

    accounts: int
    submitted: int
    duplicates: int
    without_erp_data: int
    next_link: str | None


class CustomerLoad:
    """Reads the accounts page by page and submits one message per account."""

    def __init__(
        self,
        client: DataverseClient,
        intake: Intake,
        checkpoints: CheckpointStore,
        *,
        user_filter: str | None = None,
        dry_run: bool = False,
        page_size: int | None = None,
    ) -> None:
        self.client = client
        self.intake = intake
        self.checkpoints = checkpoints
        self.user_filter = user_filter
        self.query = first_page(user_filter)
        self.dry_run = dry_run
        self.page_size = page_size
        self.name = checkpoint_name(user_filter, dry_run=dry_run)
        self._current: Checkpoint | None = None

    async def _call(self, function: Callable[[], Any]) -> Any:
        return await self.checkpoints.store.call(function)

    async def prepare(self, *, restart: bool = False) -> LoadRun:
        """The run to work on: the unfinished one of this filter, or a new one."""
        current: Checkpoint = await self._call(lambda: self.checkpoints.open(self.name))
        unfinished = current.pass_id is not None and current.passes == 0
        if unfinished and not restart:
            self._current = current
            assert current.pass_id is not None
            return LoadRun(
                run_id=current.pass_id,
                checkpoint=self.name,
                resumed=True,
                start_link=current.next_link,
                accounts_before=current.rows,
                submitted_before=current.emitted,
            )
        run_id = str(uuid.uuid4())
        self._current = current
        await self._save(
            Advance(
                phase="initial",
                next_link=None,
                delta_link=None,
                pass_id=run_id,
                pages=0,
                rows=0,
                emitted=0,
                emitted_total=current.emitted_total,
                passes=0,
            )
        )
        return LoadRun(run_id, self.name, False, None, 0, 0)

    async def _save(self, advance: Advance) -> None:
        current = self._current
        assert current is not None
        self._current = await self._call(lambda: self.checkpoints.save(current, advance))

    async def count(self) -> int | None:
        """How many accounts the load will read (with or without ERP data), if Dataverse says.

        Dataverse counts to 5000 at most: beyond that the number is a lower bound.
        """
        options = [("$filter", self.user_filter.strip())] if self.user_filter else []
        query = self.client.url(f"{ENTITY_SET}/$count?{query_string(options)}".rstrip("?"))
        response = await self.client.send(
            "GET",
            query,
            headers={"Accept": "text/plain"},
            what=f"GET {ENTITY_SET}/$count",
        )
        if response.status_code != 200:
            return None
        text = response.text.strip().lstrip("\ufeff")
        return int(text) if text.isdigit() else None

    async def run(self, run: LoadRun, on_page: Callable[[PageDone], Awaitable[None]]) -> None:
        """Read from where ``run`` stands to the last page, submitting and saving page by page."""
        try:
            await self._pages(run, run.start_link, on_page)
        except PermanentError:
            if run.start_link is None:
                raise
            # The saved page link is no longer honoured: read the pages again under the same
            # run id; the accounts already submitted are answered as duplicates.
            await self._pages(run, None, on_page)

    async def _pages(
        self, run: LoadRun, start: str | None, on_page: Callable[[PageDone], Awaitable[None]]
    ) -> None:
        # The first page's query goes in as the link to start from: it carries an $expand,
        # which the client's query builder does not offer.
        link = start or self.client.url(self.query)
        pages = self.client.pages(ENTITY_SET, page_size=self.page_size, start=link)
        async for page in pages:
            rows = [row for row in page.rows if has_erp_data(row)]
            submitted, duplicates = await self._submit(run, rows)
            current = self._current
            assert current is not None
            end = page.next_link is None
            await self._save(
                Advance(
                    phase="initial",
                    next_link=page.next_link,
                    delta_link=None,
                    pass_id=run.run_id,
                    pages=current.pages + 1,
                    rows=current.rows + len(page.rows),
                    emitted=current.emitted + submitted,
                    emitted_total=current.emitted_total + submitted,
                    passes=1 if end else 0,
                )
            )
            skipped = len(page.rows) - len(rows)
            await on_page(PageDone(len(page.rows), submitted, duplicates, skipped, page.next_link))

    async def _submit(self, run: LoadRun, rows: list[dict[str, Any]]) -> tuple[int, int]:
        changes: list[tuple[DataverseChange, str]] = []
        for row in rows:
            account = uuid.UUID(str(row["accountid"]))
            version = etag_version(row.get("@odata.etag"))
            change = DataverseChange(
                table=ChangeTable.ACCOUNT,
                id=account,
                account_id=account,
                change=ChangeKind.LOAD,
                source=ChangeSource.LOAD,
                version=int(version) if version and version.isdigit() else None,
                dry_run=self.dry_run,
            )
            changes.append((change, f"{run.prefix}{account}"))
        results = await asyncio.gather(
            *(
                self.intake.submit(
                    FLOW_NAME,
                    encode_change(change),
                    content_type=CONTENT_TYPE,
                    correlation_id=run.run_id.replace("-", ""),
                    source_id=source_id,
                )
                for change, source_id in changes
            )
        )
        duplicates = sum(1 for result in results if result.duplicate)
        return len(results) - duplicates, duplicates

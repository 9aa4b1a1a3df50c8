"""Client for the Dataverse Web API v9.2 (Dynamics 365): reads, change tracking, writes, $batch.

Built on :class:`~d365sap.connectors.dataverse_http.DataverseSession` (token, throttle, retries
on 401 and 429). What it offers:

- :meth:`DataverseClient.get` one row by id or alternate key;
- :meth:`DataverseClient.pages` a query page by page (``Prefer: odata.maxpagesize``, following
  ``@odata.nextLink``), resumable from a saved next link;
- :meth:`DataverseClient.changes` change tracking: the first call (no link) returns every row
  and ends with an ``@odata.deltaLink``; following that link returns what was created, changed
  or deleted since, and a new delta link. An expired token raises
  :class:`~d365sap.errors.DeltaTokenExpiredError`;
- :meth:`create`, :meth:`update` (``If-Match``: the ETag, or ``*`` so an update never
  creates), :meth:`upsert` by key (``create_only`` → ``If-None-Match: *``, ``update_only`` →
  ``If-Match: *``), :meth:`delete`;
- :meth:`batch`: operations and change sets in ``$batch`` requests of ``chunk_size``.

Failures are d365sap's error tree: 429/5xx/timeouts :class:`TransientError` (with
``retry_after``), 412 :class:`PreconditionFailedError`, 404 :class:`NotFoundError`, other 4xx
:class:`PermanentError` with Dataverse's code and message.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2

from d365sap.connectors import dataverse_batch as batching
from d365sap.connectors.dataverse_batch import BatchItem, BatchResult, upsert_headers
from d365sap.connectors.dataverse_errors import SYSTEM, failure
from d365sap.connectors.dataverse_http import DataverseSession
from d365sap.connectors.dataverse_keys import RowKey, check_name, columns, query_string, row_path
from d365sap.errors import PermanentError, TransientError, ValidationError

MAX_PAGE_SIZE = 5000
_ENTITY_ID = re.compile(
    r"\(([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\)$"
)
_ORDER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*( (asc|desc))?$")
_DELETED = "/$deletedEntity"


@dataclass(frozen=True)
class Page:
    """One page of a query: its rows and the link to the next page (``None`` on the last)."""

    rows: list[dict[str, Any]]
    next_link: str | None


@dataclass(frozen=True)
class DeltaPage:
    """One page of change tracking.

    ``upserts`` are rows created or changed (every row on the first read), ``removals`` the ids
    of rows deleted. A page with ``next_link`` has more pages after it; the last page carries
    ``delta_link``, the link that returns the changes after this read.
    """

    upserts: list[dict[str, Any]]
    removals: list[str]
    next_link: str | None
    delta_link: str | None


@dataclass(frozen=True)
class WriteResult:
    """A successful write.

    ``row_id`` is the id of the row written (from ``OData-EntityId``), ``row`` the row when it
    was asked for (``return_row``), ``created`` whether a row was created (``None`` when an
    upsert answered 204, which does not say).
    """

    status: int
    row_id: str | None
    entity_id: str | None
    row: dict[str, Any] | None
    created: bool | None

    @property
    def etag(self) -> str | None:
        """The row's ETag after the write, when the row came back."""
        return None if self.row is None else self.row.get("@odata.etag")


def _values(values: Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(values, Mapping):
        raise ValidationError("values", "a mapping of column names to values is needed")
    return values


def _page_size(page_size: int) -> int:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValidationError("page_size", f"must be between 1 and {MAX_PAGE_SIZE}")
    return page_size


def _order(orderby: Sequence[str] | None) -> str | None:
    if orderby is None:
        return None
    for index, item in enumerate(orderby):
        if not isinstance(item, str) or not _ORDER.match(item):
            raise ValidationError(f"orderby[{index}]", f"{item!r} is not 'column [asc|desc]'")
    return ",".join(orderby) or None


def _expand(expand: Sequence[str] | None) -> str | None:
    if expand is None:
        return None
    for index, item in enumerate(expand):
        if not isinstance(item, str) or not item or any(c in item for c in "&#?"):
            raise ValidationError(f"expand[{index}]", f"{item!r} is not a navigation to expand")
    return ",".join(expand) or None


def _read_target(path: str, select: Sequence[str] | None, expand: Sequence[str] | None) -> str:
    options = [("$select", columns(select, "select")), ("$expand", _expand(expand))]
    query = query_string((name, value) for name, value in options if value)
    return f"{path}?{query}" if query else path


def _removal(item: Mapping[str, Any]) -> str | None:
    """The id of a ``$deletedEntity`` (OData 4.0 JSON, Dataverse) or ``@removed`` entry."""
    context = str(item.get("@odata.context", ""))
    if context.endswith(_DELETED) or (
        set(item) <= {"@odata.context", "id", "reason"} and "id" in item
    ):
        return str(item["id"]).lower()
    if "@removed" in item:
        match = _ENTITY_ID.search(str(item.get("@id", "")))
        if match:
            return match.group(1).lower()
    return None


class DataverseClient(DataverseSession):
    """The Web API of one Dataverse environment."""

    def __init__(self, *args: Any, page_size: int = 500, **kwargs: Any) -> None:
        self.page_size = _page_size(page_size)
        super().__init__(*args, **kwargs)
        self.api_path = urlsplit(self.service_root).path

    # Reads ---------------------------------------------------------------------------------

    async def _json(self, url: str, *, headers: Mapping[str, str], what: str) -> dict[str, Any]:
        response = await self.send("GET", url, headers=headers, what=what)
        if response.status_code != 200:
            raise failure(response, what=what)
        try:
            document = response.json()
        except ValueError as exc:
            raise PermanentError(f"{SYSTEM} {what}: the answer is not JSON") from exc
        if not isinstance(document, dict):
            raise PermanentError(f"{SYSTEM} {what}: the answer is not a JSON object")
        return document

    async def get(
        self,
        entity_set: str,
        key: RowKey,
        *,
        select: Sequence[str] | None = None,
        expand: Sequence[str] | None = None,
    ) -> dict[str, Any]:
        """One row by id or alternate key; :class:`NotFoundError` when there is none."""
        path = row_path(entity_set, key)
        url = self.url(_read_target(path, select, expand))
        return await self._json(url, headers={}, what=f"GET {path}")

    @staticmethod
    def read_operation(
        entity_set: str,
        key: RowKey,
        *,
        select: Sequence[str] | None = None,
        expand: Sequence[str] | None = None,
    ) -> batching.BatchOperation:
        """The ``$batch`` operation reading what :meth:`get` reads (its row in the result)."""
        path = _read_target(row_path(entity_set, key), select, expand)
        return batching.BatchOperation("GET", path)

    async def pages(
        self,
        entity_set: str,
        *,
        select: Sequence[str] | None = None,
        filter: str | None = None,
        orderby: Sequence[str] | None = None,
        page_size: int | None = None,
        start: str | None = None,
    ) -> AsyncIterator[Page]:
        """The rows of a query, page by page; ``start`` resumes from a saved next link."""
        size = _page_size(page_size or self.page_size)
        headers = {"Prefer": f"odata.maxpagesize={size}"}
        if start is not None:
            url = self.check_link(start)
        else:
            check_name(entity_set, "entity_set")
            options = [
                ("$select", columns(select, "select")),
                ("$filter", filter),
                ("$orderby", _order(orderby)),
            ]
            query = query_string((name, value) for name, value in options if value)
            url = self.url(f"{entity_set}?{query}" if query else entity_set)
        what = f"GET {entity_set}"
        while True:
            document = await self._json(url, headers=headers, what=what)
            rows = document.get("value")
            if not isinstance(rows, list):
                raise PermanentError(f"{SYSTEM} {what}: the answer has no 'value' list")
            next_link = document.get("@odata.nextLink")
            yield Page(rows, str(next_link) if next_link else None)
            if not next_link:
                return
            url = self.check_link(str(next_link))

    async def changes(
        self,
        entity_set: str,
        *,
        select: Sequence[str] | None = None,
        link: str | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[DeltaPage]:
        """Change tracking of ``entity_set`` from ``link`` (a delta or next link), or from scratch.

        Without ``link`` the first page starts a tracked read of every row. The last page
        carries the new delta link. Raises :class:`DeltaTokenExpiredError` when Dataverse no
        longer has the changes since ``link``.
        """
        size = _page_size(page_size or self.page_size)
        headers = {"Prefer": f"odata.track-changes,odata.maxpagesize={size}"}
        if link is not None:
            url = self.check_link(link)
        else:
            check_name(entity_set, "entity_set")
            chosen = columns(select, "select")
            url = self.url(
                f"{entity_set}?{query_string([('$select', chosen)])}" if chosen else entity_set
            )
        what = f"GET {entity_set} (changes)"
        while True:
            document = await self._json(url, headers=headers, what=what)
            items = document.get("value")
            if not isinstance(items, list):
                raise PermanentError(f"{SYSTEM} {what}: the answer has no 'value' list")
            upserts: list[dict[str, Any]] = []
            removals: list[str] = []
            for item in items:
                removed = _removal(item) if isinstance(item, dict) else None
                if removed is not None:
                    removals.append(removed)
                elif isinstance(item, dict):
                    upserts.append(item)
            next_link = document.get("@odata.nextLink")
            delta_link = document.get("@odata.deltaLink")
            if not next_link and not delta_link:
                raise PermanentError(f"{SYSTEM} {what}: the last page has no @odata.deltaLink")
            yield DeltaPage(
                upserts,
                removals,
                str(next_link) if next_link else None,
                None if next_link else str(delta_link),
            )
            if not next_link:
                return
            url = self.check_link(str(next_link))

    # Writes --------------------------------------------------------------------------------

    async def _write(
        self,
        method: str,
        path: str,
        values: Mapping[str, Any],
        headers: dict[str, str],
        *,
        return_row: bool,
        select: Sequence[str] | None,
        creates: bool | None,
    ) -> WriteResult:
        """Send a write; ``creates`` is whether it can only create (True) or only update."""
        if return_row:
            headers["Prefer"] = "return=representation"
            chosen = columns(select, "select")
            if chosen:
                path = f"{path}?{query_string([('$select', chosen)])}"
        headers["Content-Type"] = "application/json"
        content = json.dumps(_values(values), ensure_ascii=False).encode("utf-8")
        what = f"{method} {path.partition('?')[0]}"
        response = await self.send(
            method, self.url(path), headers=headers, content=content, what=what
        )
        if response.status_code not in (200, 201, 204):
            raise failure(response, what=what)
        return self._written(response, creates)

    @staticmethod
    def _written(response: httpx2.Response, creates: bool | None) -> WriteResult:
        entity_id = response.headers.get("odata-entityid")
        row = response.json() if response.status_code in (200, 201) and response.content else None
        row_id = None
        if entity_id:
            match = _ENTITY_ID.search(entity_id)
            row_id = match.group(1).lower() if match else None
        created = creates
        if created is None and response.status_code in (200, 201):
            created = response.status_code == 201
        return WriteResult(response.status_code, row_id, entity_id, row, created)

    async def create(
        self,
        entity_set: str,
        values: Mapping[str, Any],
        *,
        return_row: bool = False,
        select: Sequence[str] | None = None,
    ) -> WriteResult:
        """``POST`` a new row (deep insert and ``@odata.bind`` allowed)."""
        path = check_name(entity_set, "entity_set")
        return await self._write(
            "POST", path, values, {}, return_row=return_row, select=select, creates=True
        )

    async def update(
        self,
        entity_set: str,
        key: RowKey,
        values: Mapping[str, Any],
        *,
        etag: str | None = None,
        return_row: bool = False,
        select: Sequence[str] | None = None,
    ) -> WriteResult:
        """``PATCH`` an existing row; with ``etag`` only if it is still that version (else 412).

        Never creates: without an ETag ``If-Match: *`` is sent, so a missing row is a 404.
        """
        headers = {"If-Match": etag or "*"}
        path = row_path(entity_set, key)
        return await self._write(
            "PATCH", path, values, headers, return_row=return_row, select=select, creates=False
        )

    async def upsert(
        self,
        entity_set: str,
        key: RowKey,
        values: Mapping[str, Any],
        *,
        create_only: bool = False,
        update_only: bool = False,
        return_row: bool = False,
        select: Sequence[str] | None = None,
    ) -> WriteResult:
        """``PATCH`` by id or alternate key: update the row, or create it with the key's values.

        ``create_only`` refuses to update an existing row (412), ``update_only`` refuses to
        create one (404).
        """
        headers = upsert_headers(create_only, update_only)
        path = row_path(entity_set, key)
        return await self._write(
            "PATCH",
            path,
            values,
            headers,
            return_row=return_row,
            select=select,
            creates=True if create_only else (False if update_only else None),
        )

    async def delete(self, entity_set: str, key: RowKey, *, etag: str | None = None) -> None:
        """``DELETE`` a row, only if it is still version ``etag`` when given."""
        path = row_path(entity_set, key)
        headers = {"If-Match": etag} if etag else {}
        what = f"DELETE {path}"
        response = await self.send("DELETE", self.url(path), headers=headers, what=what)
        if response.status_code not in (200, 204):
            raise failure(response, what=what)

    # $batch --------------------------------------------------------------------------------

    async def batch(
        self,
        items: Sequence[BatchItem],
        *,
        chunk_size: int = 100,
        continue_on_error: bool = True,
    ) -> list[BatchResult]:
        """Run ``items`` in ``$batch`` requests of at most ``chunk_size`` operations.

        One result per operation, in order. With ``continue_on_error`` every operation is tried
        (a failed change set is undone as a whole); without it the first failure stops the
        batch and what follows is ``not_run``. A chunk refused as a whole (401, 429 after the
        retries, 5xx, timeout) has its operations ``failed`` with that error; after a transient
        one the remaining chunks are ``not_run``: a chunk that timed out may or may not have
        been applied, so repeat such operations as upserts or with ``If-Match``.
        """
        results: list[BatchResult] = []
        stopped = False
        for chunk in batching.chunks(items, chunk_size):
            if stopped:
                results += [BatchResult(op, "not_run") for op in _operations(chunk)]
                continue
            try:
                chunk_results = await self._batch_chunk(chunk, continue_on_error)
            except (TransientError, PermanentError) as refused:
                chunk_results = [
                    BatchResult(op, "failed", getattr(refused, "status", None), error=refused)
                    for op in _operations(chunk)
                ]
                stopped = isinstance(refused, TransientError) or not continue_on_error
            else:
                stopped = not continue_on_error and any(not r.ok for r in chunk_results)
            results += chunk_results
        return results

    async def _batch_chunk(
        self, chunk: Sequence[BatchItem], continue_on_error: bool
    ) -> list[BatchResult]:
        content, content_type = batching.encode(chunk, self.api_path)
        headers = {"Content-Type": content_type}
        if continue_on_error:
            headers["Prefer"] = "odata.continue-on-error"
        what = f"POST $batch ({batching.count(chunk)} operations)"
        response = await self.send(
            "POST", self.url("$batch"), headers=headers, content=content, what=what
        )
        reply_type = response.headers.get("content-type", "")
        if batching.boundary_of(reply_type) is None:
            raise failure(response, what=what)
        return batching.settle(chunk, batching.decode(response.content, reply_type))


def _operations(chunk: Sequence[BatchItem]) -> list[batching.BatchOperation]:
    flat: list[batching.BatchOperation] = []
    for item in chunk:
        flat += item.operations if isinstance(item, batching.ChangeSet) else [item]
    return flat

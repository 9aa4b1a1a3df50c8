"""GET (and HEAD): rows by key, collections, navigation, single properties, ``$count``.

Collections go through the query package (``parse_query``/``run_query``): ``$filter``,
``$orderby``, ``$top``, ``$count``, ``$expand``, server paging with ``Prefer:
odata.maxpagesize`` and ``@odata.nextLink``. A single row accepts ``$select`` and ``$expand``
only, and answers ``If-None-Match: W/"<version>"`` with 304 when the row has not changed (never
when ``$expand`` or annotations are asked for, as Microsoft documents).
"""

from __future__ import annotations

from collections.abc import Sequence

from d365sap.emulators.dataverse import errors
from d365sap.emulators.dataverse.messages import WebApiRequest, WebApiResponse
from d365sap.emulators.dataverse.query import (
    ExpandItem,
    PagingSigner,
    QueryOptions,
    next_link,
    parse_expand,
    parse_query,
    run_query,
)
from d365sap.emulators.dataverse.query.clauses import parse_select
from d365sap.emulators.dataverse.query.options import split_query
from d365sap.emulators.dataverse.query_views import Relations, SchemaViews
from d365sap.emulators.dataverse.schema import Schema, Table
from d365sap.emulators.dataverse.serialize import Serializer, etag
from d365sap.emulators.dataverse.store import Row, Store
from d365sap.emulators.dataverse.uri import KeyRef, Target
from d365sap.emulators.dataverse.values import to_json

SINGLE_OPTIONS = frozenset({"$select", "$expand"})
TOTAL_COUNT = "Microsoft.Dynamics.CRM.totalrecordcount"
TEXT = "text/plain; charset=utf-8"


def find_row(store: Store, key: KeyRef) -> Row | None:
    """The row ``key`` names, or None."""
    table = key.table.logical_name
    if key.row_id is not None:
        return store.get(table, key.row_id)
    assert key.key is not None
    return store.find(table, key.key, key.values)


def require_row(store: Store, key: KeyRef) -> Row:
    """The row ``key`` names, or Dataverse's 404."""
    row = find_row(store, key)
    if row is not None:
        return row
    if key.row_id is not None:
        raise errors.row_not_found(key.table.logical_name, key.row_id)
    raise errors.key_not_found(key.table.logical_name)


def single_options(
    views: SchemaViews, table: Table, query: str
) -> tuple[tuple[str, ...] | None, tuple[ExpandItem, ...]]:
    """``$select`` and ``$expand`` of a request on one row; other options are refused."""
    view = views.view(table.logical_name)
    select: tuple[str, ...] | None = None
    expand: tuple[ExpandItem, ...] = ()
    for name, value in split_query(query.lstrip("?")):
        if not name.startswith("$"):
            continue
        if name not in SINGLE_OPTIONS:
            raise errors.bad_request(
                f"The query option '{name}' is not allowed when a single record is addressed; "
                "only $select and $expand are."
            )
        if name == "$select":
            select = parse_select(value, view)
        else:
            expand = parse_expand(value, view)
    return select, expand


class Reads:
    """Answers read requests from the store."""

    def __init__(
        self,
        schema: Schema,
        store: Store,
        views: SchemaViews,
        relations: Relations,
        signer: PagingSigner,
    ) -> None:
        self.schema = schema
        self.store = store
        self.views = views
        self.relations = relations
        self.signer = signer

    def read(
        self, request: WebApiRequest, target: Target, serializer: Serializer
    ) -> WebApiResponse:
        """Answer a GET on ``target``."""
        if target.key is None:
            return self.collection(
                request,
                target.table,
                self.store.rows(target.table.logical_name),
                serializer,
                count=target.count,
            )
        row = require_row(self.store, target.key)
        if target.column is not None:
            return self._property(target, row, serializer)
        navigation = target.navigation
        if navigation is None:
            return self._entity(request, target.table, row, serializer)
        related_table = self.schema.table(navigation.target)
        if navigation.collection:
            related = self.relations.follow_many(target.table.logical_name, navigation, row)
            if target.ref:
                return self._refs(related_table, related, serializer)
            return self.collection(request, related_table, related, serializer, count=target.count)
        one = self.relations.follow_one(target.table.logical_name, navigation, row)
        if one is None:
            return WebApiResponse(204)
        if target.ref:
            document = {
                "@odata.context": f"{serializer.root}$metadata#$ref",
                "@odata.id": serializer.entity_url(related_table, one[related_table.primary_id]),
            }
            return WebApiResponse.json(200, document)
        return self._entity(request, related_table, one, serializer)

    def collection(
        self,
        request: WebApiRequest,
        table: Table,
        rows: Sequence[Row],
        serializer: Serializer,
        *,
        count: bool = False,
        options: QueryOptions | None = None,
    ) -> WebApiResponse:
        """A page of ``rows`` as the query options ask (or their number for ``$count``)."""
        view = self.views.view(table.logical_name)
        if options is None:
            options = parse_query(view, request.query, request.header("prefer"), signer=self.signer)
        if count:
            page = run_query(
                view, rows, _counting(options), related=self.relations, signer=self.signer
            )
            return WebApiResponse(200, {"content-type": TEXT}, str(page.count or 0).encode())
        page = run_query(view, rows, options, related=self.relations, signer=self.signer)
        preferences = options.preferences
        document: dict[str, object] = {
            "@odata.context": serializer.context(table, options.select, options.expand)
        }
        document.update(
            page.count_annotations(include_total=preferences.wants_annotation(TOTAL_COUNT))
        )
        document["value"] = [
            serializer.row(table, row, options.select, options.expand) for row in page.rows
        ]
        if page.skiptoken is not None:
            document["@odata.nextLink"] = next_link(
                request.service_root, request.path, request.query, page.skiptoken
            )
        headers: dict[str, str] = {}
        applied = preferences.applied(page_size=True, annotations=serializer.annotated)
        if applied:
            headers["preference-applied"] = applied
        return WebApiResponse.json(200, document, headers)

    def _entity(
        self, request: WebApiRequest, table: Table, row: Row, serializer: Serializer
    ) -> WebApiResponse:
        select, expand = single_options(self.views, table, request.query)
        if_none_match = (request.header("if-none-match") or "").strip()
        if if_none_match == etag(row) and not expand and not serializer.annotated:
            return WebApiResponse(304, {"odata-version": "4.0"})
        document: dict[str, object] = {
            "@odata.context": serializer.context(table, select, expand, entity=True)
        }
        document.update(serializer.row(table, row, select, expand))
        headers: dict[str, str] = {}
        applied = serializer.preferences.applied(annotations=serializer.annotated)
        if applied:
            headers["preference-applied"] = applied
        return WebApiResponse.json(200, document, headers)

    def _property(self, target: Target, row: Row, serializer: Serializer) -> WebApiResponse:
        column = target.column
        assert column is not None
        table = target.table
        value = row.get(column.property_name)
        if value is None:
            return WebApiResponse(204)
        if target.raw:
            return WebApiResponse(200, {"content-type": TEXT}, str(to_json(value)).encode())
        row_id = row[table.primary_id]
        document = {
            "@odata.context": (
                f"{serializer.root}$metadata#{table.entity_set}({row_id})/{column.property_name}"
            ),
            "value": to_json(value),
        }
        return WebApiResponse.json(200, document)

    def _refs(self, table: Table, rows: Sequence[Row], serializer: Serializer) -> WebApiResponse:
        document = {
            "@odata.context": f"{serializer.root}$metadata#Collection($ref)",
            "value": [
                {"@odata.id": serializer.entity_url(table, row[table.primary_id])} for row in rows
            ],
        }
        return WebApiResponse.json(200, document)


def _counting(options: QueryOptions) -> QueryOptions:
    """The same selection, counted (``/$count`` answers the number of matching rows)."""
    from dataclasses import replace

    return replace(options, count=True, top=None, cursor=None)

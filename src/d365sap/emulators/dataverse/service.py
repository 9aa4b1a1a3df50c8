"""The Web API core: one :class:`WebApiRequest` in, one :class:`WebApiResponse` out.

Authentication, body limits and faults are handled in front of it (``app``); a ``$batch`` part
comes back in here through :meth:`DataverseService.handle` exactly like a plain request. Every
rejection is a :class:`WebApiError` (or the query package's ``QueryError``) turned into
Dataverse's error body in one place.

Writes:

- ``POST <set>``: create; 204 with ``OData-EntityId``, or 201 with the row when the client
  sends ``Prefer: return=representation`` (``$select``/``$expand`` shape it).
- ``POST <set>(<key>)/<collection navigation>``: create a row related to that one.
- ``PATCH <set>(<key>)``: update, or create when no row has the key (upsert, by primary or
  alternate key). ``If-Match: *`` forbids the create (404), ``If-None-Match: *`` the update
  (412), ``If-Match: W/"<version>"`` must name the current version (412).
- ``PUT <set>(<key>)/<property>`` with ``{"value": …}``; ``DELETE`` of a property clears it.
- ``PUT``/``POST``/``DELETE`` on ``…/<navigation>/$ref`` associate and disassociate.
- ``DELETE <set>(<key>)``: delete, along each relationship's delete behaviour.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from d365sap.emulators.dataverse import csdl, errors
from d365sap.emulators.dataverse.messages import WebApiRequest, WebApiResponse
from d365sap.emulators.dataverse.payload import Mode, Payload, PayloadReader, load_json
from d365sap.emulators.dataverse.query import QueryError, parse_prefer
from d365sap.emulators.dataverse.query.options import split_query
from d365sap.emulators.dataverse.query_views import Relations, SchemaViews
from d365sap.emulators.dataverse.reads import Reads, find_row, require_row, single_options
from d365sap.emulators.dataverse.schema import Schema, Table
from d365sap.emulators.dataverse.serialize import Serializer, etag
from d365sap.emulators.dataverse.store import LOOKUP_TABLE, Origin, Row, Store
from d365sap.emulators.dataverse.uri import KeyRef, Target, parse_reference, resolve, split_path
from d365sap.emulators.dataverse.values import from_json
from d365sap.emulators.dataverse.writes import Writer

READS = frozenset({"GET", "HEAD"})
TrackedRead = Callable[[WebApiRequest, Target, Serializer], WebApiResponse]


class DataverseService:
    """The Web API of one emulated environment over its store."""

    def __init__(
        self,
        schema: Schema,
        store: Store,
        writer: Writer,
        reads: Reads,
        views: SchemaViews,
        relations: Relations,
    ) -> None:
        self.schema = schema
        self.store = store
        self.writer = writer
        self.reads = reads
        self.views = views
        self.relations = relations
        self.tracked_read: TrackedRead | None = None
        """Change tracking's answer to ``Prefer: odata.track-changes`` and ``$deltatoken``."""
        self.batch: Callable[[WebApiRequest], WebApiResponse] | None = None
        """``POST $batch`` (the batch module); 501 while none is installed."""

    def handle(self, request: WebApiRequest) -> WebApiResponse:
        """Answer ``request``; never raises for a Web API level problem.

        The operation runs under the store lock, so a read never sees half of a deep insert
        or a change set. ``$batch`` runs outside it: its parts come back here one by one.
        """
        request_id = request.header("x-ms-service-request-id") or str(uuid.uuid4())
        try:
            if _is_batch(request.path):
                response = self._batch(request)
            else:
                with self.store.lock:
                    response = self._dispatch(request, Origin(request.caller, request_id))
        except errors.WebApiError as error:
            response = error.response()
        except QueryError as error:
            response = WebApiResponse.error(error.status, error.code, error.message)
        response.headers.setdefault("odata-version", "4.0")
        response.headers.setdefault("req_id", request_id)
        response.headers.setdefault("x-ms-service-request-id", request_id)
        if request.method == "HEAD":
            response.body = b""
        return response

    # routing

    def _batch(self, request: WebApiRequest) -> WebApiResponse:
        if request.method != "POST":
            raise errors.method_not_allowed(request.method)
        if self.batch is None:
            raise errors.WebApiError(501, errors.NO_CODE, "$batch is not available.")
        return self.batch(request)

    def _dispatch(self, request: WebApiRequest, origin: Origin) -> WebApiResponse:
        segments = split_path(request.path)
        method = request.method
        serializer = self._serializer(request)
        if not segments:
            if method not in READS:
                raise errors.method_not_allowed(method)
            return self._service_document(serializer)
        if segments[0].name == "$metadata" and len(segments) == 1:
            if method not in READS:
                raise errors.method_not_allowed(method)
            annotations = ("annotations", "true") in split_query(request.query.lstrip("?"))
            body = csdl.cached(self.schema, annotations)
            return WebApiResponse(200, {"content-type": "application/xml"}, body)
        target = resolve(self.schema, segments)
        if method in READS:
            if target.key is None and _tracked(request):
                if self.tracked_read is None:
                    raise errors.WebApiError(
                        501, errors.NO_CODE, "Change tracking is not available."
                    )
                return self.tracked_read(request, target, serializer)
            return self.reads.read(request, target, serializer)
        if method == "POST":
            return self._post(request, target, serializer, origin)
        if method == "PATCH":
            return self._patch(request, target, serializer, origin)
        if method == "PUT":
            return self._put(request, target, origin)
        if method == "DELETE":
            return self._delete(request, target, origin)
        raise errors.method_not_allowed(method)

    def _serializer(self, request: WebApiRequest) -> Serializer:
        preferences = parse_prefer(request.header("prefer"))
        return Serializer(
            self.schema, self.store, self.relations, request.service_root, preferences
        )

    def _service_document(self, serializer: Serializer) -> WebApiResponse:
        sets = sorted(table.entity_set for table in self.schema.tables.values())
        document = {
            "@odata.context": f"{serializer.root}$metadata",
            "value": [{"name": name, "kind": "EntitySet", "url": name} for name in sets],
        }
        return WebApiResponse.json(200, document)

    # writes

    def _body(self, request: WebApiRequest, table: Table) -> dict[str, object]:
        content_type = (request.header("content-type") or "application/json").lower()
        if "json" not in content_type:
            raise errors.unsupported_media(content_type)
        return dict(load_json(request.body, table.entity_set))

    def _reader(self, request: WebApiRequest) -> PayloadReader:
        return PayloadReader(self.schema, self.store, request.service_root)

    def _post(
        self, request: WebApiRequest, target: Target, serializer: Serializer, origin: Origin
    ) -> WebApiResponse:
        if target.ref and target.navigation is not None and target.navigation.collection:
            return self._associate(request, target, origin)
        if target.column is not None or target.count or target.ref or target.single:
            raise errors.method_not_allowed("POST")
        table = target.result_table
        payload = self._reader(request).read(table, self._body(request, table), Mode.CREATE)
        preset: dict[str, object] = {}
        if target.navigation is not None:
            assert target.key is not None
            parent = require_row(self.store, target.key)
            rel = target.navigation.relationship
            column = table.column(rel.column)
            assert column is not None
            preset[column.property_name] = parent[target.table.primary_id]
            preset[column.property_name + LOOKUP_TABLE] = target.table.logical_name
        row = self.writer.create(payload, origin, preset=preset)
        return self._written(request, table, row, serializer, created=True)

    def _patch(
        self, request: WebApiRequest, target: Target, serializer: Serializer, origin: Origin
    ) -> WebApiResponse:
        if target.key is None or target.navigation is not None or target.column is not None:
            raise errors.method_not_allowed("PATCH")
        table = target.table
        document = self._body(request, table)
        reader = self._reader(request)
        row = find_row(self.store, target.key)
        if_match = (request.header("if-match") or "").strip()
        if_none_match = (request.header("if-none-match") or "").strip()
        if row is None:
            if if_match:
                require_row(self.store, target.key)
            payload = reader.read(table, document, Mode.CREATE)
            created = self.writer.create(payload, origin, preset=_key_values(table, target.key))
            return self._written(request, table, created, serializer, created=True)
        if if_none_match == "*":
            raise errors.already_exists()
        if if_match and if_match != "*" and if_match != etag(row):
            raise errors.version_mismatch()
        payload = reader.read(table, document, Mode.UPDATE)
        updated = self.writer.update(payload, row, origin)
        return self._written(request, table, updated, serializer, created=False)

    def _written(
        self,
        request: WebApiRequest,
        table: Table,
        row: Row,
        serializer: Serializer,
        *,
        created: bool,
    ) -> WebApiResponse:
        """204 with ``OData-EntityId``, or the row when ``return=representation`` is asked."""
        url = serializer.entity_url(table, row[table.primary_id])
        if not serializer.preferences.return_representation:
            return WebApiResponse(204, {"odata-entityid": url})
        select, expand = single_options(self.views, table, request.query)
        document: dict[str, object] = {
            "@odata.context": serializer.context(table, select, expand, entity=True)
        }
        document.update(serializer.row(table, row, select, expand))
        headers = {"preference-applied": "return=representation"}
        return WebApiResponse.json(201 if created else 200, document, headers)

    def _put(self, request: WebApiRequest, target: Target, origin: Origin) -> WebApiResponse:
        if target.ref and target.navigation is not None and not target.navigation.collection:
            return self._associate(request, target, origin)
        if target.column is None or target.raw or target.key is None:
            raise errors.method_not_allowed("PUT")
        table, column = target.table, target.column
        document = self._body(request, table)
        if set(document) - {"value", "@odata.context"}:
            raise errors.payload(
                table.entity_set,
                f"A property update of '{column.property_name}' takes a body of the form "
                '{"value": …}.',
            )
        row = require_row(self.store, target.key)
        payload = self._reader(request).read(
            table, {column.property_name: document.get("value")}, Mode.UPDATE
        )
        self.writer.update(payload, row, origin)
        return WebApiResponse(204)

    def _delete(self, request: WebApiRequest, target: Target, origin: Origin) -> WebApiResponse:
        if target.key is None:
            raise errors.method_not_allowed("DELETE")
        row = require_row(self.store, target.key)
        table = target.table
        if target.ref and target.navigation is not None:
            return self._disassociate(request, target, row, origin)
        if target.column is not None:
            if target.column.is_lookup or target.raw:
                raise errors.method_not_allowed("DELETE")
            payload = Payload(table, values={target.column.property_name: None})
            self.writer.update(payload, row, origin)
            return WebApiResponse(204)
        if target.navigation is not None:
            raise errors.method_not_allowed("DELETE")
        if_match = (request.header("if-match") or "").strip()
        if if_match and if_match != "*" and if_match != etag(row):
            raise errors.version_mismatch()
        self.writer.delete(table, str(row[table.primary_id]), origin)
        return WebApiResponse(204)

    # $ref

    def _reference(self, request: WebApiRequest, target: Target, text: object) -> KeyRef:
        navigation = target.navigation
        assert navigation is not None
        if not isinstance(text, str):
            raise errors.payload(target.table.entity_set, 'A $ref body is {"@odata.id": "<url>"}.')
        try:
            key = parse_reference(self.schema, text, request.service_root)
        except ValueError as exc:
            raise errors.payload(target.table.entity_set, str(exc)) from None
        if key.table.logical_name != navigation.target:
            raise errors.payload(
                target.table.entity_set,
                f"'{text}' is not a row of the table '{navigation.name}' leads to "
                f"({navigation.target}).",
            )
        return key

    def _associate(self, request: WebApiRequest, target: Target, origin: Origin) -> WebApiResponse:
        navigation = target.navigation
        assert navigation is not None
        assert target.key is not None
        row = require_row(self.store, target.key)
        document = self._body(request, target.table)
        other = require_row(self.store, self._reference(request, target, document.get("@odata.id")))
        rel = navigation.relationship
        if navigation.collection:
            child_table, child, parent_table, parent = (
                self.schema.table(rel.referencing),
                other,
                target.table,
                row,
            )
        else:
            child_table, child, parent_table, parent = (
                target.table,
                row,
                self.schema.table(rel.referenced),
                other,
            )
        self._set_link(child_table, child, rel.column, parent_table, parent, origin)
        return WebApiResponse(204)

    def _disassociate(
        self, request: WebApiRequest, target: Target, row: Row, origin: Origin
    ) -> WebApiResponse:
        navigation = target.navigation
        assert navigation is not None
        rel = navigation.relationship
        if not navigation.collection:
            self._set_link(target.table, row, rel.column, None, None, origin)
            return WebApiResponse(204)
        reference = dict(split_query(request.query.lstrip("?"))).get("$id")
        if reference is None:
            raise errors.bad_request(
                f"Removing a row from '{navigation.name}' needs ?$id=<url of the row>."
            )
        child = require_row(self.store, self._reference(request, target, reference))
        child_table = self.schema.table(rel.referencing)
        column = child_table.column(rel.column)
        assert column is not None
        if child.get(column.property_name) != row[target.table.primary_id]:
            raise errors.row_not_found(child_table.logical_name, str(child[child_table.primary_id]))
        self._set_link(child_table, child, rel.column, None, None, origin)
        return WebApiResponse(204)

    def _set_link(
        self,
        table: Table,
        row: Row,
        column_name: str,
        target_table: Table | None,
        target_row: Row | None,
        origin: Origin,
    ) -> None:
        column = table.column(column_name)
        assert column is not None
        prop = column.property_name
        value = (
            None
            if target_row is None or target_table is None
            else target_row[target_table.primary_id]
        )
        changes = {
            prop: value,
            prop + LOOKUP_TABLE: (None if target_table is None else target_table.logical_name),
        }
        with self.store.transaction():
            self.store.update(table.logical_name, str(row[table.primary_id]), changes, origin)


def _key_values(table: Table, key: KeyRef) -> dict[str, object]:
    """What an upsert that creates takes from the URL: the id or the alternate key values."""
    if key.row_id is not None:
        return {table.primary_id: key.row_id}
    values: dict[str, object] = {}
    for prop, value in key.values.items():
        column = table.by_property(prop)
        assert column is not None
        if column.is_lookup:
            values[prop] = value
            target = column.targets[0].table
            values[prop + LOOKUP_TABLE] = target
        else:
            values[prop] = from_json(table, column, value)
    return values


def _is_batch(path: str) -> bool:
    return path.strip("/") == "$batch"


def _tracked(request: WebApiRequest) -> bool:
    if parse_prefer(request.header("prefer")).track_changes:
        return True
    return any(name == "$deltatoken" for name, _ in split_query(request.query.lstrip("?")))

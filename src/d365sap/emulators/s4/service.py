"""The OData core: one :class:`ODataRequest` in, one :class:`ODataResponse` out.

HTTP routing, authentication and CSRF are done before this point (see ``gate``); ``$batch``
parts come back in here one by one. Every rejection is an ``ODataError`` turned into SAP's error
body in exactly one place (:meth:`ODataService.handle`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from d365sap.emulators.s4 import errors
from d365sap.emulators.s4.batch import handle_batch
from d365sap.emulators.s4.edm import Model
from d365sap.emulators.s4.filter import equalities_from_filter, evaluate, keys_from_filter
from d365sap.emulators.s4.journal import Journal
from d365sap.emulators.s4.messages import MODIFYING, ODataRequest, ODataResponse
from d365sap.emulators.s4.payload import Mode, load_json, parse_entity
from d365sap.emulators.s4.query import QueryOptions, parse_query
from d365sap.emulators.s4.reads import read
from d365sap.emulators.s4.serialize import Serializer, shape_from_names
from d365sap.emulators.s4.store import Store
from d365sap.emulators.s4.uri import Target, resolve, split_path
from d365sap.emulators.s4.writes import Writer

_READS = frozenset({"GET", "HEAD"})


def _method_not_allowed(method: str, what: str) -> errors.ODataError:
    return errors.ODataError(
        405, errors.METHOD_NOT_ALLOWED, f"Method {method} is not allowed on {what}"
    )


class ODataService:
    """One OData service (API_BUSINESS_PARTNER unless told otherwise) over its in-memory store.

    ``application`` is the block its error bodies carry; a ``read_only`` service answers every
    write with 405 (its data is written by S/4 itself, e.g. orders created through SOAP).
    """

    def __init__(
        self,
        model: Model,
        store: Store,
        writer: Writer,
        journal: Journal,
        page_size: int,
        *,
        application: Mapping[str, Any] | None = None,
        read_only: bool = False,
    ) -> None:
        self.model = model
        self.store = store
        self.writer = writer
        self.journal = journal
        self.page_size = page_size
        self.application = dict(errors.APPLICATION if application is None else application)
        self.read_only = read_only

    def handle(self, request: ODataRequest, *, in_batch: bool = False) -> ODataResponse:
        """Answer ``request``; never raises for an OData-level problem.

        The whole operation runs under the store lock, so a read never sees half of a
        concurrent deep insert, change set or reset.
        """
        try:
            with self.store.lock:
                response = self._dispatch(request, in_batch=in_batch)
        except errors.ODataError as error:
            response = ODataResponse.error(error, in_batch=in_batch, application=self.application)
        if request.method == "HEAD":
            response.body = b""
        return response

    def _dispatch(self, request: ODataRequest, *, in_batch: bool) -> ODataResponse:
        segments = split_path(request.path)
        method = request.method
        if not segments:
            if method not in _READS:
                raise _method_not_allowed(method, "the service document")
            names = list(self.model.entity_sets)
            return ODataResponse.json(200, {"d": {"EntitySets": names}})
        head = segments[0]
        if head.name == "$metadata" and len(segments) == 1 and head.predicate is None:
            if method not in _READS:
                raise _method_not_allowed(method, "$metadata")
            return ODataResponse(200, {"content-type": "application/xml"}, self.model.edmx)
        if head.name == "$batch" and len(segments) == 1:
            if in_batch:
                raise errors.ODataError(400, errors.BATCH_INVALID, "$batch inside $batch")
            if method != "POST":
                raise _method_not_allowed(method, "$batch")
            return handle_batch(self, request)
        serializer = Serializer(self.model, self.store, request.service_root)
        if method in _READS:
            target = resolve(self.model, self.store, segments)
            options = parse_query(
                self.model, target.entity_set, request.query, single=target.single
            )
            target = self._keyed(target, options)
            return read(serializer, request, target, options, self.page_size)
        if method not in MODIFYING:
            raise _method_not_allowed(method, request.path)
        if self.read_only:
            raise errors.ODataError(
                405,
                errors.METHOD_NOT_ALLOWED,
                f"Method {method} is not allowed: service {self.application['service_id']} "
                "is read-only in this emulator",
            )
        target = resolve(self.model, self.store, segments)
        if method == "DELETE":
            self._require_entity(method, target)
            assert target.key is not None
            self.writer.delete(target.entity_set, target.key, request.header("if-match"))
            return ODataResponse(204)
        self._require_json(request)
        if method == "POST":
            return self._create(request, target, serializer)
        self._require_entity(method, target)
        assert target.key is not None
        parsed = parse_entity(self.model, target.entity_set, load_json(request.body), Mode.UPDATE)
        record = self.writer.update(
            target.entity_set,
            target.key,
            parsed,
            request.user,
            request.header("if-match"),
            replace=method == "PUT",
        )
        return ODataResponse(204, {"etag": record.etag})

    def _create(
        self, request: ODataRequest, target: Target, serializer: Serializer
    ) -> ODataResponse:
        if target.single or target.count:
            raise _method_not_allowed("POST", f"'{request.path}' (POST needs a collection)")
        parsed = parse_entity(self.model, target.entity_set, load_json(request.body), Mode.CREATE)
        record = self.writer.create(target.entity_set, parsed, request.user, target.parent)
        shape = shape_from_names(parsed.shape_names())
        document = serializer.entity(target.entity_set, record, shape)
        headers = {
            "location": serializer.entity_uri(target.entity_set, record),
            "etag": record.etag,
        }
        return ODataResponse.json(201, {"d": document}, headers)

    def _keyed(self, target: Target, options: QueryOptions) -> Target:
        """A collection filtered on its whole key is a key lookup, not a scan (same answer)."""
        if target.parent is not None or target.count or target.rows is None:
            return target
        if options.filter is None:
            return target
        keys = keys_from_filter(options.filter, target.entity_set)
        if keys is None:
            equal = equalities_from_filter(options.filter, target.entity_set)
            if not equal:
                return target
            name, value = next(iter(equal.items()))
            # Rows holding the value, from the store's index, in key order; filtered after.
            return replace(target, rows=self.store.matching(target.entity_set.name, {name: value}))
        # One key, or an "or" of keys: look each up (in key order), then apply the filter.
        records = self.store.get_many(target.entity_set.name, keys)
        rows = [r for r in records if evaluate(options.filter, r.values) is True]
        return replace(target, rows=rows)

    @staticmethod
    def _require_entity(method: str, target: Target) -> None:
        if not target.single or target.prop is not None or target.key is None:
            raise _method_not_allowed(method, "a collection (address one entity by its key)")

    @staticmethod
    def _require_json(request: ODataRequest) -> None:
        content_type = (request.header("content-type") or "application/json").lower()
        if "json" not in content_type:
            raise errors.ODataError(
                415,
                errors.UNSUPPORTED_MEDIA,
                f"Content type '{content_type}' is not supported by this emulator; "
                "send application/json",
            )

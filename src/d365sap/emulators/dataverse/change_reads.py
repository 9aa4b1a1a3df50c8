"""The Web API side of change tracking: a tracked collection GET answered from the store.

The service hands a collection read here when it carries ``Prefer: odata.track-changes`` or a
``$deltatoken`` (``DataverseService.tracked_read``). This module reads and serialises the
table's rows the way every other read does (``$select``, ETags, annotations) and lets the
:class:`~d365sap.emulators.dataverse.changes.ChangeTracker` choose what to return and issue the
next delta link. ``<set>/$count?$deltatoken=…`` answers the number of changes.

Not emulated: server paging of a tracked read (all rows or changes come in one page, with the
delta link), and tables without change tracking, since every emulated table has it enabled.
"""

from __future__ import annotations

from dataclasses import replace

from d365sap.emulators.dataverse.changes import (
    DELTA_TOKEN,
    ChangeTracker,
    ChangeTrackingError,
    TrackedRead,
)
from d365sap.emulators.dataverse.messages import WebApiRequest, WebApiResponse
from d365sap.emulators.dataverse.query import parse_query
from d365sap.emulators.dataverse.query.options import split_query
from d365sap.emulators.dataverse.query_views import SchemaViews
from d365sap.emulators.dataverse.reads import TEXT, Reads
from d365sap.emulators.dataverse.serialize import Serializer
from d365sap.emulators.dataverse.store import Store
from d365sap.emulators.dataverse.uri import Target


class TrackedReads:
    """``DataverseService.tracked_read`` for one environment."""

    def __init__(
        self, store: Store, views: SchemaViews, reads: Reads, tracker: ChangeTracker
    ) -> None:
        self.store = store
        self.views = views
        self.reads = reads
        self.tracker = tracker

    def __call__(
        self, request: WebApiRequest, target: Target, serializer: Serializer
    ) -> WebApiResponse:
        """Answer a tracked GET on a collection (or its ``$count``)."""
        try:
            return self._answer(request, target, serializer)
        except ChangeTrackingError as refused:
            return refused.response()

    def _answer(
        self, request: WebApiRequest, target: Target, serializer: Serializer
    ) -> WebApiResponse:
        table = target.table
        pairs = split_query(request.query.lstrip("?"))
        names = [name for name, _ in pairs]
        token = dict(pairs).get(DELTA_TOKEN)
        if target.count and token is None:
            return self.reads.read(request, target, serializer)
        tracked = TrackedRead(
            table=table.logical_name,
            entity_set=table.entity_set,
            key=table.primary_id,
            change_tracking_enabled=table.change_tracking,
            select=None,
            service_root=serializer.root,
        )
        self.tracker.check_query(tracked, names)
        if target.count:
            assert token is not None
            count = self.tracker.count(tracked, token)
            return WebApiResponse(200, {"content-type": TEXT}, str(count).encode())
        view = self.views.view(table.logical_name)
        options = parse_query(view, request.query, request.header("prefer"))
        tracked = replace(tracked, select=options.select)
        version = self.store.version
        rows = [
            serializer.row(table, row, options.select)
            for row in self.store.rows(table.logical_name)
        ]
        body = self.tracker.respond(tracked, token, rows, options=names, as_of=version, shape=False)
        applied = options.preferences.applied(annotations=serializer.annotated)
        headers = {"preference-applied": applied} if applied else dict(body.headers)
        return WebApiResponse.json(200, body.document(), headers)

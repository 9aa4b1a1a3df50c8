"""GET: collections with filter, order, client and server paging, single entities, ``$count``.

Server paging follows SAP: at most ``page_size`` entities per reply and a ``__next`` link whose
``$skiptoken`` says how many of the requested rows were already delivered; the other options
are carried over unchanged so the next page is the same query.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from d365sap.emulators.s4.filter import evaluate
from d365sap.emulators.s4.messages import ODataRequest, ODataResponse
from d365sap.emulators.s4.query import QueryOptions
from d365sap.emulators.s4.serialize import Serializer
from d365sap.emulators.s4.store import Record
from d365sap.emulators.s4.uri import Target
from d365sap.emulators.s4.values import to_json


def _ordered(rows: list[Record], orderby: list[tuple[str, bool]]) -> list[Record]:
    result = list(rows)
    for name, descending in reversed(orderby):
        present = [r for r in result if r.values.get(name) is not None]
        missing = [r for r in result if r.values.get(name) is None]
        present.sort(key=lambda r: r.values[name], reverse=descending)
        result = present + missing if descending else missing + present
    return result


def _next_link(request: ODataRequest, options: QueryOptions, token: int) -> str:
    pairs = [(k, v) for k, v in options.pairs if k != "$skiptoken"]
    pairs.append(("$skiptoken", str(token)))
    query = urlencode(pairs, safe="$,'()/*=", quote_via=quote)
    return f"{request.service_root}{request.path}?{query}"


def read(
    serializer: Serializer,
    request: ODataRequest,
    target: Target,
    options: QueryOptions,
    page_size: int,
) -> ODataResponse:
    """Answer a GET on ``target``."""
    entity_set = target.entity_set
    if target.record is not None:
        record = target.record
        headers = {"etag": record.etag}
        if target.prop is not None:
            prop = entity_set.properties[target.prop]
            value = to_json(prop, record.values.get(prop.name))
            return ODataResponse.json(200, {"d": {prop.name: value}}, headers)
        document = serializer.entity(entity_set, record, options.shape)
        return ODataResponse.json(200, {"d": document}, headers)
    rows = list(target.rows or [])
    if options.filter is not None:
        node = options.filter
        rows = [r for r in rows if evaluate(node, r.values) is True]
    if target.count:
        body = str(len(rows)).encode()
        return ODataResponse(200, {"content-type": "text/plain; charset=utf-8"}, body)
    total = len(rows)
    rows = _ordered(rows, options.orderby)
    start = options.skip + options.skiptoken
    limit = page_size
    if options.top is not None:
        limit = max(0, min(page_size, options.top - options.skiptoken))
    page = rows[start : start + limit]
    delivered = options.skiptoken + len(page)
    more = start + len(page) < total and (options.top is None or delivered < options.top)
    payload: dict[str, Any] = {}
    if options.inlinecount:
        payload["__count"] = str(total)
    payload["results"] = [serializer.entity(entity_set, r, options.shape) for r in page]
    if more:
        payload["__next"] = _next_link(request, options, delivered)
    return ODataResponse.json(200, {"d": payload})

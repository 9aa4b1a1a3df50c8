"""Reading a collection request's query string into :class:`QueryOptions`.

``parse_query`` is the one entry point the service core calls before reading rows. It
refuses, with Dataverse's error, everything Dataverse refuses: ``$skip``, ``$search`` and
``$format`` ("The query parameter $skip is not supported"), unknown ``$`` options, an option
given twice, a ``$filter``/``$orderby``/``$expand``/``$top`` under change tracking, and any
unknown column. Option names are case-sensitive. ``+`` in the query string is a space (the
reason Microsoft tells clients to write ``%2B``). Parameter aliases (``@p1=…``) are resolved
in ``$filter`` and ``$orderby``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

from d365sap.emulators.dataverse.query import errors
from d365sap.emulators.dataverse.query.clauses import (
    parse_count,
    parse_orderby,
    parse_select,
    parse_top,
)
from d365sap.emulators.dataverse.query.expand import ExpandItem, parse_expand
from d365sap.emulators.dataverse.query.filter_nodes import Node
from d365sap.emulators.dataverse.query.filter_parser import parse_filter
from d365sap.emulators.dataverse.query.paging import (
    DEFAULT_SIGNER,
    Cursor,
    PagingSigner,
    decode_skiptoken,
    fingerprint,
)
from d365sap.emulators.dataverse.query.prefer import Preferences, parse_prefer
from d365sap.emulators.dataverse.query.sorting import OrderBy
from d365sap.emulators.dataverse.query.types import QueryTable

SUPPORTED = frozenset(
    {"$select", "$filter", "$orderby", "$top", "$count", "$expand", "$skiptoken", "$deltatoken"}
)
REFUSED = frozenset({"$skip", "$search", "$format"})
NOT_IMPLEMENTED = frozenset({"$apply", "fetchXml", "savedQuery", "userQuery"})
CHANGE_TRACKING_REFUSED = ("$filter", "$orderby", "$expand", "$top")


@dataclass(frozen=True)
class QueryOptions:
    """A collection request's query options, bound to the table.

    ``select`` is ``None`` for all columns; ``cursor`` is the decoded ``$skiptoken``;
    ``deltatoken`` is passed through untouched for change tracking; ``fingerprint``
    identifies the row selection and order a paging cookie belongs to.
    """

    select: tuple[str, ...] | None = None
    filter: Node | None = None
    orderby: tuple[OrderBy, ...] = ()
    top: int | None = None
    count: bool = False
    expand: tuple[ExpandItem, ...] = ()
    cursor: Cursor | None = None
    deltatoken: str | None = None
    preferences: Preferences = field(default_factory=Preferences)
    fingerprint: str = ""
    aliases: Mapping[str, str] = field(default_factory=dict)

    @property
    def page_size(self) -> int:
        """Rows per page (``Prefer: odata.maxpagesize``, at most 5000)."""
        return self.preferences.page_size


def split_query(query: str) -> list[tuple[str, str]]:
    """``a=1&b=2`` → decoded pairs, in order (``+`` is a space)."""
    pairs = []
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((unquote_plus(name), unquote_plus(value)))
    return pairs


def _check_names(pairs: list[tuple[str, str]]) -> dict[str, str]:
    options: dict[str, str] = {}
    for name, value in pairs:
        if name in NOT_IMPLEMENTED:
            raise errors.not_implemented(
                f"The query option '{name}' is not implemented by the Dataverse emulator."
            )
        if name.startswith("$"):
            if name in REFUSED or name not in SUPPORTED:
                raise errors.unsupported_option(name)
            if name in options:
                raise errors.odata(
                    f"Query option '{name}' was specified more than once, but it must be "
                    "specified at most once."
                )
            options[name] = value
    return options


def selected_columns(table: QueryTable, options: QueryOptions) -> tuple[str, ...] | None:
    """The columns to return: the ``$select`` list plus the primary key (always returned);
    ``None`` for all columns."""
    if options.select is None:
        return None
    if table.primary_id in options.select:
        return options.select
    return (*options.select, table.primary_id)


def parse_query(
    table: QueryTable,
    query_string: str,
    prefer: str | None = None,
    *,
    signer: PagingSigner = DEFAULT_SIGNER,
) -> QueryOptions:
    """Parse and bind a collection request's query string (raw, percent-encoded) and its
    ``Prefer`` header; raises :class:`~.errors.QueryError`."""
    pairs = split_query(query_string.lstrip("?"))
    options = _check_names(pairs)
    aliases = {name: value for name, value in pairs if name.startswith("@")}
    preferences = parse_prefer(prefer)
    if preferences.track_changes:
        for name in CHANGE_TRACKING_REFUSED:
            if name in options:
                raise errors.odata(
                    f'The "{name}" query parameter isn\'t supported when Change Tracking is '
                    "enabled."
                )
    filter_text = options.get("$filter")
    orderby_text = options.get("$orderby")
    query_fingerprint = fingerprint(
        table.entity_set,
        filter_text,
        "\x1e".join([orderby_text or "", *(f"{k}={v}" for k, v in sorted(aliases.items()))]),
    )
    cursor = None
    if "$skiptoken" in options:
        cursor = decode_skiptoken(options["$skiptoken"], query_fingerprint, signer)
    return QueryOptions(
        select=parse_select(options["$select"], table) if "$select" in options else None,
        filter=parse_filter(filter_text, table, aliases) if filter_text is not None else None,
        orderby=parse_orderby(orderby_text, table, aliases) if orderby_text is not None else (),
        top=parse_top(options["$top"]) if "$top" in options else None,
        count=parse_count(options["$count"]) if "$count" in options else False,
        expand=parse_expand(options["$expand"], table) if "$expand" in options else (),
        cursor=cursor,
        deltatoken=options.get("$deltatoken"),
        preferences=preferences,
        fingerprint=query_fingerprint,
        aliases=aliases,
    )

"""``$expand``: navigation properties to include, with their nested options.

``primarycontactid($select=fullname),Account_Tasks($select=subject;$filter=…;$orderby=…;
$top=5;$expand=…)`` becomes a tree of :class:`ExpandItem`, bound against each target table.
Dataverse's rules are enforced while parsing: at most 15 expansions in a query, ``/$ref``
only on single-valued navigation properties, ``$top``/``$orderby`` only on a collection and
only when no ``$expand`` is nested anywhere, no ``$skip``/``$count``/``$search``/``$levels``
inside, no parameter aliases inside. Executing the expansion (reading related rows) is the
store's job; :func:`shape_related` applies an item's filter, order and top to the rows it
found.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from d365sap.emulators.dataverse.query import errors
from d365sap.emulators.dataverse.query.clauses import (
    parse_orderby,
    parse_select,
    parse_top,
    split_top_level,
)
from d365sap.emulators.dataverse.query.filter_eval import EvalContext, matches
from d365sap.emulators.dataverse.query.filter_nodes import Node
from d365sap.emulators.dataverse.query.filter_parser import parse_filter
from d365sap.emulators.dataverse.query.sorting import OrderBy, sort_rows, sort_specs
from d365sap.emulators.dataverse.query.types import QueryTable, Row, type_name

MAX_EXPANSIONS = 15
_ITEM = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)(/\$ref)?\s*(?:\((.*)\))?\s*", re.DOTALL)
_REFUSED_INSIDE = frozenset({"$skip", "$count", "$search", "$levels"})
_ALLOWED_INSIDE = frozenset({"$select", "$filter", "$orderby", "$top", "$expand"})
_ONLY_SELECT_FILTER = (
    "Only $select and $filter clause can be provided while doing $expand on many-to-one "
    "relationship or nested one-to-many relationship."
)


@dataclass(frozen=True, eq=False)
class ExpandItem:
    """One expanded navigation property and what to do with the related rows."""

    navigation: str
    target: QueryTable
    collection: bool
    ref: bool = False
    select: tuple[str, ...] | None = None
    filter: Node | None = None
    orderby: tuple[OrderBy, ...] = ()
    top: int | None = None
    expand: tuple[ExpandItem, ...] = ()


def _walk(items: Iterable[ExpandItem]) -> Iterator[ExpandItem]:
    for item in items:
        yield item
        yield from _walk(item.expand)


def _options(text: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for offset, piece in split_top_level(text, ";"):
        name, equals, value = piece.strip().partition("=")
        name = name.strip()
        if not equals:
            raise errors.syntax("Syntax error", offset, text)
        if name in _REFUSED_INSIDE:
            raise errors.unsupported_option(name)
        if name not in _ALLOWED_INSIDE:
            raise errors.odata(f"The query option '{name}' is not allowed inside $expand.")
        if name in options:
            raise errors.odata(
                f"Query option '{name}' was specified more than once, but it must be "
                "specified at most once."
            )
        options[name] = value
    return options


def _item(offset: int, piece: str, text: str, table: QueryTable) -> ExpandItem:
    match = _ITEM.fullmatch(piece)
    if match is None:
        raise errors.syntax("Syntax error", offset, text)
    name, ref, inner = match.group(1), bool(match.group(2)), match.group(3)
    navigation = table.navigation(name)
    if navigation is None:
        if table.column(name) is not None:
            raise errors.odata(
                f"Property '{name}' on type '{type_name(table)}' is not a navigation property "
                "or complex property. Only navigation properties can be expanded."
            )
        raise errors.unknown_property(name, table)
    target = navigation.target
    if ref and navigation.collection:
        raise errors.odata("Expand with $ref is only supported on lookup type navigation property.")
    options = _options(inner) if inner is not None and inner.strip() else {}
    if ref and options:
        raise errors.odata(f"'{name}/$ref' cannot have query options.")
    orderby = parse_orderby(options["$orderby"], target, None) if "$orderby" in options else ()
    top = parse_top(options["$top"]) if "$top" in options else None
    if not navigation.collection and (orderby or top is not None):
        raise errors.odata(_ONLY_SELECT_FILTER)
    return ExpandItem(
        navigation=name,
        target=target,
        collection=navigation.collection,
        ref=ref,
        select=parse_select(options["$select"], target) if "$select" in options else None,
        filter=parse_filter(options["$filter"], target, None) if "$filter" in options else None,
        orderby=orderby,
        top=top,
        expand=_items(options["$expand"], target) if "$expand" in options else (),
    )


def _items(text: str, table: QueryTable) -> tuple[ExpandItem, ...]:
    items: list[ExpandItem] = []
    for offset, piece in split_top_level(text, ","):
        if not piece.strip():
            raise errors.syntax("Syntax error", offset, text)
        item = _item(offset, piece, text, table)
        if any(existing.navigation == item.navigation for existing in items):
            raise errors.odata(
                f"The navigation property '{item.navigation}' is expanded more than once."
            )
        items.append(item)
    return tuple(items)


def parse_expand(text: str, table: QueryTable) -> tuple[ExpandItem, ...]:
    """Parse and bind a ``$expand`` value against ``table``."""
    if not text.strip():
        return ()
    items = _items(text, table)
    every = list(_walk(items))
    if len(every) > MAX_EXPANSIONS:
        raise errors.odata(
            f"Number of link entities in query exceeded maximum limit of {MAX_EXPANSIONS} "
            f"(this $expand has {len(every)})."
        )
    if any(item.expand for item in every) and any(
        item.orderby or item.top is not None for item in every
    ):
        raise errors.odata(_ONLY_SELECT_FILTER)
    return items


def shape_related(
    item: ExpandItem, rows: Iterable[Row], context: EvalContext | None = None
) -> list[Row]:
    """The related rows ``item`` returns: filtered, ordered (then by key), cut to ``$top``."""
    kept = [row for row in rows if matches(item.filter, row, context)]
    ordered = sort_rows(kept, sort_specs(item.target, item.orderby))
    return ordered if item.top is None else ordered[: item.top]

"""System query options: ``$filter $select $expand $orderby $top $skip $skiptoken
$inlinecount $format``, validated against the entity type before anything is read.

``$select`` and ``$expand`` together become a :class:`Shape` tree that the serializer walks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from d365sap.emulators.s4 import errors
from d365sap.emulators.s4.edm import EntitySet, Model
from d365sap.emulators.s4.filter import FilterError, Node, parse_filter
from d365sap.emulators.s4.literals import ExpressionSyntaxError

SYSTEM_OPTIONS = frozenset(
    {
        "$filter",
        "$select",
        "$expand",
        "$orderby",
        "$top",
        "$skip",
        "$skiptoken",
        "$inlinecount",
        "$format",
    }
)
COLLECTION_ONLY = ("$orderby", "$skip", "$top", "$skiptoken", "$inlinecount")


@dataclass(frozen=True)
class Shape:
    """Properties to render (None = all), navigations to show deferred, what to expand."""

    select: frozenset[str] | None = None
    deferred: frozenset[str] = frozenset()
    expand: dict[str, Shape] = field(default_factory=dict)


@dataclass
class _ShapeBuilder:
    entity_set: EntitySet
    props: set[str] = field(default_factory=set)
    navs: set[str] = field(default_factory=set)
    selected: bool = False
    everything: bool = False
    children: dict[str, _ShapeBuilder] = field(default_factory=dict)

    def freeze(self) -> Shape:
        select = frozenset(self.props) if self.selected and not self.everything else None
        return Shape(
            select=select,
            deferred=frozenset(self.navs),
            expand={name: child.freeze() for name, child in self.children.items()},
        )


@dataclass
class QueryOptions:
    """The parsed options of one request; ``pairs`` keeps them for building ``__next``."""

    pairs: list[tuple[str, str]]
    filter: Node | None = None
    shape: Shape = field(default_factory=Shape)
    orderby: list[tuple[str, bool]] = field(default_factory=list)
    top: int | None = None
    skip: int = 0
    skiptoken: int = 0
    inlinecount: bool = False


def _uri_error(message: str, prop: str = "") -> errors.ODataError:
    if prop:
        return errors.property_error(400, errors.URI_SYNTAX, message, prop)
    return errors.ODataError(400, errors.URI_SYNTAX, message)


def _non_negative(name: str, text: str) -> int:
    if not text.isdigit():
        raise _uri_error(f"Invalid value '{text}' for system query option {name}")
    return int(text)


def _build_shape(model: Model, entity_set: EntitySet, expand: str, select: str | None) -> Shape:
    root = _ShapeBuilder(entity_set)
    for item in (p.strip() for p in expand.split(",") if p.strip()):
        node = root
        for name in item.split("/"):
            nav = node.entity_set.navigations.get(name)
            if nav is None:
                raise _uri_error(
                    f"Navigation property '{name}' not found in type "
                    f"'{node.entity_set.type_name}' ($expand={item})",
                    name,
                )
            node = node.children.setdefault(name, _ShapeBuilder(model.entity_sets[nav.target_set]))
    if select is None:
        return root.freeze()
    for item in (p.strip() for p in select.split(",")):
        if not item:
            raise _uri_error(f"Invalid $select '{select}'")
        node = root
        node.selected = True
        parts = item.split("/")
        for position, name in enumerate(parts):
            last = position == len(parts) - 1
            if name == "*" and last:
                node.everything = True
            elif name in node.entity_set.properties and last:
                node.props.add(name)
            elif name in node.entity_set.navigations:
                node.navs.add(name)
                child = node.children.get(name)
                if child is None:
                    if not last:
                        raise _uri_error(
                            f"Navigation property '{name}' in $select must also be in $expand",
                            name,
                        )
                    break
                node = child
                if last:
                    node.selected = True
                    node.everything = True
                else:
                    node.selected = True
            else:
                raise _uri_error(
                    f"Property '{name}' not found in type '{node.entity_set.type_name}' "
                    f"($select={item})",
                    name,
                )
    return root.freeze()


def _orderby(entity_set: EntitySet, text: str) -> list[tuple[str, bool]]:
    result: list[tuple[str, bool]] = []
    for item in (p.strip() for p in text.split(",")):
        words = item.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise _uri_error(f"Invalid $orderby '{text}'")
        if words[0] not in entity_set.properties:
            raise _uri_error(
                f"Property '{words[0]}' not found in type '{entity_set.type_name}' ($orderby)",
                words[0],
            )
        result.append((words[0], len(words) == 2 and words[1] == "desc"))
    return result


def _filter(entity_set: EntitySet, text: str) -> Node:
    try:
        return parse_filter(text, entity_set)
    except FilterError as exc:
        message = f"Invalid filter expression '{text}': {exc}"
        if exc.prop:
            return_error = errors.property_error(400, errors.FILTER_INVALID, message, exc.prop)
        else:
            return_error = errors.ODataError(400, errors.FILTER_INVALID, message)
        raise return_error from exc
    except ExpressionSyntaxError as exc:
        raise errors.ODataError(
            400, errors.FILTER_INVALID, f"Invalid filter expression '{text}': {exc}"
        ) from exc


def parse_query(
    model: Model, entity_set: EntitySet, raw_query: str, *, single: bool
) -> QueryOptions:
    """Parse and validate ``raw_query`` for a request on ``entity_set``."""
    pairs = parse_qsl(raw_query, keep_blank_values=True)
    seen: dict[str, str] = {}
    for name, value in pairs:
        if not name.startswith("$"):
            continue
        if name not in SYSTEM_OPTIONS:
            raise _uri_error(f"System query option '{name}' is not supported")
        if name in seen:
            raise _uri_error(f"System query option '{name}' is given more than once")
        seen[name] = value
    if single:
        offending = [name for name in COLLECTION_ONLY if name in seen]
        if offending:
            raise errors.ODataError(
                400,
                errors.QUERY_OPTIONS_NOT_ALLOWED,
                f"System query options '{','.join(COLLECTION_ONLY)}' are not allowed in the "
                "requested URI",
            )
    fmt = seen.get("$format")
    if fmt is not None and fmt != "json":
        raise errors.ODataError(
            415,
            errors.UNSUPPORTED_MEDIA,
            f"Format '{fmt}' is not supported by this emulator; use $format=json",
        )
    options = QueryOptions(pairs=pairs)
    options.shape = _build_shape(model, entity_set, seen.get("$expand", ""), seen.get("$select"))
    if "$filter" in seen:
        options.filter = _filter(entity_set, seen["$filter"])
    if "$orderby" in seen:
        options.orderby = _orderby(entity_set, seen["$orderby"])
    if "$top" in seen:
        options.top = _non_negative("$top", seen["$top"])
    options.skip = _non_negative("$skip", seen["$skip"]) if "$skip" in seen else 0
    if "$skiptoken" in seen:
        options.skiptoken = _non_negative("$skiptoken", seen["$skiptoken"])
    inline = seen.get("$inlinecount")
    if inline not in (None, "allpages", "none"):
        raise _uri_error(f"Invalid value '{inline}' for system query option $inlinecount")
    options.inlinecount = inline == "allpages"
    return options

"""Resource paths below ``/api/data/v9.2/``: entity sets, keys, navigation, properties.

Understood forms::

    accounts                                  collection
    accounts/$count                           number of rows
    accounts(00000000-0000-0000-0000-000000000001)
    accounts(accountnumber='A-1')             alternate key (string values quoted, '' escapes ')
    sap_linkederporgs(sap_erpsystemtype=100000000,sap_vkorg='1710',sap_vtweg='10',sap_spart='00')
    accounts(<key>)/name                      one property ({"value": …})
    accounts(<key>)/name/$value               the raw value
    accounts(<key>)/primarycontactid          the row a lookup points at
    accounts(<key>)/contact_customer_accounts rows pointing at this one ($count after it too)
    accounts(<key>)/parentaccountid/$ref      the link itself (PUT/DELETE to set or clear it)

Names are case-sensitive, as in Dataverse. Every segment is percent-decoded once, after the path
is split on ``/``, so an encoded slash inside a key value stays inside it.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from dataclasses import dataclass, field
from urllib.parse import unquote

from d365sap.emulators.dataverse import errors
from d365sap.emulators.dataverse.columns import Column, Kind
from d365sap.emulators.dataverse.schema import AlternateKey, Navigation, Schema, Table

_SEGMENT = re.compile(r"^(?P<name>[^()]+)(?:\((?P<predicate>.*)\))?$", re.DOTALL)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
SYNTAX = "Bad Request - Error in query syntax."


@dataclass(frozen=True, slots=True)
class Segment:
    """One path segment: a name and, if present, the text between its parentheses."""

    name: str
    predicate: str | None = None


@dataclass(frozen=True, slots=True)
class KeyRef:
    """How a request names one row: by primary key or by an alternate key's values."""

    table: Table
    row_id: str | None = None
    key: AlternateKey | None = None
    values: dict[str, object] = field(default_factory=dict)

    def describe(self) -> str:
        """The key as a message quotes it."""
        if self.row_id is not None:
            return self.row_id
        return ",".join(f"{name}={value!r}" for name, value in self.values.items())


@dataclass(frozen=True, slots=True)
class Target:
    """What a path addresses.

    ``key`` names a row of ``table``; ``navigation`` then leads from that row to another table
    (``related`` is that table). ``column`` is a single property, ``raw`` its ``$value``,
    ``count`` a ``$count`` and ``ref`` a ``$ref`` of the navigation.
    """

    table: Table
    key: KeyRef | None = None
    navigation: Navigation | None = None
    related: Table | None = None
    column: Column | None = None
    raw: bool = False
    count: bool = False
    ref: bool = False

    @property
    def single(self) -> bool:
        """One row (or one property of it), not a collection."""
        if self.count:
            return False
        if self.navigation is not None:
            return not self.navigation.collection
        return self.key is not None

    @property
    def result_table(self) -> Table:
        """The table whose rows the target returns."""
        return self.related or self.table


def split_path(path: str) -> list[Segment]:
    """Segments of ``path`` (below the service root), percent-decoded."""
    parts = [part for part in path.split("/") if part != ""]
    segments: list[Segment] = []
    for part in parts:
        text = unquote(part)
        match = _SEGMENT.match(text)
        if match is None:
            raise errors.bad_request(f"{SYNTAX} The segment '{text}' is malformed.")
        segments.append(Segment(match.group("name"), match.group("predicate")))
    return segments


def _split_predicate(text: str) -> list[str]:
    """Comma-separated parts of a key predicate, commas inside quotes kept."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == "'":
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    if quoted:
        raise errors.bad_request(f"{SYNTAX} Unterminated string literal in '{text}'.")
    parts.append("".join(current).strip())
    return parts


def literal(column: Column, text: str, where: str) -> object:
    """The value of a key literal for ``column``, checked against its type."""
    if text.startswith("'") and text.endswith("'") and len(text) >= 2:
        if column.kind not in (Kind.STRING, Kind.MEMO):
            raise errors.bad_request(
                f"{SYNTAX} The key value {text} for '{column.property_name}' in {where} is a "
                f"string, but the property is {column.edm_type}."
            )
        return text[1:-1].replace("''", "'")
    if column.edm_type == "Edm.Guid" and _GUID.match(text):
        return text.lower()
    if column.edm_type in ("Edm.Int32", "Edm.Int64") and _NUMBER.match(text) and "." not in text:
        return int(text)
    raise errors.bad_request(
        f"{SYNTAX} The key value '{text}' for '{column.property_name}' in {where} is not a "
        f"valid {column.edm_type} literal."
    )


def parse_key(table: Table, predicate: str) -> KeyRef:
    """The row named by ``predicate`` (the text between the parentheses)."""
    where = f"'{table.entity_set}({predicate})'"
    text = predicate.strip()
    if _GUID.match(text):
        return KeyRef(table, row_id=text.lower())
    pairs: dict[str, str] = {}
    for part in _split_predicate(text):
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise errors.bad_request(
                f"{SYNTAX} The key predicate {where} is neither a GUID nor a list of "
                "name=value pairs."
            )
        name = name.strip()
        if name in pairs:
            raise errors.bad_request(
                f"{SYNTAX} The key property '{name}' appears twice in {where}."
            )
        pairs[name] = value.strip()
    columns: dict[str, Column] = {}
    for name in pairs:
        column = table.column(name) or table.by_property(name)
        if column is None:
            raise errors.key_not_defined(table.logical_name, ", ".join(pairs))
        columns[name] = column
    if len(pairs) == 1:
        ((name, text_value),) = pairs.items()
        if columns[name].name == table.primary_id:
            return KeyRef(table, row_id=str(literal(columns[name], text_value, where)))
    key = table.key_named(column.name for column in columns.values())
    if key is None:
        raise errors.key_not_defined(table.logical_name, ", ".join(pairs))
    values = {
        columns[name].property_name: literal(columns[name], text_value, where)
        for name, text_value in pairs.items()
    }
    return KeyRef(table, key=key, values=values)


def resolve(schema: Schema, segments: list[Segment]) -> Target:
    """What ``segments`` address; raises the 404 or 400 Dataverse gives for a bad path."""
    head = segments[0]
    table = schema.by_set.get(head.name)
    if table is None:
        raise errors.segment_not_found(head.name)
    key = parse_key(table, head.predicate) if head.predicate is not None else None
    target = Target(table, key=key)
    for segment in segments[1:]:
        target = _step(schema, target, segment)
    return target


def _step(schema: Schema, target: Target, segment: Segment) -> Target:
    name = segment.name
    if target.raw or target.count or target.ref:
        raise errors.segment_not_found(name)
    if name == "$count" and segment.predicate is None and not target.single:
        return _with(target, count=True)
    if name == "$value" and segment.predicate is None and target.column is not None:
        return _with(target, raw=True)
    if name == "$ref" and segment.predicate is None and target.navigation is not None:
        return _with(target, ref=True)
    if target.key is None or target.navigation is not None or target.column is not None:
        raise errors.segment_not_found(name)
    if segment.predicate is not None:
        raise errors.segment_not_found(f"{name}({segment.predicate})")
    navigation = schema.navigation(target.table.logical_name, name)
    if navigation is not None:
        return _with(target, navigation=navigation, related=schema.table(navigation.target))
    column = target.table.by_property(name)
    if column is not None:
        return _with(target, column=column)
    raise errors.segment_not_found(name)


def _with(target: Target, **changes: object) -> Target:
    return dataclasses.replace(target, **changes)  # type: ignore[arg-type]


def parse_reference(schema: Schema, reference: str, service_root: str) -> KeyRef:
    """The row an ``@odata.bind`` or ``@odata.id`` value names.

    Accepted: ``/accounts(<guid>)``, ``accounts(<guid>)``, the absolute URL below the service
    root, and alternate keys in the same forms.
    """
    text = reference.strip()
    if text.startswith(service_root):
        text = text[len(service_root) :]
    elif "://" in text:
        marker = "/api/data/"
        at = text.find(marker)
        text = text[at + len(marker) :].partition("/")[2] if at >= 0 else text
    segments = split_path(text)
    if len(segments) != 1 or segments[0].predicate is None:
        raise ValueError(f"'{reference}' does not name one row (use /<entity set>(<key>))")
    table = schema.by_set.get(segments[0].name)
    if table is None:
        raise ValueError(f"'{reference}' names no entity set ('{segments[0].name}')")
    return parse_key(table, segments[0].predicate)


def is_guid(text: str) -> bool:
    """Whether ``text`` is a GUID in the 8-4-4-4-12 form."""
    return bool(_GUID.match(text))


def new_id() -> str:
    """A new primary key value (lower case, as Dataverse writes GUIDs)."""
    return str(uuid.uuid4())

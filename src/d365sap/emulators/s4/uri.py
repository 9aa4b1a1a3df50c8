"""Resource paths below the service root: parsing and resolving them against the data.

``A_Customer('17100001')/to_CustomerSalesArea`` is split into segments on the raw
(still percent-encoded) path, so an encoded ``/`` inside a key value never splits a segment;
key predicates are then decoded and read with the shared literal tokenizer, typed against the
key properties of the entity type.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload
from urllib.parse import unquote

from d365sap.emulators.s4 import errors
from d365sap.emulators.s4.edm import EntitySet, Model, Navigation, Property
from d365sap.emulators.s4.literals import ExpressionSyntaxError, Tok, Token, tokenize
from d365sap.emulators.s4.store import Key, Record, Store
from d365sap.emulators.s4.values import INT_RANGES, NUMERIC_TYPES


class LazyRows(Sequence[Record]):
    """The rows of an entity set, read (and sorted) only when first used.

    A query whose filter fixes the whole key is answered by a key lookup and never reads them.
    """

    def __init__(self, store: Store, set_name: str) -> None:
        self._store = store
        self._set_name = set_name
        self._rows: list[Record] | None = None

    def _load(self) -> list[Record]:
        if self._rows is None:
            self._rows = self._store.rows(self._set_name)
        return self._rows

    def __len__(self) -> int:
        return len(self._load())

    @overload
    def __getitem__(self, index: int) -> Record: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Record]: ...

    def __getitem__(self, index: int | slice) -> Record | Sequence[Record]:
        return self._load()[index]

    def __iter__(self) -> Iterator[Record]:
        return iter(self._load())


@dataclass(frozen=True, slots=True)
class Segment:
    """One path segment: a name and the raw text of its key predicate, if any."""

    name: str
    predicate: str | None


@dataclass(frozen=True)
class Target:
    """What a resource path addresses.

    ``record`` is set when the path ends on a single entity; ``parent`` when the last hop was a
    navigation (a POST there creates a child of that parent); ``prop`` for a property read.
    """

    entity_set: EntitySet
    record: Record | None = None
    rows: Sequence[Record] | None = None
    parent: tuple[EntitySet, Record, Navigation] | None = None
    prop: str | None = None
    count: bool = False
    key: Key | None = None

    @property
    def single(self) -> bool:
        """True when the path addresses one entity, not a collection."""
        return self.rows is None


def split_path(raw_path: str) -> list[Segment]:
    """Split the encoded path into segments and key predicates."""
    segments: list[Segment] = []
    for raw in raw_path.split("/"):
        if raw == "":
            continue
        text = unquote(raw)
        if "(" in text:
            if not text.endswith(")"):
                raise errors.ODataError(
                    400, errors.URI_SYNTAX, f"Invalid key predicate in segment '{text}'"
                )
            name, _, rest = text.partition("(")
            segments.append(Segment(name, rest[:-1]))
        else:
            segments.append(Segment(text, None))
    return segments


def _typed_key(prop: Property, token: Token, segment: str) -> Any:
    kind = token.edm_type
    if kind == prop.edm_type or (
        kind in ("Edm.Int32", "Edm.Int64") and prop.edm_type in INT_RANGES
    ):
        return token.value
    if kind in NUMERIC_TYPES and prop.edm_type in NUMERIC_TYPES:
        return token.value
    raise errors.property_error(
        400,
        errors.URI_SYNTAX,
        f"Invalid key predicate in segment '{segment}': key property '{prop.name}' "
        f"({prop.edm_type}) cannot take the literal {token.text}",
        prop.name,
    )


def parse_key(entity_set: EntitySet, predicate: str, segment: str) -> Key:
    """``'1'`` or ``Customer='1',SalesOrganization='1710',...`` into the key tuple."""
    invalid = f"Invalid key predicate in segment '{segment}'"
    try:
        tokens = tokenize(predicate)
    except ExpressionSyntaxError as exc:
        raise errors.ODataError(400, errors.URI_SYNTAX, f"{invalid}: {exc}") from exc
    keys = entity_set.keys
    if tokens[0].kind is Tok.LITERAL:
        if len(keys) != 1:
            raise errors.ODataError(
                400,
                errors.URI_SYNTAX,
                f"{invalid}: '{entity_set.type_name}' has {len(keys)} key properties "
                f"({', '.join(keys)}); name each of them",
            )
        if len(tokens) != 2:
            raise errors.ODataError(400, errors.URI_SYNTAX, invalid)
        return (_typed_key(entity_set.properties[keys[0]], tokens[0], segment),)
    values: dict[str, Any] = {}
    index = 0
    while index < len(tokens) - 1:
        chunk = tokens[index : index + 3]
        if (
            len(chunk) < 3
            or chunk[0].kind is not Tok.NAME
            or chunk[1].kind is not Tok.EQUALS
            or chunk[2].kind is not Tok.LITERAL
        ):
            raise errors.ODataError(400, errors.URI_SYNTAX, invalid)
        name = chunk[0].text
        if name not in keys or name in values:
            raise errors.property_error(
                400,
                errors.URI_SYNTAX,
                f"{invalid}: '{name}' is not a key property of '{entity_set.type_name}'",
                name,
            )
        values[name] = _typed_key(entity_set.properties[name], chunk[2], segment)
        index += 3
        if tokens[index].kind is Tok.COMMA:
            index += 1
        elif tokens[index].kind is not Tok.END:
            raise errors.ODataError(400, errors.URI_SYNTAX, invalid)
    missing = [k for k in keys if k not in values]
    if missing:
        raise errors.property_error(
            400,
            errors.URI_SYNTAX,
            f"{invalid}: key property '{missing[0]}' is missing",
            missing[0],
        )
    return tuple(values[k] for k in keys)


def _lookup(entity_set: EntitySet, rows: list[Record], key: Key) -> Record:
    for row in rows:
        if entity_set.key_of(row.values) == key:
            return row
    raise errors.not_found(entity_set.type_name)


def resolve(model: Model, store: Store, segments: list[Segment]) -> Target:
    """Walk the segments through the data; unknown names or keys are SAP's 404."""
    first = segments[0]
    entity_set = model.entity_set(first.name)
    if entity_set is None:
        raise errors.not_found(first.name)
    current = Target(entity_set, rows=LazyRows(store, entity_set.name))
    if first.predicate is not None:
        key = parse_key(entity_set, first.predicate, first.name + f"({first.predicate})")
        record = store.get(entity_set.name, key)
        if record is None:
            raise errors.not_found(entity_set.type_name)
        current = Target(entity_set, record=record, key=key)
    for position, segment in enumerate(segments[1:], start=1):
        last = position == len(segments) - 1
        if segment.name == "$count" and last and current.rows is not None:
            return Target(current.entity_set, rows=current.rows, parent=current.parent, count=True)
        if current.record is None:
            raise errors.ODataError(
                400,
                errors.URI_SYNTAX,
                f"Segment '{segment.name}' must follow a single entity, not a collection",
            )
        source_set, record = current.entity_set, current.record
        if segment.name in source_set.properties and segment.predicate is None and last:
            return Target(source_set, record=record, prop=segment.name, key=current.key)
        nav = source_set.navigations.get(segment.name)
        if nav is None:
            raise errors.not_found(segment.name)
        target_set = model.entity_sets[nav.target_set]
        related = store.related(record.values, nav)
        parent = (source_set, record, nav)
        if segment.predicate is not None:
            key = parse_key(target_set, segment.predicate, segment.name)
            found = _lookup(target_set, related, key)
            current = Target(target_set, record=found, parent=parent, key=key)
        elif nav.to_many:
            current = Target(target_set, rows=related, parent=parent)
        else:
            if not related:
                raise errors.not_found(target_set.type_name)
            found = related[0]
            current = Target(
                target_set, record=found, parent=parent, key=target_set.key_of(found.values)
            )
    return current

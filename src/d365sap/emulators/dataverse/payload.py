"""Reading a create or update body: columns, ``@odata.bind`` references and deep inserts.

What the OData reader in front of Dataverse refuses is refused here, with its texts:

- a property the entity type does not declare (``The property 'x' does not exist on type …``);
- a ``x@odata.bind`` for something that is no navigation property (``An undeclared property
  'x' which only has property annotations …``), or pointing at the wrong entity set;
- a lookup value property ``_x_value`` set directly (``CRM do not support direct update of
  Entity Reference properties, Use Navigation properties instead.``);
- a value of the wrong JSON type, too long, out of range or no valid choice (``values``).

Read-only columns (``createdon``, ``versionnumber``, ``fullname``, …) are ignored, as Dataverse
ignores them; ``create_only`` columns likewise on update. A bound row must exist (404, as
Dataverse answers). Deep inserts (an object or list under a navigation property) are allowed on
create only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from d365sap.emulators.dataverse import errors
from d365sap.emulators.dataverse.columns import Column
from d365sap.emulators.dataverse.schema import Navigation, Schema, Table
from d365sap.emulators.dataverse.store import Store
from d365sap.emulators.dataverse.uri import KeyRef, parse_reference
from d365sap.emulators.dataverse.values import from_json

BIND = "@odata.bind"
TYPE = "@odata.type"
DIRECT_LOOKUP = (
    "CRM do not support direct update of Entity Reference properties, Use Navigation "
    "properties instead."
)
MAX_DEPTH = 10


class Mode(Enum):
    """What the body is for."""

    CREATE = "create"
    UPDATE = "update"


@dataclass(frozen=True, slots=True)
class Bind:
    """A single-valued navigation set by ``@odata.bind`` (``row_id`` None clears it)."""

    navigation: Navigation
    column: Column
    table: str
    row_id: str | None


@dataclass
class Payload:
    """A parsed body: plain column values, lookups to set, related rows to create or link."""

    table: Table
    values: dict[str, object] = field(default_factory=dict)
    binds: dict[str, Bind] = field(default_factory=dict)
    deep_single: list[tuple[Navigation, Payload]] = field(default_factory=list)
    deep_many: list[tuple[Navigation, list[Payload]]] = field(default_factory=list)
    links: list[tuple[Navigation, list[str]]] = field(default_factory=list)

    def given(self) -> frozenset[str]:
        """Property names the body sets (values and lookups)."""
        return frozenset(self.values) | frozenset(
            bind.column.property_name for bind in self.binds.values()
        )


def load_json(body: bytes, entity_set: str) -> Mapping[str, object]:
    """The body as a JSON object, or the payload error Dataverse gives."""
    try:
        document = json.loads(body.decode("utf-8")) if body.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise errors.payload(entity_set, f"Invalid JSON. {exc}") from None
    if not isinstance(document, dict):
        raise errors.payload(
            entity_set,
            "A node of type 'StartObject' was expected: the body must be one JSON object.",
        )
    return document


class PayloadReader:
    """Parses bodies of one table against the schema, resolving bound rows in the store."""

    def __init__(self, schema: Schema, store: Store, service_root: str) -> None:
        self.schema = schema
        self.store = store
        self.service_root = service_root

    def read(self, table: Table, document: Mapping[str, object], mode: Mode) -> Payload:
        """The parsed body; raises the Dataverse error for the first problem."""
        return self._read(table, document, mode, depth=0)

    def _read(
        self, table: Table, document: Mapping[str, object], mode: Mode, depth: int
    ) -> Payload:
        if depth > MAX_DEPTH:
            raise errors.payload(table.entity_set, "Deep insert is nested too deeply.")
        payload = Payload(table)
        for name, value in document.items():
            if name.startswith("@"):
                if name == TYPE:
                    self._check_type(table, value)
                continue
            if "@" in name:
                prop, _, annotation = name.partition("@")
                if annotation == "odata.bind":
                    self._bind(payload, prop, value)
                elif self._declared(table, prop) is None:
                    raise errors.payload(table.entity_set, _undeclared(prop))
                continue
            navigation = self.schema.navigation(table.logical_name, name)
            if navigation is not None and (value is None or isinstance(value, dict | list)):
                self._deep(payload, navigation, value, mode, depth)
                continue
            self._column(payload, name, value, mode)
        return payload

    def _declared(self, table: Table, name: str) -> object | None:
        return table.by_property(name) or self.schema.navigation(table.logical_name, name)

    def _check_type(self, table: Table, value: object) -> None:
        expected = f"#{table.type_name}"
        if value not in (expected, table.type_name):
            raise errors.payload(
                table.entity_set,
                f"A resource with type '{value}' was found, but it is not compatible with the "
                f"expected type '{table.type_name}'.",
            )

    def _column(self, payload: Payload, name: str, value: object, mode: Mode) -> None:
        table = payload.table
        column = table.by_property(name)
        if column is None:
            raise errors.payload(table.entity_set, errors.not_on_type(table.logical_name, name))
        if column.is_lookup:
            raise errors.payload(table.entity_set, DIRECT_LOOKUP)
        ignored = column.read_only or (mode is Mode.UPDATE and column.create_only)
        if ignored and column.name != table.primary_id:
            return
        payload.values[column.property_name] = from_json(table, column, value)

    def _bind(self, payload: Payload, name: str, value: object) -> None:
        table = payload.table
        navigation = self.schema.navigation(table.logical_name, name)
        if navigation is None:
            raise errors.payload(table.entity_set, _undeclared(name))
        if navigation.collection:
            if not isinstance(value, list):
                raise errors.payload(
                    table.entity_set,
                    f"The value of '{name}@odata.bind' must be an array of entity references, "
                    "because it is a collection-valued navigation property.",
                )
            ids = [self._resolve(table, navigation, item) for item in value]
            payload.links.append((navigation, [row_id for row_id in ids if row_id is not None]))
            return
        rel = navigation.relationship
        column = table.column(rel.column)
        assert column is not None
        if column.read_only:
            raise errors.payload(table.entity_set, f"The property '{name}' cannot be set.")
        previous = payload.binds.get(column.name)
        if previous is not None and previous.navigation.name != name:
            raise errors.payload(
                table.entity_set,
                f"'{previous.navigation.name}' and '{name}' both set the lookup "
                f"'{column.name}'; bind only one of them.",
            )
        row_id = None if value is None else self._resolve(table, navigation, value)
        payload.binds[column.name] = Bind(navigation, column, rel.referenced, row_id)

    def _resolve(self, table: Table, navigation: Navigation, reference: object) -> str | None:
        name = navigation.name
        if not isinstance(reference, str):
            raise errors.payload(
                table.entity_set,
                f"The value of '{name}@odata.bind' must be a URI such as "
                f"'/{self.schema.table(navigation.target).entity_set}(<id>)'.",
            )
        try:
            key = parse_reference(self.schema, reference, self.service_root)
        except ValueError as exc:
            raise errors.payload(table.entity_set, f"'{name}@odata.bind': {exc}") from None
        except errors.WebApiError as exc:
            raise errors.payload(table.entity_set, f"'{name}@odata.bind': {exc.message}") from None
        target = self.schema.table(navigation.target)
        if key.table.logical_name != target.logical_name:
            raise errors.payload(
                table.entity_set,
                f"'{name}@odata.bind' points at '{key.table.entity_set}', but the navigation "
                f"property '{name}' leads to '{target.entity_set}'.",
            )
        return self.existing(key)

    def existing(self, key: KeyRef) -> str:
        """The id of the row ``key`` names; 404 when there is none."""
        table = key.table
        if key.row_id is not None:
            if self.store.get(table.logical_name, key.row_id) is None:
                raise errors.row_not_found(table.logical_name, key.row_id)
            return key.row_id
        assert key.key is not None
        row = self.store.find(table.logical_name, key.key, key.values)
        if row is None:
            raise errors.key_not_found(table.logical_name)
        return str(row[table.primary_id])

    def _deep(
        self, payload: Payload, navigation: Navigation, value: object, mode: Mode, depth: int
    ) -> None:
        table = payload.table
        if mode is not Mode.CREATE:
            raise errors.payload(
                table.entity_set,
                f"Deep update is not supported: '{navigation.name}' holds related rows; "
                f"use '{navigation.name}@odata.bind' or update the related row itself.",
            )
        target = self.schema.table(navigation.target)
        if navigation.collection:
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise errors.payload(
                    table.entity_set,
                    f"'{navigation.name}' is a collection-valued navigation property: give an "
                    "array of objects to create related rows.",
                )
            children = [self._read(target, item, Mode.CREATE, depth + 1) for item in value]
            payload.deep_many.append((navigation, children))
            return
        if not isinstance(value, dict):
            raise errors.payload(
                table.entity_set,
                f"'{navigation.name}' is a single-valued navigation property: give an object "
                f"to create the related row, or '{navigation.name}@odata.bind' to link one.",
            )
        column = table.column(navigation.relationship.column)
        assert column is not None
        if column.name in payload.binds:
            raise errors.payload(
                table.entity_set,
                f"'{navigation.name}' is both bound and inserted; give only one of them.",
            )
        payload.deep_single.append((navigation, self._read(target, value, Mode.CREATE, depth + 1)))


def _undeclared(name: str) -> str:
    return (
        f"An undeclared property '{name}' which only has property annotations in the payload "
        "but no property value was found in the payload. In OData, only declared navigation "
        "properties and declared named streams can be represented as properties without values."
    )

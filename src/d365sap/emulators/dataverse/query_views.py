"""The schema and the store as the query package sees them (``query/types.py``).

The query package binds ``$filter``/``$select``/``$orderby`` against small protocols instead of
the emulator's classes; these read-only views implement them once per schema: a table by its
Web API property names (``_parentaccountid_value``), its navigation properties leading to other
views, and :class:`Relations`, which follows a navigation property from a stored row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from d365sap.emulators.dataverse.query.types import QueryTable, Row
from d365sap.emulators.dataverse.schema import Navigation, Schema, Table
from d365sap.emulators.dataverse.store import LOOKUP_TABLE, Store


@dataclass(frozen=True, slots=True)
class ColumnView:
    """A property of an entity type (``QueryColumn``)."""

    logical_name: str
    edm_type: str
    is_lookup: bool


@dataclass(frozen=True, slots=True)
class NavigationView:
    """A navigation property (``QueryNavigation``)."""

    name: str
    collection: bool
    target: TableView


class TableView:
    """One table (``QueryTable``): columns by property name, navigation by name."""

    def __init__(self, views: SchemaViews, table: Table) -> None:
        self._views = views
        self.table = table
        self._columns = {
            column.property_name: ColumnView(
                column.property_name, column.edm_type, column.is_lookup
            )
            for column in table.columns
        }

    @property
    def logical_name(self) -> str:
        """The table's logical name (``account``)."""
        return self.table.logical_name

    @property
    def entity_set(self) -> str:
        """The Web API collection (``accounts``)."""
        return self.table.entity_set

    @property
    def primary_id(self) -> str:
        """The primary key property (``accountid``)."""
        return self.table.primary_id

    def column(self, name: str) -> ColumnView | None:
        """The property ``name`` exactly as the Web API spells it."""
        return self._columns.get(name)

    def navigation(self, name: str) -> NavigationView | None:
        """The navigation property ``name``."""
        navigation = self._views.schema.navigation(self.table.logical_name, name)
        if navigation is None:
            return None
        return NavigationView(name, navigation.collection, self._views.view(navigation.target))


class SchemaViews:
    """A :class:`TableView` per table, made once."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self._views = {name: TableView(self, table) for name, table in schema.tables.items()}

    def view(self, table: str) -> TableView:
        """The view of the table with logical name ``table``."""
        return self._views[table]


def points_at(row: Row, column: str, table: str, row_id: object) -> bool:
    """Whether lookup ``column`` of ``row`` holds ``row_id`` of ``table``."""
    prop = f"_{column}_value"
    return row.get(prop) == row_id and row.get(prop + LOOKUP_TABLE) == table


class Relations:
    """Follows navigation properties from stored rows (``RelatedRows``)."""

    def __init__(self, schema: Schema, store: Store) -> None:
        self.schema = schema
        self.store = store

    def _navigation(self, table: str, name: str) -> Navigation:
        navigation = self.schema.navigation(table, name)
        if navigation is None:
            raise KeyError(f"{table} has no navigation property {name}")
        return navigation

    def follow_one(self, table: str, navigation: Navigation, row: Row) -> Row | None:
        """The row a single-valued navigation of ``row`` points at."""
        rel = navigation.relationship
        prop = f"_{rel.column}_value"
        value = row.get(prop)
        if value is None or row.get(prop + LOOKUP_TABLE) != rel.referenced:
            return None
        return self.store.get(rel.referenced, str(value))

    def follow_many(self, table: str, navigation: Navigation, row: Row) -> list[Row]:
        """The rows that point at ``row`` through a collection-valued navigation."""
        rel = navigation.relationship
        row_id = row.get(self.schema.table(table).primary_id)
        candidates = self.store.rows_with(rel.referencing, f"_{rel.column}_value", row_id)
        return [other for other in candidates if points_at(other, rel.column, table, row_id)]

    def one(self, table: QueryTable, navigation: str, row: Row) -> Row | None:
        """``RelatedRows.one`` for the query package."""
        found = self._navigation(table.logical_name, navigation)
        return self.follow_one(table.logical_name, found, row)

    def many(self, table: QueryTable, navigation: str, row: Row) -> Sequence[Row]:
        """``RelatedRows.many`` for the query package."""
        found = self._navigation(table.logical_name, navigation)
        return self.follow_many(table.logical_name, found, row)

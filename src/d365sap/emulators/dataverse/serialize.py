"""Rows as the Web API writes them: ``@odata.etag``, selected columns, annotations, ``$expand``.

A row is written with ``@odata.etag`` = ``W/"<versionnumber>"`` first, then its columns: all of
them, or the ``$select`` list plus the primary key (always returned) and, when a money column is
selected, ``_transactioncurrencyid_value`` (Dataverse adds it because the amount depends on
it). Annotations the client asked for with ``odata.include-annotations`` come right before the
value they describe. Expanded navigation properties follow, as an object (or null) for
single-valued ones and an array for collection-valued ones, filtered, ordered and cut by their
nested options (``query.shape_related``).
"""

from __future__ import annotations

from collections.abc import Sequence

from d365sap.emulators.dataverse.columns import Column, Kind
from d365sap.emulators.dataverse.formatting import (
    FORMATTED,
    LOOKUP_NAME,
    NAVIGATION,
    format_value,
)
from d365sap.emulators.dataverse.query import EvalContext, ExpandItem, Preferences, shape_related
from d365sap.emulators.dataverse.query_views import Relations
from d365sap.emulators.dataverse.schema import Schema, Table, money_currency_column
from d365sap.emulators.dataverse.store import LOOKUP_TABLE, Row, Store
from d365sap.emulators.dataverse.values import to_json

Document = dict[str, object]


def etag(row: Row) -> str:
    """The weak ETag of a row: ``W/"<versionnumber>"``."""
    return f'W/"{row["versionnumber"]}"'


def context_path(
    entity_set: str, select: Sequence[str] | None, expand: Sequence[ExpandItem]
) -> str:
    """``accounts(name,primarycontactid(fullname))``: the part after ``$metadata#``."""
    parts = list(select or ())
    parts += [f"{item.navigation}({','.join(_expand_parts(item))})" for item in expand]
    return f"{entity_set}({','.join(parts)})" if parts else entity_set


def _expand_parts(item: ExpandItem) -> list[str]:
    parts = list(item.select or ())
    parts += [f"{inner.navigation}({','.join(_expand_parts(inner))})" for inner in item.expand]
    return parts


class Serializer:
    """Writes rows of one request (its service root and annotation preferences)."""

    def __init__(
        self,
        schema: Schema,
        store: Store,
        relations: Relations,
        service_root: str,
        preferences: Preferences,
    ) -> None:
        self.schema = schema
        self.store = store
        self.relations = relations
        self.root = service_root if service_root.endswith("/") else service_root + "/"
        self.preferences = preferences
        self._formatted = preferences.wants_annotation(FORMATTED)
        self._navigation = preferences.wants_annotation(NAVIGATION)
        self._lookup_name = preferences.wants_annotation(LOOKUP_NAME)

    @property
    def annotated(self) -> bool:
        """Whether any annotation the emulator writes was asked for."""
        return self._formatted or self._navigation or self._lookup_name

    def context(
        self,
        table: Table,
        select: Sequence[str] | None = None,
        expand: Sequence[ExpandItem] = (),
        *,
        entity: bool = False,
    ) -> str:
        """The ``@odata.context`` URL of a collection or (``entity``) a single row."""
        path = context_path(table.entity_set, select, expand)
        return f"{self.root}$metadata#{path}{'/$entity' if entity else ''}"

    def entity_url(self, table: Table, row_id: object) -> str:
        """The row's URL, as ``OData-EntityId`` and ``@odata.id`` give it."""
        return f"{self.root}{table.entity_set}({row_id})"

    def row(
        self,
        table: Table,
        row: Row,
        select: Sequence[str] | None = None,
        expand: Sequence[ExpandItem] = (),
    ) -> Document:
        """One row as a JSON object."""
        document: Document = {"@odata.etag": etag(row)}
        for column in self._columns(table, select):
            self._value(document, table, column, row)
        for item in expand:
            document[item.navigation] = self._expanded(table, row, item)
        return document

    def _columns(self, table: Table, select: Sequence[str] | None) -> list[Column]:
        if select is None:
            return list(table.columns)
        names = list(select)
        currency = money_currency_column(table)
        wants_currency = any(
            (column := table.by_property(name)) is not None and column.kind is Kind.MONEY
            for name in names
        )
        if currency is not None and wants_currency and currency.property_name not in names:
            names.append(currency.property_name)
        if table.primary_id not in names:
            names.append(table.primary_id)
        columns = [table.by_property(name) for name in names]
        return [column for column in columns if column is not None]

    def _value(self, document: Document, table: Table, column: Column, row: Row) -> None:
        prop = column.property_name
        value = row.get(prop)
        if value is not None and self._formatted:
            text = format_value(column, value, row, self._currency_symbol, self._lookup_text)
            if text is not None:
                document[f"{prop}@{FORMATTED}"] = text
        if value is not None and column.is_lookup:
            target = row.get(prop + LOOKUP_TABLE)
            if self._navigation and isinstance(target, str):
                navigation = self.schema.lookup_navigation(table.logical_name, column.name, target)
                if navigation is not None:
                    document[f"{prop}@{NAVIGATION}"] = navigation.name
            if self._lookup_name and isinstance(target, str):
                document[f"{prop}@{LOOKUP_NAME}"] = target
        document[prop] = to_json(value)

    def _currency_symbol(self, row: Row) -> str:
        currency_id = row.get("_transactioncurrencyid_value")
        currency = self.store.get("transactioncurrency", str(currency_id)) if currency_id else None
        symbol = currency.get("currencysymbol") if currency is not None else None
        return str(symbol) if symbol else ""

    def _lookup_text(self, column: Column, row: Row) -> str | None:
        prop = column.property_name
        target = row.get(prop + LOOKUP_TABLE)
        if not isinstance(target, str) or target not in self.schema.tables:
            return None
        related = self.store.get(target, str(row.get(prop)))
        if related is None:
            return None
        name = related.get(self.schema.table(target).primary_name)
        return None if name is None else str(name)

    def _expanded(self, table: Table, row: Row, item: ExpandItem) -> object:
        navigation = self.schema.navigation(table.logical_name, item.navigation)
        assert navigation is not None
        target = self.schema.table(navigation.target)
        context = EvalContext(self.relations)
        if navigation.collection:
            related = self.relations.follow_many(table.logical_name, navigation, row)
            shaped = shape_related(item, related, context)
            return [self._related(target, other, item) for other in shaped]
        one = self.relations.follow_one(table.logical_name, navigation, row)
        if one is None or not shape_related(item, [one], context):
            return None
        return self._related(target, one, item)

    def _related(self, table: Table, row: Row, item: ExpandItem) -> Document:
        if item.ref:
            return {"@odata.id": self.entity_url(table, row[table.primary_id])}
        return self.row(table, row, item.select, item.expand)

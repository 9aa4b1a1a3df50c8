"""What the query language needs to know about a table, as small protocols.

The query package never imports the emulator's table classes: it binds ``$filter``,
``$select``, ``$orderby`` and ``$expand`` against these protocols, so it can be tested with a
few lines of fake schema and the table module stays free to change how it keeps columns.
Rows are plain mappings of logical column names to Python values: ``str``, ``int``,
``Decimal``, ``float``, ``bool``, ``UUID`` (or ``str``) for guids, ``datetime`` (aware, or
naive meaning UTC), ``date`` and ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

Row = Mapping[str, object]

STRING = "Edm.String"
INT16 = "Edm.Int16"
INT32 = "Edm.Int32"
INT64 = "Edm.Int64"
DECIMAL = "Edm.Decimal"
DOUBLE = "Edm.Double"
BOOLEAN = "Edm.Boolean"
GUID = "Edm.Guid"
DATETIMEOFFSET = "Edm.DateTimeOffset"
DATE = "Edm.Date"
BINARY = "Edm.Binary"
NULL = "null"

INTEGER_TYPES = frozenset({INT16, INT32, INT64})
NUMERIC_TYPES = frozenset({INT16, INT32, INT64, DECIMAL, DOUBLE})
TEMPORAL_TYPES = frozenset({DATETIMEOFFSET, DATE})
SCHEMA_NAMESPACE = "Microsoft.Dynamics.CRM"


class QueryColumn(Protocol):
    """One property of a table's entity type (``name``, ``_parentaccountid_value``)."""

    @property
    def logical_name(self) -> str: ...

    @property
    def edm_type(self) -> str: ...

    @property
    def is_lookup(self) -> bool:
        """True for a lookup value property ``_<name>_value`` (an ``Edm.Guid``)."""
        ...


class QueryNavigation(Protocol):
    """A navigation property: single-valued (lookup) or collection-valued."""

    @property
    def name(self) -> str: ...

    @property
    def collection(self) -> bool: ...

    @property
    def target(self) -> QueryTable: ...


class QueryTable(Protocol):
    """A table as the Web API shows it: entity type, entity set, key, columns, navigation."""

    @property
    def logical_name(self) -> str: ...

    @property
    def entity_set(self) -> str: ...

    @property
    def primary_id(self) -> str: ...

    def column(self, name: str) -> QueryColumn | None:
        """The column with this exact logical name, or ``None``."""
        ...

    def navigation(self, name: str) -> QueryNavigation | None:
        """The navigation property with this exact name, or ``None``."""
        ...


class RelatedRows(Protocol):
    """How to follow a navigation property from a row, for ``a/b`` paths and ``any``/``all``.

    The store provides it; queries without navigation paths never call it.
    """

    def one(self, table: QueryTable, navigation: str, row: Row) -> Row | None:
        """The row a single-valued navigation property of ``row`` points to."""
        ...

    def many(self, table: QueryTable, navigation: str, row: Row) -> Sequence[Row]:
        """The rows a collection-valued navigation property of ``row`` holds."""
        ...


def type_name(table: QueryTable) -> str:
    """``Microsoft.Dynamics.CRM.account``: the qualified entity type name errors quote."""
    return f"{SCHEMA_NAMESPACE}.{table.logical_name}"

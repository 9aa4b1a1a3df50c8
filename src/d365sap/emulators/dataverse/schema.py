"""Tables, alternate keys and relationships: the model every other module reads.

:class:`Schema` is built once from the table definitions (``tables``, ``sap_tables``) and
checked for consistency there (every lookup target exists, navigation names are unique per
table), so a mistake in a definition fails at import time instead of in a request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from d365sap.emulators.dataverse.columns import Cascade, Column, Kind

NAMESPACE = "Microsoft.Dynamics.CRM"
ALIAS = "mscrm"


@dataclass(frozen=True, slots=True)
class AlternateKey:
    """An alternate key: ``accounts(accountnumber='A-1')`` addresses a row by these columns."""

    name: str
    display_name: str
    columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Relationship:
    """A one-to-many relationship, seen from both ends.

    The referencing row holds the lookup ``column``; its single-valued navigation property is
    ``navigation``. The referenced table sees the referencing rows through the
    collection-valued navigation property named like the relationship (``schema_name``).
    """

    schema_name: str
    referenced: str
    referencing: str
    column: str
    navigation: str
    cascade: Cascade


@dataclass(frozen=True, slots=True)
class Table:
    """One table (entity): names, columns in definition order, keys."""

    logical_name: str
    entity_set: str
    display_name: str
    description: str
    primary_name: str
    columns: tuple[Column, ...]
    alternate_keys: tuple[AlternateKey, ...] = ()
    change_tracking: bool = True
    """Whether ``Prefer: odata.track-changes`` works on the table (an organisation setting)."""
    _by_name: dict[str, Column] = field(default_factory=dict, compare=False, repr=False)
    _by_property: dict[str, Column] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for column in self.columns:
            if column.name in self._by_name:
                raise ValueError(f"{self.logical_name}: column {column.name} defined twice")
            self._by_name[column.name] = column
            self._by_property[column.property_name] = column
        for needed in (self.primary_id, self.primary_name):
            if needed not in self._by_name:
                raise ValueError(f"{self.logical_name}: no column {needed}")
        for key in self.alternate_keys:
            for name in key.columns:
                if name not in self._by_name:
                    raise ValueError(f"{self.logical_name}: key {key.name} names {name}")

    @property
    def primary_id(self) -> str:
        """The primary key column, ``<logical name>id``."""
        return f"{self.logical_name}id"

    @property
    def type_name(self) -> str:
        """The qualified entity type, ``Microsoft.Dynamics.CRM.account``."""
        return f"{NAMESPACE}.{self.logical_name}"

    def column(self, name: str) -> Column | None:
        """The column with logical name ``name``."""
        return self._by_name.get(name)

    def by_property(self, name: str) -> Column | None:
        """The column shown as Web API property ``name`` (``_parentaccountid_value``)."""
        return self._by_property.get(name)

    def property_names(self) -> list[str]:
        """All Web API property names, in definition order."""
        return [column.property_name for column in self.columns]

    def lookups(self) -> list[Column]:
        """The Lookup and Customer columns."""
        return [column for column in self.columns if column.is_lookup]

    def key_named(self, columns: Iterable[str]) -> AlternateKey | None:
        """The alternate key made of exactly ``columns`` (in any order)."""
        wanted = frozenset(columns)
        return next((k for k in self.alternate_keys if frozenset(k.columns) == wanted), None)


@dataclass(frozen=True, slots=True)
class Navigation:
    """A navigation property of one table: where it leads and through which relationship."""

    name: str
    relationship: Relationship
    collection: bool

    @property
    def target(self) -> str:
        """Logical name of the table the navigation leads to."""
        rel = self.relationship
        return rel.referencing if self.collection else rel.referenced


class Schema:
    """All tables of the emulated environment and the relationships between them."""

    def __init__(self, tables: Iterable[Table]) -> None:
        self.tables: dict[str, Table] = {}
        self.by_set: dict[str, Table] = {}
        for table in tables:
            if table.logical_name in self.tables or table.entity_set in self.by_set:
                raise ValueError(f"table {table.logical_name} defined twice")
            self.tables[table.logical_name] = table
            self.by_set[table.entity_set] = table
        self.relationships: list[Relationship] = []
        for table in self.tables.values():
            for column in table.lookups():
                for target in column.targets:
                    if target.table not in self.tables:
                        raise ValueError(
                            f"{table.logical_name}.{column.name}: no table {target.table}"
                        )
                    self.relationships.append(
                        Relationship(
                            schema_name=target.relationship,
                            referenced=target.table,
                            referencing=table.logical_name,
                            column=column.name,
                            navigation=column.navigation_name(target),
                            cascade=target.cascade,
                        )
                    )
        self._navigations: dict[str, dict[str, Navigation]] = {t: {} for t in self.tables}
        for rel in self.relationships:
            self._add(rel.referencing, Navigation(rel.navigation, rel, collection=False))
            self._add(rel.referenced, Navigation(rel.schema_name, rel, collection=True))

    def _add(self, table: str, navigation: Navigation) -> None:
        known = self._navigations[table]
        clash = known.get(navigation.name) or self.tables[table].column(navigation.name)
        if clash is not None and not (
            isinstance(clash, Column) and clash.is_lookup and not navigation.collection
        ):
            raise ValueError(f"{table}: navigation property {navigation.name} is not unique")
        known[navigation.name] = navigation

    def table(self, logical_name: str) -> Table:
        """The table with ``logical_name`` (KeyError if unknown)."""
        return self.tables[logical_name]

    def navigations(self, table: str) -> Mapping[str, Navigation]:
        """Navigation properties of ``table`` by name, single-valued ones first."""
        return self._navigations[table]

    def navigation(self, table: str, name: str) -> Navigation | None:
        """One navigation property of ``table``, or None."""
        return self._navigations[table].get(name)

    def referencing(self, table: str) -> list[Relationship]:
        """Relationships whose lookups point at ``table`` (for cascading deletes)."""
        return [rel for rel in self.relationships if rel.referenced == table]

    def lookup_navigation(self, table: str, column: str, target: str) -> Navigation | None:
        """The single-valued navigation for ``column`` when it points at ``target``."""
        for navigation in self._navigations[table].values():
            rel = navigation.relationship
            if not navigation.collection and rel.column == column and rel.referenced == target:
                return navigation
        return None


def money_currency_column(table: Table) -> Column | None:
    """``transactioncurrencyid`` when the table has money columns that depend on it."""
    has_money = any(column.kind is Kind.MONEY for column in table.columns)
    currency = table.column("transactioncurrencyid")
    return currency if has_money and currency is not None else None

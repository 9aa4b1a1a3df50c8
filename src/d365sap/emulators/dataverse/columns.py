"""Columns of Dataverse tables, with the facets the emulator enforces and publishes.

A column here is what Dataverse calls an attribute: its logical name, its type (String,
Picklist, Lookup, Money, ...), required level, maximum length or range, choices with labels and,
for lookups, the tables it may point to. The Web API shows a column under its *property name*:
the logical name for plain columns, ``_<name>_value`` for lookups, whose value can only be set
through the single-valued navigation property (``parentaccountid@odata.bind``).

Everything that the CSDL document, the payload checks, the query engine and the formatted-value
annotations need comes from these definitions, so the four can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class Kind(StrEnum):
    """Dataverse attribute types (``AttributeTypeCode``) the emulator models."""

    STRING = "String"
    MEMO = "Memo"
    INTEGER = "Integer"
    BIGINT = "BigInt"
    DECIMAL = "Decimal"
    MONEY = "Money"
    DOUBLE = "Double"
    BOOLEAN = "Boolean"
    DATETIME = "DateTime"
    DATEONLY = "DateOnly"
    UNIQUEIDENTIFIER = "Uniqueidentifier"
    PICKLIST = "Picklist"
    STATE = "State"
    STATUS = "Status"
    LOOKUP = "Lookup"
    CUSTOMER = "Customer"


EDM_TYPES: dict[Kind, str] = {
    Kind.STRING: "Edm.String",
    Kind.MEMO: "Edm.String",
    Kind.INTEGER: "Edm.Int32",
    Kind.BIGINT: "Edm.Int64",
    Kind.DECIMAL: "Edm.Decimal",
    Kind.MONEY: "Edm.Decimal",
    Kind.DOUBLE: "Edm.Double",
    Kind.BOOLEAN: "Edm.Boolean",
    Kind.DATETIME: "Edm.DateTimeOffset",
    Kind.DATEONLY: "Edm.Date",
    Kind.UNIQUEIDENTIFIER: "Edm.Guid",
    Kind.PICKLIST: "Edm.Int32",
    Kind.STATE: "Edm.Int32",
    Kind.STATUS: "Edm.Int32",
    Kind.LOOKUP: "Edm.Guid",
    Kind.CUSTOMER: "Edm.Guid",
}
CHOICE_KINDS = frozenset({Kind.PICKLIST, Kind.STATE, Kind.STATUS})
LOOKUP_KINDS = frozenset({Kind.LOOKUP, Kind.CUSTOMER})
INT32_RANGE = (-2_147_483_648, 2_147_483_647)
MONEY_RANGE = (Decimal("-922337203685477"), Decimal("922337203685477"))


class Required(StrEnum):
    """``AttributeRequiredLevel``: only SystemRequired is enforced by the server itself."""

    NONE = "None"
    APPLICATION = "ApplicationRequired"
    SYSTEM = "SystemRequired"


class Cascade(StrEnum):
    """What deleting the referenced row does to rows that point at it."""

    CASCADE = "Cascade"
    REMOVE_LINK = "RemoveLink"
    RESTRICT = "Restrict"


@dataclass(frozen=True, slots=True)
class Option:
    """One choice of a Picklist, State or Status column (and the two of a Boolean).

    ``state`` is the statecode a statuscode option belongs to; ``default_status`` the statuscode
    a statecode option gets when a client sets only the state.
    """

    value: int
    label: str
    state: int | None = None
    default_status: int | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """One table a lookup may point to, and the relationship that joins them.

    ``relationship`` is the relationship's schema name, which is also the name of the
    collection-valued navigation property on the referenced table (``account_parent_account``).
    """

    table: str
    relationship: str
    cascade: Cascade = Cascade.REMOVE_LINK


@dataclass(frozen=True, slots=True)
class Column:
    """One attribute of a table.

    ``read_only`` columns are computed or stamped by the server (``createdon``,
    ``versionnumber``, ``fullname``); a client's value for them is ignored, as Dataverse does.
    ``create_only`` columns may be given on create but not changed afterwards.
    """

    name: str
    kind: Kind
    display_name: str
    required: Required = Required.NONE
    max_length: int | None = None
    min_value: Decimal | None = None
    max_value: Decimal | None = None
    precision: int | None = None
    options: tuple[Option, ...] = ()
    targets: tuple[Target, ...] = ()
    read_only: bool = False
    create_only: bool = False
    default: object = None
    description: str = ""

    @property
    def property_name(self) -> str:
        """The Web API property: ``_<name>_value`` for lookups, else the logical name."""
        return f"_{self.name}_value" if self.kind in LOOKUP_KINDS else self.name

    @property
    def edm_type(self) -> str:
        """The CSDL primitive type of the property."""
        return EDM_TYPES[self.kind]

    @property
    def is_lookup(self) -> bool:
        """Lookup and Customer columns (values set through navigation properties)."""
        return self.kind in LOOKUP_KINDS

    @property
    def is_choice(self) -> bool:
        """Picklist, State and Status columns (integer values with labels)."""
        return self.kind in CHOICE_KINDS

    def option(self, value: object) -> Option | None:
        """The choice with ``value`` (Booleans: ``True``/``False``), or None."""
        if isinstance(value, bool):
            value = int(value)
        return next((option for option in self.options if option.value == value), None)

    def navigation_name(self, target: Target) -> str:
        """The single-valued navigation property for ``target``.

        A lookup with one target uses its own name (``parentaccountid``); a Customer lookup
        has one per target table (``customerid_account``, ``customerid_contact``).
        """
        return self.name if len(self.targets) == 1 else f"{self.name}_{target.table}"


# Constructors that keep the table definitions short and readable.


def text(
    name: str,
    display: str,
    max_length: int,
    *,
    required: Required = Required.NONE,
    memo: bool = False,
    read_only: bool = False,
    create_only: bool = False,
    description: str = "",
) -> Column:
    """A String (single line) or Memo (multiple lines) column."""
    return Column(
        name,
        Kind.MEMO if memo else Kind.STRING,
        display,
        required=required,
        max_length=max_length,
        read_only=read_only,
        create_only=create_only,
        description=description,
    )


def whole(
    name: str,
    display: str,
    low: int = INT32_RANGE[0],
    high: int = INT32_RANGE[1],
    *,
    required: Required = Required.NONE,
    default: int | None = None,
) -> Column:
    """An Integer (whole number) column with its range."""
    return Column(
        name,
        Kind.INTEGER,
        display,
        required=required,
        min_value=Decimal(low),
        max_value=Decimal(high),
        default=default,
    )


def number(
    name: str,
    display: str,
    low: str,
    high: str,
    precision: int,
    *,
    required: Required = Required.NONE,
    read_only: bool = False,
) -> Column:
    """A Decimal column with range and number of decimal places."""
    return Column(
        name,
        Kind.DECIMAL,
        display,
        required=required,
        min_value=Decimal(low),
        max_value=Decimal(high),
        precision=precision,
        read_only=read_only,
    )


def money(
    name: str,
    display: str,
    *,
    low: Decimal = MONEY_RANGE[0],
    high: Decimal = MONEY_RANGE[1],
    read_only: bool = False,
) -> Column:
    """A Money column (two decimal places, in the row's transaction currency)."""
    return Column(
        name,
        Kind.MONEY,
        display,
        min_value=low,
        max_value=high,
        precision=2,
        read_only=read_only,
    )


def floating(name: str, display: str, low: float, high: float) -> Column:
    """A Double (floating point) column."""
    return Column(name, Kind.DOUBLE, display, min_value=Decimal(low), max_value=Decimal(high))


def flag(
    name: str, display: str, *, default: bool = False, yes: str = "Yes", no: str = "No"
) -> Column:
    """A Boolean (two options) column with its two labels."""
    return Column(
        name, Kind.BOOLEAN, display, options=(Option(1, yes), Option(0, no)), default=default
    )


def when(name: str, display: str, *, date_only: bool = False, read_only: bool = False) -> Column:
    """A DateTime column: Edm.DateTimeOffset, or Edm.Date for date-only behaviour."""
    kind = Kind.DATEONLY if date_only else Kind.DATETIME
    return Column(name, kind, display, read_only=read_only)


def choice(
    name: str,
    display: str,
    options: dict[int, str],
    *,
    required: Required = Required.NONE,
    default: int | None = None,
) -> Column:
    """A Picklist (choice) column."""
    return Column(
        name,
        Kind.PICKLIST,
        display,
        required=required,
        options=tuple(Option(value, label) for value, label in options.items()),
        default=default,
    )


def state(options: dict[int, tuple[str, int]]) -> Column:
    """``statecode``: value -> (label, default statuscode); new rows start in the first state."""
    first = next(iter(options))
    return Column(
        "statecode",
        Kind.STATE,
        "Status",
        required=Required.SYSTEM,
        options=tuple(
            Option(value, label, default_status=status)
            for value, (label, status) in options.items()
        ),
        default=first,
    )


def status(options: dict[int, tuple[str, int]]) -> Column:
    """``statuscode``: value -> (label, the statecode it belongs to)."""
    return Column(
        "statuscode",
        Kind.STATUS,
        "Status Reason",
        options=tuple(
            Option(value, label, state=owner) for value, (label, owner) in options.items()
        ),
    )


def lookup(
    name: str,
    display: str,
    table: str,
    relationship: str,
    *,
    cascade: Cascade = Cascade.REMOVE_LINK,
    required: Required = Required.NONE,
    read_only: bool = False,
) -> Column:
    """A Lookup to one table, through the relationship named ``relationship``."""
    return Column(
        name,
        Kind.LOOKUP,
        display,
        required=required,
        targets=(Target(table, relationship, cascade),),
        read_only=read_only,
    )


def customer(
    name: str,
    display: str,
    targets: dict[str, str],
    *,
    cascade: Cascade = Cascade.REMOVE_LINK,
    required: Required = Required.NONE,
) -> Column:
    """A Customer lookup (account or contact): table -> relationship schema name."""
    return Column(
        name,
        Kind.CUSTOMER,
        display,
        required=required,
        targets=tuple(Target(table, rel, cascade) for table, rel in targets.items()),
    )


def system_columns(table: str) -> tuple[Column, ...]:
    """Columns every table has: primary key, creation and change stamps, row version."""
    return (
        Column(
            f"{table}id",
            Kind.UNIQUEIDENTIFIER,
            "ID",
            required=Required.SYSTEM,
            create_only=True,
            description="Unique identifier of the row.",
        ),
        when("createdon", "Created On", read_only=True),
        when("modifiedon", "Modified On", read_only=True),
        Column("versionnumber", Kind.BIGINT, "Version Number", read_only=True),
    )

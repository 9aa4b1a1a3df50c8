"""Formatted values and lookup annotations, as ``Prefer: odata.include-annotations`` asks.

Dataverse formats values for the calling user's locale and time zone; the emulator's user is
en-US in UTC: choices and yes/no columns show their label, money the currency symbol and two
decimals (``$20,000.00``), dates ``4/7/2023``, date and time ``4/7/2023 2:59 PM``, numbers with
thousands separators, lookups the primary name of the row they point at.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

from d365sap.emulators.dataverse.columns import Column, Kind
from d365sap.emulators.dataverse.store import Row

FORMATTED = "OData.Community.Display.V1.FormattedValue"
NAVIGATION = "Microsoft.Dynamics.CRM.associatednavigationproperty"
LOOKUP_NAME = "Microsoft.Dynamics.CRM.lookuplogicalname"


def _number(value: Decimal | int | float, places: int) -> str:
    return f"{value:,.{places}f}"


def _clock(moment: datetime) -> str:
    hour = moment.hour % 12 or 12
    half = "AM" if moment.hour < 12 else "PM"
    return f"{moment.month}/{moment.day}/{moment.year} {hour}:{moment.minute:02d} {half}"


def format_value(
    column: Column,
    value: object,
    row: Row,
    currency_symbol: Callable[[Row], str],
    lookup_name: Callable[[Column, Row], str | None],
) -> str | None:
    """The formatted value of ``column`` in ``row``, or None when it has none."""
    if value is None:
        return None
    kind = column.kind
    if column.is_choice or kind is Kind.BOOLEAN:
        option = column.option(value)
        return option.label if option is not None else None
    if kind is Kind.MONEY and isinstance(value, Decimal):
        amount = _number(abs(value), 2)
        sign = "-" if value < 0 else ""
        return f"{sign}{currency_symbol(row)}{amount}"
    if kind is Kind.DECIMAL and isinstance(value, Decimal):
        return _number(value, column.precision or 0)
    if kind is Kind.DOUBLE and isinstance(value, float):
        return _number(value, 5)
    if kind in (Kind.INTEGER, Kind.BIGINT) and isinstance(value, int):
        return f"{value:,}"
    if kind is Kind.DATETIME and isinstance(value, datetime):
        return _clock(value)
    if kind is Kind.DATEONLY and isinstance(value, date):
        return f"{value.month}/{value.day}/{value.year}"
    if column.is_lookup:
        return lookup_name(column, row)
    return None

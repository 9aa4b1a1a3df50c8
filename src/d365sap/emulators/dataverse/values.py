"""Column values between JSON and the store: checked on the way in, rendered on the way out.

On the way in every value is checked the way Dataverse checks it: the JSON type must fit the
property's Edm type (the OData reader's refusal, ``0x80048d19``), strings must fit the maximum
length and numbers the range, choices must be one of the column's options (validation errors,
``0x80044331``). Each refusal names the column and the table.

Stored Python types: ``str`` (strings, GUIDs in lower case), ``int`` (whole numbers, choices),
``Decimal`` (decimal and money, rounded to the column's precision), ``float``, ``bool``,
``datetime`` (UTC, whole seconds) and ``date``.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

from d365sap.emulators.dataverse import errors
from d365sap.emulators.dataverse.columns import INT32_RANGE, Column, Kind
from d365sap.emulators.dataverse.schema import Table
from d365sap.emulators.dataverse.uri import is_guid

MIN_DATETIME = datetime(1753, 1, 1, tzinfo=UTC)
INT64_RANGE = (-(2**63), 2**63 - 1)


def _wrong_type(table: Table, column: Column, value: object) -> errors.WebApiError:
    shown = "null" if value is None else value
    return errors.payload(
        table.entity_set,
        f"Cannot convert the literal '{shown}' to the expected type '{column.edm_type}' "
        f"of property '{column.property_name}'.",
    )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_range(table: Table, column: Column, value: Decimal | int | float) -> None:
    low, high = column.min_value, column.max_value
    if (low is not None and value < low) or (high is not None and value > high):
        allowed = f"[{_plain(low)}, {_plain(high)}]"
        raise errors.out_of_range(table.logical_name, column.name, value, allowed)


def _plain(number: Decimal | None) -> str:
    if number is None:
        return "unbounded"
    return format(number.normalize(), "f") if number == number.to_integral() else str(number)


def _text(table: Table, column: Column, value: object) -> str:
    if not isinstance(value, str):
        raise _wrong_type(table, column, value)
    if column.max_length is not None and len(value) > column.max_length:
        raise errors.too_long(table.logical_name, column.name, column.max_length, len(value))
    return value


def _whole(table: Table, column: Column, value: object, bounds: tuple[int, int]) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _wrong_type(table, column, value)
    if not bounds[0] <= value <= bounds[1]:
        raise _wrong_type(table, column, value)
    _check_range(table, column, value)
    return value


def _choice(table: Table, column: Column, value: object) -> int:
    number = _whole(table, column, value, INT32_RANGE)
    if column.option(number) is None:
        allowed = ", ".join(str(option.value) for option in column.options)
        raise errors.out_of_range(table.logical_name, column.name, number, f"[{allowed}]")
    return number


def _decimal(table: Table, column: Column, value: object) -> Decimal:
    if not _is_number(value) or (isinstance(value, float) and not math.isfinite(value)):
        raise _wrong_type(table, column, value)
    number = Decimal(str(value))
    _check_range(table, column, number)
    if column.precision is not None:
        number = number.quantize(Decimal(1).scaleb(-column.precision), rounding=ROUND_HALF_UP)
    return number


def _double(table: Table, column: Column, value: object) -> float:
    if not _is_number(value) or not math.isfinite(float(value)):  # type: ignore[arg-type]
        raise _wrong_type(table, column, value)
    number = float(value)  # type: ignore[arg-type]
    _check_range(table, column, Decimal(str(number)))
    return number


def _datetime(table: Table, column: Column, value: object) -> datetime:
    if not isinstance(value, str):
        raise _wrong_type(table, column, value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _wrong_type(table, column, value) from None
    if moment.tzinfo is None or "T" not in value:
        raise _wrong_type(table, column, value)
    moment = moment.astimezone(UTC).replace(microsecond=0)
    if moment < MIN_DATETIME:
        raise errors.out_of_range(
            table.logical_name, column.name, value, "[1753-01-01T00:00:00Z, 9999-12-31T23:59:59Z]"
        )
    return moment


def _date(table: Table, column: Column, value: object) -> date:
    if not isinstance(value, str) or len(value) != 10:
        raise _wrong_type(table, column, value)
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise _wrong_type(table, column, value) from None
    if day < MIN_DATETIME.date():
        raise errors.out_of_range(
            table.logical_name, column.name, value, "[1753-01-01, 9999-12-31]"
        )
    return day


def from_json(table: Table, column: Column, value: object) -> object:
    """The stored value for a JSON ``value`` of ``column``; None stays None."""
    if value is None:
        return None
    kind = column.kind
    if kind in (Kind.STRING, Kind.MEMO):
        return _text(table, column, value)
    if kind is Kind.INTEGER:
        return _whole(table, column, value, INT32_RANGE)
    if kind is Kind.BIGINT:
        return _whole(table, column, value, INT64_RANGE)
    if column.is_choice:
        return _choice(table, column, value)
    if kind in (Kind.DECIMAL, Kind.MONEY):
        return _decimal(table, column, value)
    if kind is Kind.DOUBLE:
        return _double(table, column, value)
    if kind is Kind.BOOLEAN:
        if not isinstance(value, bool):
            raise _wrong_type(table, column, value)
        return value
    if kind is Kind.DATETIME:
        return _datetime(table, column, value)
    if kind is Kind.DATEONLY:
        return _date(table, column, value)
    if kind is Kind.UNIQUEIDENTIFIER:
        if not isinstance(value, str) or not is_guid(value):
            raise _wrong_type(table, column, value)
        return value.lower()
    raise _wrong_type(table, column, value)


def to_json(value: object) -> object:
    """A stored value as the Web API writes it."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return (
            int(value)
            if value == value.to_integral_value() and value.as_tuple().exponent == 0
            else float(value)
        )
    return value

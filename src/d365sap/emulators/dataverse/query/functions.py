"""Dataverse query functions: ``Microsoft.Dynamics.CRM.In(PropertyName='x',PropertyValues=[…])``.

Implemented: ``In``, ``NotIn``, ``Between``, ``NotBetween``, ``On``, ``OnOrAfter``,
``OnOrBefore`` and the relative date functions of :mod:`.date_functions`. The other
functions Microsoft documents (fiscal periods, hierarchy, user and business unit,
multi-select choices) are refused with 501, naming the function; a name Microsoft does not
document gets the OData library's "unknown function" error.

Values arrive as strings (``PropertyValues`` is ``Collection(Edm.String)``) and are converted
to the column's type here, so a bad value is refused with the column named. Arrays follow
JSON: ``["O'Brian","x"]``; single-quoted items are accepted too, but an apostrophe inside one
breaks the array exactly as it does on Dataverse.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from d365sap.emulators.dataverse.query import date_functions, errors
from d365sap.emulators.dataverse.query.filter_nodes import Member, QueryFunction
from d365sap.emulators.dataverse.query.types import (
    BOOLEAN,
    DATE,
    DATETIMEOFFSET,
    DECIMAL,
    DOUBLE,
    GUID,
    INTEGER_TYPES,
    STRING,
    TEMPORAL_TYPES,
    QueryTable,
)
from d365sap.emulators.dataverse.query.values import as_date, as_datetime, normalize

NAMESPACE_PREFIX = "Microsoft.Dynamics.CRM."
_COMMA_EXPECTED = (
    "Invalid JSON. A comma character ',' was expected in scope 'Array'. Every two elements "
    "in an array and properties of an object must be separated by commas."
)
_UNIMPLEMENTED = frozenset(
    {
        # fiscal periods (need the organisation's fiscal settings)
        "InFiscalPeriod",
        "InFiscalPeriodAndYear",
        "InFiscalYear",
        "InOrAfterFiscalPeriodAndYear",
        "InOrBeforeFiscalPeriodAndYear",
        "LastFiscalPeriod",
        "LastFiscalYear",
        "LastXFiscalPeriods",
        "LastXFiscalYears",
        "NextFiscalPeriod",
        "NextFiscalYear",
        "NextXFiscalPeriods",
        "NextXFiscalYears",
        "ThisFiscalPeriod",
        "ThisFiscalYear",
        # hierarchy, user, team and business unit (need security data)
        "Above",
        "AboveOrEqual",
        "NotUnder",
        "Under",
        "UnderOrEqual",
        "EqualBusinessId",
        "NotEqualBusinessId",
        "EqualRoleBusinessId",
        "EqualUserId",
        "NotEqualUserId",
        "EqualUserLanguage",
        "EqualUserOrUserHierarchy",
        "EqualUserOrUserHierarchyAndTeams",
        "EqualUserOrUserTeams",
        "EqualUserTeams",
        # choices columns and full-text search
        "ContainValues",
        "DoesNotContainValues",
        "Contains",
    }
)
_LIST_FUNCTIONS = {"In": (1, None), "NotIn": (1, None), "Between": (2, 2), "NotBetween": (2, 2)}
_DATE_FUNCTIONS = frozenset({"On", "OnOrAfter", "OnOrBefore"})


@dataclass(frozen=True, slots=True)
class Argument:
    """One named argument: a literal (``edm_type`` its type), an array (``"array"``)."""

    value: object
    edm_type: str
    text: str


def parse_array(text: str) -> list[object]:
    """Items of ``["a","b"]`` (JSON strings or numbers; ``'a'`` items allowed)."""
    items: list[object] = []
    index, end = 1, len(text) - 1
    decoder = json.JSONDecoder()
    expecting_item = True
    while True:
        while index < end and text[index].isspace():
            index += 1
        if index >= end:
            if expecting_item and items:
                raise errors.odata("Invalid JSON. An unexpected comma was found in scope 'Array'.")
            return items
        char = text[index]
        if not expecting_item:
            if char != ",":
                raise errors.odata(_COMMA_EXPECTED)
            index += 1
            expecting_item = True
            continue
        if char == "'":
            close = text.find("'", index + 1)
            if close < 0:
                raise errors.odata(_COMMA_EXPECTED)
            items.append(text[index + 1 : close])
            index = close + 1
        else:
            try:
                value, index = decoder.raw_decode(text, index)
            except json.JSONDecodeError:
                raise errors.odata(
                    f"Invalid JSON. Unexpected character '{char}' in the array {text}."
                ) from None
            if isinstance(value, list | dict) or value is None:
                raise errors.odata(f"Invalid JSON. The array {text} may hold only values.")
            items.append(value)
        expecting_item = False


def convert(raw: object, column: Member) -> object:
    """A string (or JSON scalar) argument as a normalized value of the column's type."""
    edm_type, text = column.edm_type, str(raw).strip()
    try:
        if edm_type == STRING:
            value: object = str(raw)
        elif edm_type in INTEGER_TYPES:
            value = int(text)
        elif edm_type == DECIMAL:
            value = Decimal(text)
        elif edm_type == DOUBLE:
            value = float(text)
        elif edm_type == BOOLEAN:
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(text)
            value = text.lower() in ("true", "1")
        elif edm_type == GUID:
            value = uuid.UUID(text.strip("{}"))
        elif edm_type == DATETIMEOFFSET:
            value = as_datetime(text)
        elif edm_type == DATE:
            value = as_date(text)
        else:
            raise ValueError(text)
    except (ValueError, InvalidOperation):
        raise errors.odata(
            f"The value '{raw}' is not a valid {edm_type} value for the property '{column.name}'."
        ) from None
    return normalize(value, edm_type)


def _parameters(
    name: str, args: Mapping[str, Argument], required: tuple[str, ...]
) -> dict[str, Argument]:
    for given in args:
        if given not in required:
            raise errors.odata(
                f"The function '{NAMESPACE_PREFIX}{name}' has no parameter named '{given}'; "
                f"its parameters are {', '.join(required)}."
            )
    for wanted in required:
        if wanted not in args:
            raise errors.odata(
                f"The function '{NAMESPACE_PREFIX}{name}' requires the parameter '{wanted}'."
            )
    return dict(args)


def _column(name: str, argument: Argument, table: QueryTable) -> Member:
    if argument.edm_type != STRING or not isinstance(argument.value, str):
        raise errors.odata(
            f"The parameter 'PropertyName' of '{NAMESPACE_PREFIX}{name}' must be a string "
            "naming a column, e.g. PropertyName='name'."
        )
    column = table.column(argument.value)
    if column is None:
        raise errors.unknown_property(argument.value, table)
    return Member(argument.value, column.edm_type, table)


def bind(qualified: str, args: Mapping[str, Argument], table: QueryTable) -> QueryFunction:
    """Bind ``Microsoft.Dynamics.CRM.<name>(…)`` against ``table``."""
    name = qualified.removeprefix(NAMESPACE_PREFIX)
    if name in _LIST_FUNCTIONS:
        params = _parameters(name, args, ("PropertyName", "PropertyValues"))
        column = _column(name, params["PropertyName"], table)
        values = params["PropertyValues"]
        if values.edm_type != "array" or not isinstance(values.value, list):
            raise errors.odata(
                f"The parameter 'PropertyValues' of '{qualified}' must be an array such as "
                '["a","b"].'
            )
        low, high = _LIST_FUNCTIONS[name]
        if len(values.value) < low or (high is not None and len(values.value) > high):
            wanted = f"exactly {low}" if low == high else f"at least {low}"
            raise errors.odata(f"'{qualified}' takes {wanted} value(s) in 'PropertyValues'.")
        if name.endswith("Between") and column.edm_type in (BOOLEAN, GUID):
            raise errors.odata(
                f"'{qualified}' cannot be applied to the {column.edm_type} "
                f"property '{column.name}'."
            )
        return QueryFunction(name, column, tuple(convert(v, column) for v in values.value))
    if name in _DATE_FUNCTIONS:
        params = _parameters(name, args, ("PropertyName", "PropertyValue"))
        column = _temporal(name, params["PropertyName"], table)
        value = params["PropertyValue"].value
        if value is None:
            raise errors.odata(f"The parameter 'PropertyValue' of '{qualified}' cannot be null.")
        try:
            day = as_date(value)
        except ValueError:
            raise errors.odata(
                f"The value '{value}' is not a valid date for the parameter 'PropertyValue' "
                f"of '{qualified}'."
            ) from None
        return QueryFunction(name, column, (day,))
    if name in date_functions.WINDOWS:
        wants_count = date_functions.takes_count(name)
        params = _parameters(name, args, ("PropertyName", "PropertyValue")[: 1 + wants_count])
        column = _temporal(name, params["PropertyName"], table)
        count = 0
        if wants_count:
            raw = params["PropertyValue"].value
            try:
                count = int(str(raw))
            except ValueError:
                raise errors.odata(
                    f"The parameter 'PropertyValue' of '{qualified}' must be a whole number."
                ) from None
        return QueryFunction(name, column, (count,))
    if name in _UNIMPLEMENTED:
        raise errors.not_implemented(
            f"The query function '{qualified}' is not implemented by the Dataverse emulator."
        )
    raise errors.odata(
        f"An unknown function with name '{qualified}' was found. This may also be a function "
        "import or a key lookup on a navigation property, which is not allowed."
    )


def _temporal(name: str, argument: Argument, table: QueryTable) -> Member:
    column = _column(name, argument, table)
    if column.edm_type not in TEMPORAL_TYPES:
        raise errors.odata(
            f"'{NAMESPACE_PREFIX}{name}' needs a date or date and time property; "
            f"'{column.name}' is {column.edm_type}."
        )
    return column


def evaluate(node: QueryFunction, value: object, now: datetime) -> bool | None:
    """The condition for one row's column value (``None``: SQL unknown, row not returned)."""
    if value is None:
        return None
    name, edm_type = node.name, node.column.edm_type
    if name in _DATE_FUNCTIONS:
        day, (limit,) = as_date(value), node.values
        if name == "On":
            return day == limit
        return day >= limit if name == "OnOrAfter" else day <= limit  # type: ignore[operator]
    if name in date_functions.WINDOWS:
        count = node.values[0]
        assert isinstance(count, int)
        return date_functions.within(name, count, as_datetime(value), now)
    key = normalize(value, edm_type)
    if name in ("In", "NotIn"):
        found = key in node.values
        return found if name == "In" else not found
    low, high = node.values
    inside = bool(low <= key <= high)  # type: ignore[operator]
    return inside if name == "Between" else not inside

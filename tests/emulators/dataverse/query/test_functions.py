"""Microsoft.Dynamics.CRM query functions: In, NotIn, Between, NotBetween, On*, relative
dates, and their refusals."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from d365sap.emulators.dataverse.query import EvalContext, matches, parse_filter
from d365sap.emulators.dataverse.query.date_functions import WINDOWS, window
from emulators.dataverse.query.query_support import ACCOUNT, CONTACT, account, contact, error_of

NOW = datetime(2024, 5, 15, 13, 30, tzinfo=UTC)  # a Wednesday
ROWS = [
    account(
        1,
        "Contoso",
        numberofemployees=5,
        revenue=Decimal("10.5"),
        createdon=datetime(2024, 5, 15, 8, 0, tzinfo=UTC),
        openedon=date(2024, 5, 14),
    ),
    account(
        2,
        "Fabrikam",
        numberofemployees=2000,
        revenue=Decimal("99"),
        createdon=datetime(2024, 5, 14, 23, 59, tzinfo=UTC),
        openedon=date(2024, 4, 30),
    ),
    account(
        3,
        "Litware",
        numberofemployees=None,
        revenue=None,
        createdon=datetime(2024, 4, 1, 0, 0, tzinfo=UTC),
    ),
    account(
        4,
        "Northwind",
        numberofemployees=2001,
        revenue=Decimal("5"),
        createdon=datetime(2023, 12, 31, 12, 0, tzinfo=UTC),
        openedon=date(2024, 5, 15),
    ),
]


def names(text: str, aliases: dict[str, str] | None = None) -> list[str]:
    node = parse_filter(text, ACCOUNT, aliases)
    context = EvalContext(now=NOW)
    return [str(r["name"]) for r in ROWS if matches(node, r, context)]


def fn(name: str, **params: str) -> str:
    args = ",".join(f"{k}={v}" for k, v in params.items())
    return f"Microsoft.Dynamics.CRM.{name}({args})"


def test_in_and_not_in_on_strings_use_the_collation() -> None:
    assert names(fn("In", PropertyName="'name'", PropertyValues='["contoso","LITWARE "]')) == [
        "Contoso",
        "Litware",
    ]
    assert names(fn("NotIn", PropertyName="'name'", PropertyValues="['contoso','litware']")) == [
        "Fabrikam",
        "Northwind",
    ]


def test_in_converts_string_values_to_the_column_type_and_skips_null() -> None:
    assert names(fn("In", PropertyName="'numberofemployees'", PropertyValues='["5","2001"]')) == [
        "Contoso",
        "Northwind",
    ]
    # NULL NOT IN (...) is unknown: Litware is not returned
    assert names(fn("NotIn", PropertyName="'numberofemployees'", PropertyValues="[5]")) == [
        "Fabrikam",
        "Northwind",
    ]


def test_between_is_inclusive_and_not_between_excludes_null() -> None:
    between = fn("Between", PropertyName="'numberofemployees'", PropertyValues='["5","2000"]')
    assert names(between) == ["Contoso", "Fabrikam"]
    outside = fn("NotBetween", PropertyName="'numberofemployees'", PropertyValues='["5","2000"]')
    assert names(outside) == ["Northwind"]
    decimals = fn("Between", PropertyName="'revenue'", PropertyValues='["5","10.5"]')
    assert names(decimals) == ["Contoso", "Northwind"]


def test_in_with_parameter_aliases_as_microsoft_documents() -> None:
    text = "Microsoft.Dynamics.CRM.In(PropertyName=@p1,PropertyValues=@p2)"
    aliases = {"@p1": "'name'", "@p2": '["OBrian","Fabrikam","O\'Brian"]'}
    assert names(text, aliases) == ["Fabrikam"]


def test_apostrophe_in_a_single_quoted_array_item_breaks_the_array_as_documented() -> None:
    text = "Microsoft.Dynamics.CRM.In(PropertyName='lastname',PropertyValues=['O'Brian','x'])"
    error = error_of(parse_filter, text, CONTACT)
    assert error.message == (
        "Invalid JSON. A comma character ',' was expected in scope 'Array'. Every two "
        "elements in an array and properties of an object must be separated by commas."
    )


def test_on_on_or_after_on_or_before_compare_the_date_part() -> None:
    assert names(fn("On", PropertyName="'createdon'", PropertyValue="'2024-05-14'")) == ["Fabrikam"]
    assert names(fn("OnOrAfter", PropertyName="'createdon'", PropertyValue="'2024-05-14'")) == [
        "Contoso",
        "Fabrikam",
    ]
    assert names(fn("OnOrBefore", PropertyName="'openedon'", PropertyValue="2024-05-14")) == [
        "Contoso",
        "Fabrikam",
    ]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("Today", None, ["Contoso"]),
        ("Yesterday", None, ["Fabrikam"]),
        ("Tomorrow", None, []),
        ("Last7Days", None, ["Contoso", "Fabrikam"]),
        ("LastXHours", "6", ["Contoso"]),
        ("LastXHours", "14", ["Contoso", "Fabrikam"]),
        ("LastXDays", "1", ["Contoso", "Fabrikam"]),
        ("LastXMonths", "2", ["Contoso", "Fabrikam", "Litware"]),
        ("LastXYears", "1", ["Contoso", "Fabrikam", "Litware", "Northwind"]),
        ("OlderThanXDays", "30", ["Litware", "Northwind"]),
        ("OlderThanXMonths", "1", ["Litware", "Northwind"]),
        ("OlderThanXMinutes", "400", ["Fabrikam", "Litware", "Northwind"]),
        ("ThisMonth", None, ["Contoso", "Fabrikam"]),
        ("LastMonth", None, ["Litware"]),
        ("ThisYear", None, ["Contoso", "Fabrikam", "Litware"]),
        ("LastYear", None, ["Northwind"]),
        ("ThisWeek", None, ["Contoso", "Fabrikam"]),
        ("NextXDays", "3", []),
    ],
)
def test_relative_date_functions(name: str, value: str | None, expected: list[str]) -> None:
    params = {"PropertyName": "'createdon'"}
    if value is not None:
        params["PropertyValue"] = value
    assert names(fn(name, **params)) == expected


def test_relative_windows_are_well_formed_for_every_function() -> None:
    for name in sorted(WINDOWS):
        start, end, _ = window(name, 3, NOW)
        assert start is None or start < end, name


def test_week_starts_on_sunday_and_next_windows_start_now() -> None:
    start, end, _ = window("ThisWeek", 0, NOW)
    assert start == datetime(2024, 5, 12, tzinfo=UTC)
    assert end - start == timedelta(days=7)
    start, end, inclusive = window("NextXDays", 2, NOW)
    assert (start, end, inclusive) == (NOW, datetime(2024, 5, 18, tzinfo=UTC), False)
    start, end, _ = window("NextMonth", 0, datetime(2024, 12, 31, tzinfo=UTC))
    assert (start, end) == (datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 2, 1, tzinfo=UTC))


def test_date_column_works_with_relative_functions() -> None:
    assert names(fn("Today", PropertyName="'openedon'")) == ["Northwind"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            fn("In", PropertyName="'nope'", PropertyValues='["a"]'),
            "Could not find a property named 'nope' on type 'Microsoft.Dynamics.CRM.account'.",
        ),
        (
            fn("In", PropertyName="'name'"),
            "The function 'Microsoft.Dynamics.CRM.In' requires the parameter 'PropertyValues'.",
        ),
        (
            fn("In", PropertyName="'name'", PropertyValues='["a"]', Extra="'x'"),
            "The function 'Microsoft.Dynamics.CRM.In' has no parameter named 'Extra'; its "
            "parameters are PropertyName, PropertyValues.",
        ),
        (
            fn("In", PropertyName="5", PropertyValues='["a"]'),
            "The parameter 'PropertyName' of 'Microsoft.Dynamics.CRM.In' must be a string naming "
            "a column, e.g. PropertyName='name'.",
        ),
        (
            fn("In", PropertyName="'name'", PropertyValues="'a'"),
            "The parameter 'PropertyValues' of 'Microsoft.Dynamics.CRM.In' must be an array such "
            'as ["a","b"].',
        ),
        (
            fn("In", PropertyName="'name'", PropertyValues="[]"),
            "'Microsoft.Dynamics.CRM.In' takes at least 1 value(s) in 'PropertyValues'.",
        ),
        (
            fn("Between", PropertyName="'revenue'", PropertyValues='["1"]'),
            "'Microsoft.Dynamics.CRM.Between' takes exactly 2 value(s) in 'PropertyValues'.",
        ),
        (
            fn("Between", PropertyName="'creditonhold'", PropertyValues='["0","1"]'),
            "'Microsoft.Dynamics.CRM.Between' cannot be applied to the Edm.Boolean property "
            "'creditonhold'.",
        ),
        (
            fn("In", PropertyName="'numberofemployees'", PropertyValues='["five"]'),
            "The value 'five' is not a valid Edm.Int32 value for the property 'numberofemployees'.",
        ),
        (
            fn("In", PropertyName="'accountid'", PropertyValues='["not-a-guid"]'),
            "The value 'not-a-guid' is not a valid Edm.Guid value for the property 'accountid'.",
        ),
        (
            fn("On", PropertyName="'name'", PropertyValue="'2024-01-01'"),
            "'Microsoft.Dynamics.CRM.On' needs a date or date and time property; 'name' is "
            "Edm.String.",
        ),
        (
            fn("On", PropertyName="'createdon'", PropertyValue="'soon'"),
            "The value 'soon' is not a valid date for the parameter 'PropertyValue' of "
            "'Microsoft.Dynamics.CRM.On'.",
        ),
        (
            fn("On", PropertyName="'createdon'", PropertyValue="null"),
            "The parameter 'PropertyValue' of 'Microsoft.Dynamics.CRM.On' cannot be null.",
        ),
        (
            fn("LastXDays", PropertyName="'createdon'", PropertyValue="'x'"),
            "The parameter 'PropertyValue' of 'Microsoft.Dynamics.CRM.LastXDays' must be a "
            "whole number.",
        ),
        (
            fn("Frobnicate", PropertyName="'name'"),
            "An unknown function with name 'Microsoft.Dynamics.CRM.Frobnicate' was found. This "
            "may also be a function import or a key lookup on a navigation property, which is "
            "not allowed.",
        ),
        (
            fn("In", PropertyName="'name'", PropertyValues='["a",]'),
            "Invalid JSON. An unexpected comma was found in scope 'Array'.",
        ),
        (
            fn("In", PropertyName="'name'", PropertyValues='["a" "b"]'),
            "Invalid JSON. A comma character ',' was expected in scope 'Array'. Every two "
            "elements in an array and properties of an object must be separated by commas.",
        ),
        (
            fn("In", PropertyName="'name'", PropertyValues='[["a"]]'),
            'Invalid JSON. The array [["a"]] may hold only values.',
        ),
    ],
)
def test_refusals(text: str, expected: str) -> None:
    error = error_of(parse_filter, text, ACCOUNT)
    assert (error.status, error.code, error.message) == (400, "0x80060888", expected)


@pytest.mark.parametrize("name", ["EqualUserId", "InFiscalYear", "Under", "ContainValues"])
def test_documented_functions_the_emulator_lacks_answer_501(name: str) -> None:
    error = error_of(parse_filter, fn(name, PropertyName="'name'"), ACCOUNT)
    assert error.status == 501
    assert f"'Microsoft.Dynamics.CRM.{name}' is not implemented" in error.message


def test_contact_lastname_in_with_double_quoted_apostrophes() -> None:
    rows = [contact(1, "Ann", "O'Brian"), contact(2, "Bob", "Smith")]
    text = "Microsoft.Dynamics.CRM.In(PropertyName='lastname',PropertyValues=[\"o'brian\"])"
    node = parse_filter(text, CONTACT)
    assert [r["lastname"] for r in rows if matches(node, r)] == ["O'Brian"]

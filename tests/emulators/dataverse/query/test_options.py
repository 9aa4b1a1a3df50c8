"""parse_query: every system query option, the ones Dataverse refuses, Prefer, aliases."""

from __future__ import annotations

import pytest

from d365sap.emulators.dataverse.query import (
    OrderBy,
    parse_prefer,
    parse_query,
    selected_columns,
)
from d365sap.emulators.dataverse.query.filter_nodes import Compare, StringCall
from emulators.dataverse.query.query_support import ACCOUNT, error_of


def refusal(query: str, prefer: str | None = None) -> tuple[int, str, str]:
    error = error_of(parse_query, ACCOUNT, query, prefer)
    return error.status, error.code, error.message


def test_empty_query_means_everything_with_default_page_size() -> None:
    options = parse_query(ACCOUNT, "")
    assert options.select is None
    assert options.filter is None
    assert options.orderby == ()
    assert options.top is None
    assert options.count is False
    assert options.expand == ()
    assert options.page_size == 5000


def test_select_keeps_request_order_and_always_adds_the_primary_key() -> None:
    options = parse_query(ACCOUNT, "$select=name,revenue,name")
    assert options.select == ("name", "revenue")
    assert selected_columns(ACCOUNT, options) == ("name", "revenue", "accountid")
    assert selected_columns(ACCOUNT, parse_query(ACCOUNT, "$select=accountid,name")) == (
        "accountid",
        "name",
    )
    assert selected_columns(ACCOUNT, parse_query(ACCOUNT, "$select=*")) is None


def test_select_refusals() -> None:
    assert refusal("$select=name,nope") == (
        400,
        "0x80060888",
        "Could not find a property named 'nope' on type 'Microsoft.Dynamics.CRM.account'.",
    )
    assert refusal("$select=name,,revenue")[2] == ("Syntax error at position 5 in 'name,,revenue'.")
    assert "use $expand=primarycontactid" in refusal("$select=primarycontactid")[2]


def test_orderby_columns_directions_and_aliases() -> None:
    options = parse_query(ACCOUNT, "$orderby=revenue%20asc,name%20desc,createdon")
    assert options.orderby == (
        OrderBy("revenue", "Edm.Decimal"),
        OrderBy("name", "Edm.String", descending=True),
        OrderBy("createdon", "Edm.DateTimeOffset"),
    )
    aliased = parse_query(ACCOUNT, "$orderby=@p1 asc,@p2 desc&@p1=revenue&@p2=name")
    assert [(o.column, o.descending) for o in aliased.orderby] == [
        ("revenue", False),
        ("name", True),
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "$orderby=nope",
            "Could not find a property named 'nope' on type 'Microsoft.Dynamics.CRM.account'.",
        ),
        ("$orderby=name up", "Syntax error at position 5 in 'name up'."),
        ("$orderby=name,", "Expression expected at position 5 in 'name,'."),
        (
            "$orderby=primarycontactid/fullname",
            "$orderby on a property of a related table ('primarycontactid/…') is not supported.",
        ),
        ("$orderby=@p1&@p1=5", "The parameter alias '@p1' used in $orderby must name a property."),
    ],
)
def test_orderby_refusals(query: str, expected: str) -> None:
    assert refusal(query)[2] == expected


def test_top_and_count() -> None:
    options = parse_query(ACCOUNT, "$top=3&$count=true")
    assert options.top == 3
    assert options.count is True
    assert parse_query(ACCOUNT, "$top=0&$count=false").top == 0
    assert refusal("$top=-1")[2] == (
        "Invalid value '-1' for $top query option found. The $top query option requires a "
        "non-negative integer value."
    )
    assert refusal("$top=²")[0] == 400
    assert refusal("$count=yes")[2] == "'yes' is not a valid count option."


@pytest.mark.parametrize("name", ["$skip", "$search", "$format"])
def test_options_dataverse_does_not_support(name: str) -> None:
    assert refusal(f"{name}=1") == (
        400,
        "0x80060888",
        f"The query parameter {name} is not supported",
    )


def test_unknown_and_wrong_case_system_options_are_refused() -> None:
    assert refusal("$levels=2")[2] == "The query parameter $levels is not supported"
    assert refusal("$Filter=name eq 'a'")[2] == "The query parameter $Filter is not supported"


def test_custom_query_options_are_ignored() -> None:
    assert parse_query(ACCOUNT, "foo=bar&$top=1").top == 1


@pytest.mark.parametrize("name", ["$apply", "fetchXml", "savedQuery", "userQuery"])
def test_dataverse_options_the_emulator_lacks_answer_501(name: str) -> None:
    status, _, message = refusal(f"{name}=x")
    assert status == 501
    assert name in message


def test_an_option_given_twice_is_refused() -> None:
    assert refusal("$top=1&$top=2")[2] == (
        "Query option '$top' was specified more than once, but it must be specified at most once."
    )


def test_filter_is_percent_decoded_and_plus_is_a_space() -> None:
    options = parse_query(ACCOUNT, "$filter=contains(name,'%2B123')")
    assert isinstance(options.filter, StringCall)
    assert options.filter.pattern.value == "+123"  # type: ignore[union-attr]
    plus = parse_query(ACCOUNT, "$filter=name+eq+'a+b'")
    assert isinstance(plus.filter, Compare)
    assert plus.filter.right.value == "a b"  # type: ignore[union-attr]


def test_filter_aliases_from_the_query_string() -> None:
    options = parse_query(ACCOUNT, "$filter=@p1%20ne%20@p3&@p1=revenue")
    assert isinstance(options.filter, Compare)
    assert options.aliases == {"@p1": "revenue"}


def test_filter_errors_surface_from_parse_query() -> None:
    assert (
        refusal("$filter=")[2] == "The $filter expression must evaluate to a single boolean value."
    )
    assert "named 'nope'" in refusal("$filter=nope eq 1")[2]


@pytest.mark.parametrize("name", ["$filter", "$orderby", "$expand", "$top"])
def test_change_tracking_refuses_filter_orderby_expand_top(name: str) -> None:
    values = {
        "$filter": "name eq 'a'",
        "$orderby": "name",
        "$expand": "primarycontactid",
        "$top": "1",
    }
    status, code, message = refusal(f"{name}={values[name]}", "odata.track-changes")
    assert (status, code) == (400, "0x80060888")
    assert (
        message == f'The "{name}" query parameter isn\'t supported when Change Tracking is enabled.'
    )


def test_change_tracking_passes_select_and_deltatoken() -> None:
    options = parse_query(
        ACCOUNT, "$select=name&$deltatoken=919042%2108%2f22%2f2017", "odata.track-changes"
    )
    assert options.preferences.track_changes is True
    assert options.deltatoken == "919042!08/22/2017"


def test_maxpagesize_is_capped_at_5000_and_top_is_kept_for_run_query_to_ignore() -> None:
    assert parse_query(ACCOUNT, "", "odata.maxpagesize=2").page_size == 2
    big = parse_query(ACCOUNT, "$top=3", "odata.maxpagesize=9000")
    assert big.page_size == 5000
    assert big.preferences.max_page_size == 9000
    assert big.top == 3


def test_prefer_parsing() -> None:
    prefs = parse_prefer(
        'odata.maxpagesize=10, odata.include-annotations="OData.Community.Display.V1.'
        'FormattedValue,Microsoft.Dynamics.CRM.*",return=representation, '
        "odata.continue-on-error"
    )
    assert prefs.max_page_size == 10
    assert prefs.return_representation is True
    assert prefs.continue_on_error is True
    assert prefs.wants_annotation("OData.Community.Display.V1.FormattedValue")
    assert prefs.wants_annotation("Microsoft.Dynamics.CRM.lookuplogicalname")
    assert not prefs.wants_annotation("Microsoft.PowerApps.CDS.TraceText")
    assert prefs.applied(page_size=True, annotations=True) == (
        'odata.maxpagesize=10,odata.include-annotations="OData.Community.Display.V1.'
        'FormattedValue,Microsoft.Dynamics.CRM.*"'
    )


def test_prefer_wildcards_exclusions_and_malformed_values() -> None:
    prefs = parse_prefer('odata.include-annotations="*,-Microsoft.PowerApps.*"')
    assert prefs.wants_annotation("OData.Community.Display.V1.FormattedValue")
    assert not prefs.wants_annotation("Microsoft.PowerApps.CDS.HelpLink")
    bad = parse_prefer("odata.maxpagesize=abc, odata.maxpagesize=0")
    assert bad.max_page_size is None
    assert bad.page_size == 5000
    assert bad.applied(page_size=True) is None
    assert parse_prefer(None) == parse_prefer("")
    assert parse_prefer("odata.continue-on-error=false").continue_on_error is False

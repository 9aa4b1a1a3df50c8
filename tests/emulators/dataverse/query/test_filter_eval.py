"""$filter evaluation: SQL semantics (collation, NULL, three-valued logic, LIKE), lookups,
guids, dates, navigation paths and lambdas."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from d365sap.emulators.dataverse.query import EvalContext, matches, parse_filter
from emulators.dataverse.query.query_support import (
    ACCOUNT,
    FakeRelated,
    account,
    contact,
    guid,
    task,
)

ROWS = [
    account(
        1,
        "Contoso",
        revenue=Decimal("1000.50"),
        numberofemployees=10,
        creditonhold=True,
        accountnumber="C-1",
        _parentaccountid_value=guid(3),
    ),
    account(
        2,
        "Fabrikam ",
        revenue=Decimal("20"),
        numberofemployees=None,
        accountnumber="F-2",
        description="100% natural",
    ),
    account(
        3,
        "Café Ümlaut",
        revenue=None,
        numberofemployees=500,
        _parentaccountid_value=str(guid(1)).upper(),
    ),
    account(
        4,
        "Adventure Works",
        revenue=Decimal("1000.5"),
        numberofemployees=10,
        accountnumber="Adventure Works",
        openedon=date(2024, 3, 1),
        address1_latitude=47.5,
    ),
]


def names(text: str, rows: list[dict[str, object]] | None = None, **context: object) -> list[str]:
    node = parse_filter(text, ACCOUNT)
    ctx = EvalContext(**context)  # type: ignore[arg-type]
    return [str(row["name"]) for row in (rows or ROWS) if matches(node, row, ctx)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("revenue eq 1000.5", ["Contoso", "Adventure Works"]),
        ("revenue ne 20", ["Contoso", "Adventure Works"]),
        ("revenue gt 20", ["Contoso", "Adventure Works"]),
        ("revenue ge 20", ["Contoso", "Fabrikam ", "Adventure Works"]),
        ("revenue lt 1000.5", ["Fabrikam "]),
        ("revenue le 1000.5", ["Contoso", "Fabrikam ", "Adventure Works"]),
        ("numberofemployees eq 10", ["Contoso", "Adventure Works"]),
        ("numberofemployees gt 9.5", ["Contoso", "Café Ümlaut", "Adventure Works"]),
        ("address1_latitude lt 48", ["Adventure Works"]),
        ("versionnumber ge 3", ["Café Ümlaut", "Adventure Works"]),
    ],
)
def test_numeric_comparisons(text: str, expected: list[str]) -> None:
    assert names(text) == expected


def test_string_equality_is_case_and_accent_insensitive_and_ignores_trailing_spaces() -> None:
    assert names("name eq 'CONTOSO'") == ["Contoso"]
    assert names("name eq 'cafe umlaut'") == ["Café Ümlaut"]
    assert names("name eq 'fabrikam'") == ["Fabrikam "]
    assert names("name ne 'contoso'") == ["Fabrikam ", "Café Ümlaut", "Adventure Works"]


def test_string_ordering_uses_the_collation() -> None:
    assert names("name lt 'b'") == ["Adventure Works"]
    assert names("name ge 'CAFE'") == ["Contoso", "Fabrikam ", "Café Ümlaut"]


def test_null_semantics() -> None:
    assert names("revenue eq null") == ["Café Ümlaut"]
    assert names("revenue ne null") == ["Contoso", "Fabrikam ", "Adventure Works"]
    # a comparison with a NULL column value is unknown: neither it nor its negation is true
    assert names("numberofemployees ne 10") == ["Café Ümlaut"]
    assert names("not (numberofemployees eq 10)") == ["Café Ümlaut"]
    assert names("revenue gt null") == []


def test_three_valued_and_or() -> None:
    # Fabrikam: numberofemployees is NULL; unknown or true is true, unknown and true unknown
    assert "Fabrikam " in names("numberofemployees eq 1 or revenue eq 20")
    assert "Fabrikam " not in names("numberofemployees ne 1 and revenue eq 20")
    assert names("numberofemployees eq 10 and revenue eq 20") == []


def test_boolean_comparisons_and_boolean_column_alone() -> None:
    assert names("creditonhold eq true") == ["Contoso"]
    assert names("creditonhold") == ["Contoso"]
    assert names("not creditonhold") == ["Fabrikam ", "Café Ümlaut", "Adventure Works"]
    assert names("creditonhold ne true") == ["Fabrikam ", "Café Ümlaut", "Adventure Works"]


def test_lookup_value_filter_matches_uuid_or_text_in_any_case() -> None:
    assert names("_parentaccountid_value eq 00000000-0000-0000-0000-000000000003") == ["Contoso"]
    assert names("_parentaccountid_value eq 00000000-0000-0000-0000-000000000001") == [
        "Café Ümlaut"
    ]
    assert names("_parentaccountid_value eq null") == ["Fabrikam ", "Adventure Works"]


def test_guid_ordering_follows_sql_server() -> None:
    low = uuid.UUID("ffffffff-ffff-ffff-ffff-000000000001")
    high = uuid.UUID("00000000-0000-0000-0000-000000000002")
    rows = [account(1, "low", accountid=low), account(2, "high", accountid=high)]
    # SQL Server compares the last group first, so 'high' > 'low' despite its first bytes
    assert names("accountid gt ffffffff-ffff-ffff-ffff-000000000001", rows) == ["high"]


def test_column_comparison_in_the_same_row() -> None:
    assert names("name eq accountnumber") == ["Adventure Works"]
    assert names("name ne accountnumber") == ["Contoso", "Fabrikam "]


def test_datetime_and_date_comparisons() -> None:
    # createdon of account n is 2024-01-(n+1) 09:00Z
    assert names("createdon gt 2024-01-03T09:00:00Z") == ["Café Ümlaut", "Adventure Works"]
    assert names("createdon gt 2024-01-03T08:59:59Z") == [
        "Fabrikam ",
        "Café Ümlaut",
        "Adventure Works",
    ]
    assert names("createdon lt 2024-01-03") == ["Contoso"]
    assert names("createdon ge 2024-01-04T10:00:00+01:00") == ["Café Ümlaut", "Adventure Works"]
    assert names("openedon eq 2024-03-01") == ["Adventure Works"]
    naive = [account(1, "naive", createdon=datetime(2024, 1, 2, 9, 0))]
    assert names("createdon eq 2024-01-02T09:00:00Z", naive) == ["naive"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("contains(name,'on')", ["Contoso"]),
        ("contains(name,'ON')", ["Contoso"]),
        ("startswith(name,'a')", ["Adventure Works"]),
        ("endswith(name,'works')", ["Adventure Works"]),
        ("endswith(name,'ümlaut')", ["Café Ümlaut"]),
        ("startswith(name,'c_f')", ["Café Ümlaut"]),
        ("startswith(name,'[a-c]')", ["Contoso", "Café Ümlaut", "Adventure Works"]),
        ("startswith(name,'[^a-c]')", ["Fabrikam "]),
        ("contains(name,'%')", ["Contoso", "Fabrikam ", "Café Ümlaut", "Adventure Works"]),
        ("contains(description,'100%')", ["Fabrikam "]),
        ("not contains(name,'o')", ["Fabrikam ", "Café Ümlaut"]),
        ("contains(name,accountnumber)", ["Adventure Works"]),
    ],
)
def test_string_functions_are_sql_like(text: str, expected: list[str]) -> None:
    assert names(text) == expected


def test_string_function_on_null_is_unknown() -> None:
    assert names("contains(description,'a')") == ["Fabrikam "]
    assert names("not contains(description,'a')") == []


RELATED = FakeRelated(
    {
        "account": ROWS,
        "contact": [
            contact(1, "Ann", "Lee", jobtitle="CEO", _parentcustomerid_value=guid(1)),
            contact(2, "Bob", "Ray", jobtitle="Clerk", _parentcustomerid_value=guid(1)),
            contact(3, "Cid", "Roe", jobtitle="Clerk", _parentcustomerid_value=guid(2)),
        ],
        "task": [
            task(1, "Call", guid(1), statecode=1),
            task(2, "Mail", guid(1), statecode=0),
            task(3, "Visit", guid(2), statecode=1),
        ],
    }
)


def test_lookup_navigation_path_follows_the_related_row() -> None:
    rows = [
        account(1, "with contact", _primarycontactid_value=guid(1001)),
        account(2, "without contact"),
    ]
    assert names("primarycontactid/jobtitle eq 'ceo'", rows, related=RELATED) == ["with contact"]
    assert names("primarycontactid/jobtitle eq null", rows, related=RELATED) == ["without contact"]
    two_steps = [account(9, "grandchild", _parentaccountid_value=guid(1))]
    assert names(
        "parentaccountid/parentaccountid/name eq 'Café Ümlaut'", two_steps, related=RELATED
    ) == ["grandchild"]


def test_any_and_all_over_related_collections() -> None:
    assert names("contact_customer_accounts/any(c:c/jobtitle eq 'CEO')", related=RELATED) == [
        "Contoso"
    ]
    assert names("contact_customer_accounts/any()", related=RELATED) == ["Contoso", "Fabrikam "]
    assert names("Account_Tasks/all(t:t/statecode eq 1)", related=RELATED) == [
        "Fabrikam ",
        "Café Ümlaut",
        "Adventure Works",
    ]
    nested = (
        "contact_customer_accounts/any(c:c/jobtitle eq 'Clerk' and "
        "c/Contact_Tasks/any(t:t/subject eq 'x'))"
    )
    assert names(nested, related=RELATED) == []


def test_paths_without_related_rows_are_reported() -> None:
    node = parse_filter("primarycontactid/fullname eq 'x'", ACCOUNT)
    row = account(1, "a", _primarycontactid_value=guid(1001))
    with pytest.raises(Exception, match="need related rows"):
        matches(node, row, EvalContext())


def test_context_now_defaults_to_utc_now() -> None:
    before = datetime.now(UTC)
    assert EvalContext().now >= before

"""run_query: filtering, counting, ordering and server-driven paging with paging cookies."""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from d365sap.emulators.dataverse.query import (
    Page,
    PagingSigner,
    next_link,
    parse_query,
    run_query,
)
from emulators.dataverse.query.query_support import ACCOUNT, account, error_of, guid

SIGNER = PagingSigner(b"k" * 32)


def run(
    rows: list[dict[str, object]],
    query: str = "",
    prefer: str | None = None,
    token: str | None = None,
) -> Page:
    if token is not None:
        query = f"{query}&$skiptoken={quote(token)}" if query else f"$skiptoken={quote(token)}"
    options = parse_query(ACCOUNT, query, prefer, signer=SIGNER)
    return run_query(ACCOUNT, rows, options, signer=SIGNER)


def ids(page: Page) -> list[int]:
    return [int(row["versionnumber"]) for row in page.rows]  # type: ignore[call-overload]


def walk(rows: list[dict[str, object]], query: str, prefer: str) -> list[list[int]]:
    pages, token = [], None
    while True:
        page = run(rows, query, prefer, token)
        pages.append(ids(page))
        token = page.skiptoken
        if token is None:
            return pages


def flat(pages: list[list[int]]) -> list[int]:
    return [n for page in pages for n in page]


ROWS = [account(n, f"Account {n:02}") for n in range(1, 13)]


def test_pages_cover_every_row_once_in_primary_key_order() -> None:
    assert walk(ROWS, "", "odata.maxpagesize=5") == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12]]


def test_page_numbers_and_the_dataverse_cookie_shape() -> None:
    first = run(ROWS, "", "odata.maxpagesize=5")
    assert first.page_number == 1
    assert first.skiptoken is not None
    assert first.skiptoken.startswith('<cookie pagenumber="2" pagingcookie="')
    assert first.skiptoken.endswith('" istracking="False" />')
    second = run(ROWS, "", "odata.maxpagesize=5", first.skiptoken)
    assert second.page_number == 2


def test_last_page_has_no_skiptoken_and_an_exact_fit_needs_no_extra_page() -> None:
    assert run(ROWS[:5], "", "odata.maxpagesize=5").skiptoken is None
    assert run([], "", "odata.maxpagesize=5").rows == []


def test_paging_is_stable_under_inserts_and_deletes() -> None:
    rows = list(ROWS)
    first = run(rows, "", "odata.maxpagesize=5")
    assert ids(first) == [1, 2, 3, 4, 5]
    rows.insert(0, account(0, "new, sorts before the cursor"))
    rows.append(account(13, "new, sorts after"))
    rows = [r for r in rows if r["versionnumber"] not in (5, 6)]  # the cursor row and the next
    second = run(rows, "", "odata.maxpagesize=5", first.skiptoken)
    assert ids(second) == [7, 8, 9, 10, 11]


def test_order_by_with_ties_nulls_and_descending_pages_without_repeats() -> None:
    revenues = [Decimal(5), None, Decimal(5), Decimal(1), None, Decimal(9), Decimal(5)]
    rows = [account(n + 1, f"a{n}", revenue=r) for n, r in enumerate(revenues)]
    ascending = walk(rows, "$orderby=revenue", "odata.maxpagesize=2")
    assert flat(ascending) == [2, 5, 4, 1, 3, 7, 6]  # NULLs first, ties by key
    descending = walk(rows, "$orderby=revenue desc", "odata.maxpagesize=3")
    assert flat(descending) == [6, 1, 3, 7, 4, 2, 5]  # NULLs last


def test_multi_column_order_with_strings_under_the_collation() -> None:
    rows = [
        account(1, "beta", revenue=Decimal(1)),
        account(2, "Alpha", revenue=Decimal(2)),
        account(3, "alpha", revenue=Decimal(1)),
        account(4, "Älpha", revenue=Decimal(1)),
    ]
    assert flat(walk(rows, "$orderby=name,revenue desc", "odata.maxpagesize=1")) == [2, 3, 4, 1]


def test_filter_applies_before_paging_and_count() -> None:
    rows = [account(n, f"n{n}", numberofemployees=n) for n in range(1, 21)]
    page = run(rows, "$filter=numberofemployees%20gt%205&$count=true", "odata.maxpagesize=4")
    assert ids(page) == [6, 7, 8, 9]
    assert page.count == 15
    following = run(
        rows,
        "$filter=numberofemployees%20gt%205&$count=true",
        "odata.maxpagesize=4",
        page.skiptoken,
    )
    assert ids(following) == [10, 11, 12, 13]
    assert following.count == 15


def test_top_without_paging_preference_limits_rows_and_gives_no_next_page() -> None:
    page = run(ROWS, "$top=3&$orderby=versionnumber%20desc")
    assert ids(page) == [12, 11, 10]
    assert page.skiptoken is None


def test_top_is_ignored_when_maxpagesize_is_given() -> None:
    page = run(ROWS, "$top=3", "odata.maxpagesize=5")
    assert len(page.rows) == 5
    assert page.skiptoken is not None


def test_default_page_is_5000_rows_and_count_caps_at_5000() -> None:
    rows = [account(n, "x") for n in range(1, 5003)]
    page = run(rows, "$count=true&$select=name")
    assert len(page.rows) == 5000
    assert page.skiptoken is not None
    assert page.count == 5000
    assert page.count_limit_exceeded is True
    assert page.count_annotations(include_total=True) == {
        "@odata.count": 5000,
        "@Microsoft.Dynamics.CRM.totalrecordcount": 5000,
        "@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded": True,
    }
    rest = run(rows, "$count=true&$select=name", None, page.skiptoken)
    assert len(rest.rows) == 2


def test_maxpagesize_above_5000_falls_back_to_5000() -> None:
    rows = [account(n, "x") for n in range(1, 5003)]
    assert len(run(rows, "", "odata.maxpagesize=10000").rows) == 5000


def test_count_annotations_without_count() -> None:
    page = run(ROWS[:2])
    assert page.count is None
    assert page.count_annotations(include_total=False) == {}
    assert page.count_annotations(include_total=True) == {
        "@Microsoft.Dynamics.CRM.totalrecordcount": -1,
        "@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded": False,
    }


def tampered(token: str) -> str:
    head, _, tail = token.partition('pagingcookie="')
    flipped = ("A" if tail[3] != "A" else "B") + tail[4:]
    return f'{head}pagingcookie="{tail[:3]}{flipped}'


@pytest.mark.parametrize(
    "mutate",
    [
        tampered,
        lambda t: t.replace('pagenumber="2"', 'pagenumber="3"'),
        lambda t: t[:-5],
        lambda t: "garbage",
        lambda t: "",
    ],
)
def test_altered_skiptoken_is_refused(mutate: object) -> None:
    token = run(ROWS, "", "odata.maxpagesize=5").skiptoken
    assert token is not None
    assert callable(mutate)
    error = error_of(
        parse_query, ACCOUNT, f"$skiptoken={quote(mutate(token))}", None, signer=SIGNER
    )
    assert (error.status, error.code) == (400, "0x80040203")
    assert "$skiptoken is not valid" in error.message


def test_skiptoken_of_another_query_or_another_key_is_refused() -> None:
    token = run(ROWS, "$orderby=name", "odata.maxpagesize=5").skiptoken
    assert token is not None
    other_query = error_of(
        parse_query, ACCOUNT, f"$orderby=revenue&$skiptoken={quote(token)}", None, signer=SIGNER
    )
    assert other_query.code == "0x80040203"
    other_key = error_of(
        parse_query,
        ACCOUNT,
        f"$orderby=name&$skiptoken={quote(token)}",
        None,
        signer=PagingSigner(b"z" * 32),
    )
    assert other_key.code == "0x80040203"


def test_cursor_values_of_every_type_survive_the_round_trip() -> None:
    rows = [
        account(
            n,
            f"n{n}",
            revenue=Decimal(n) / 4,
            address1_latitude=n / 3,
            creditonhold=n % 2 == 0,
            accountnumber=None if n % 3 else f"A{n}",
        )
        for n in range(1, 8)
    ]
    for orderby in (
        "revenue",
        "address1_latitude desc",
        "creditonhold,createdon",
        "accountnumber desc",
        "openedon",
        "_parentaccountid_value",
    ):
        pages = walk(rows, f"$orderby={quote(orderby)}", "odata.maxpagesize=2")
        assert sorted(flat(pages)) == list(range(1, 8)), orderby


def test_next_link_keeps_the_query_and_replaces_the_skiptoken() -> None:
    link = next_link(
        "https://org.example/api/data/v9.2/",
        "accounts",
        "$select=name&$skiptoken=old&$filter=name%20eq%20'a'",
        '<cookie pagenumber="2" pagingcookie="abc.def" istracking="False" />',
    )
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://org.example/api/data/v9.2/accounts"
    )
    assert parts.query.startswith("$select=name&$filter=name%20eq%20'a'&$skiptoken=%3Ccookie")
    assert parse_qs(parts.query)["$skiptoken"] == [
        '<cookie pagenumber="2" pagingcookie="abc.def" istracking="False" />'
    ]


def test_rows_come_back_whole_for_the_serializer() -> None:
    page = run([account(1, "a", _parentaccountid_value=guid(2))], "$select=name")
    assert page.rows[0]["_parentaccountid_value"] == guid(2)

"""$expand: parsing nested options against each target table, Dataverse's restrictions, and
shaping related rows."""

from __future__ import annotations

import pytest

from d365sap.emulators.dataverse.query import parse_expand, parse_query, shape_related
from d365sap.emulators.dataverse.query.filter_nodes import StringCall
from emulators.dataverse.query.query_support import ACCOUNT, TASK, error_of, guid, task


def refusal(text: str) -> str:
    error = error_of(parse_expand, text, ACCOUNT)
    assert (error.status, error.code) == (400, "0x80060888")
    return error.message


def test_single_and_collection_valued_with_options() -> None:
    items = parse_expand(
        "primarycontactid($select=fullname),"
        "Account_Tasks($select=subject;$filter=contains(subject,'Task');$orderby=subject desc;"
        "$top=2)",
        ACCOUNT,
    )
    contact, tasks = items
    assert (contact.navigation, contact.collection, contact.select) == (
        "primarycontactid",
        False,
        ("fullname",),
    )
    assert contact.target.logical_name == "contact"
    assert tasks.collection is True
    assert tasks.select == ("subject",)
    assert isinstance(tasks.filter, StringCall)
    assert [(o.column, o.descending) for o in tasks.orderby] == [("subject", True)]
    assert tasks.top == 2


def test_nested_expand_of_single_valued_properties() -> None:
    (item,) = parse_expand(
        "primarycontactid($select=fullname;$expand=parentcustomerid_account($select=name;"
        "$expand=parentaccountid($select=name)))",
        ACCOUNT,
    )
    (inner,) = item.expand
    assert inner.navigation == "parentcustomerid_account"
    assert inner.expand[0].navigation == "parentaccountid"
    assert inner.expand[0].target.logical_name == "account"


def test_ref_on_lookup_only() -> None:
    (item,) = parse_expand("primarycontactid/$ref", ACCOUNT)
    assert item.ref is True
    assert refusal("Account_Tasks/$ref") == (
        "Expand with $ref is only supported on lookup type navigation property."
    )
    assert "cannot have query options" in refusal("primarycontactid/$ref($select=fullname)")


def test_top_and_orderby_are_refused_on_single_valued_and_with_nested_expand() -> None:
    expected = (
        "Only $select and $filter clause can be provided while doing $expand on many-to-one "
        "relationship or nested one-to-many relationship."
    )
    assert refusal("primarycontactid($top=1)") == expected
    assert refusal("primarycontactid($orderby=fullname)") == expected
    assert (
        refusal(
            "Account_Tasks($top=2),contact_customer_accounts($select=fullname;"
            "$expand=parentcustomerid_account($select=name))"
        )
        == expected
    )
    # $filter is allowed on a single-valued navigation property
    assert parse_expand("primarycontactid($filter=fullname ne null)", ACCOUNT)[0].filter


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "nope",
            "Could not find a property named 'nope' on type 'Microsoft.Dynamics.CRM.account'.",
        ),
        (
            "name",
            "Property 'name' on type 'Microsoft.Dynamics.CRM.account' is not a navigation "
            "property or complex property. Only navigation properties can be expanded.",
        ),
        (
            "primarycontactid($select=nope)",
            "Could not find a property named 'nope' on type 'Microsoft.Dynamics.CRM.contact'.",
        ),
        (
            "Account_Tasks($filter=name eq 'a')",
            "Could not find a property named 'name' on type 'Microsoft.Dynamics.CRM.task'.",
        ),
        ("Account_Tasks($skip=1)", "The query parameter $skip is not supported"),
        ("Account_Tasks($count=true)", "The query parameter $count is not supported"),
        ("Account_Tasks($levels=2)", "The query parameter $levels is not supported"),
        (
            "Account_Tasks($format=json)",
            "The query option '$format' is not allowed inside $expand.",
        ),
        (
            "Account_Tasks($top=1;$top=2)",
            "Query option '$top' was specified more than once, but "
            "it must be specified at most once.",
        ),
        ("Account_Tasks($top)", "Syntax error at position 0 in '$top'."),
        (
            "Account_Tasks($filter=subject eq @p1)",
            "Parameter aliases ('@p1') cannot be used inside $expand.",
        ),
        (
            "primarycontactid,primarycontactid",
            "The navigation property 'primarycontactid' is expanded more than once.",
        ),
        (
            "primarycontactid,,Account_Tasks",
            "Syntax error at position 17 in 'primarycontactid,,Account_Tasks'.",
        ),
        ("primarycontactid(x) y", "Syntax error at position 0 in 'primarycontactid(x) y'."),
    ],
)
def test_refusals(text: str, expected: str) -> None:
    assert refusal(text) == expected


def test_at_most_15_expansions() -> None:
    fifteen = ",".join(["primarycontactid", "parentaccountid", "Account_Tasks"])
    assert len(parse_expand(fifteen, ACCOUNT)) == 3
    deep = "parentaccountid($expand=" * 15 + "primarycontactid" + ")" * 15
    assert "exceeded maximum limit of 15 (this $expand has 16)" in refusal(deep)


def test_expand_through_parse_query() -> None:
    options = parse_query(ACCOUNT, "$select=name&$expand=Account_Tasks($select=subject)")
    assert options.expand[0].navigation == "Account_Tasks"
    assert parse_query(ACCOUNT, "$expand=").expand == ()


def test_shape_related_filters_orders_and_cuts() -> None:
    (item,) = parse_expand(
        "Account_Tasks($filter=statecode eq 0;$orderby=subject desc;$top=2)", ACCOUNT
    )
    rows = [
        task(1, "alpha", guid(1)),
        task(2, "gamma", guid(1)),
        task(3, "beta", guid(1)),
        task(4, "delta", guid(1), statecode=1),
    ]
    assert [r["subject"] for r in shape_related(item, rows)] == ["gamma", "beta"]
    (plain,) = parse_expand("Account_Tasks", ACCOUNT)
    assert [r["subject"] for r in shape_related(plain, reversed(rows))] == [
        "alpha",
        "gamma",
        "beta",
        "delta",
    ]
    assert plain.target is TASK

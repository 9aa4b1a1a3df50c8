"""$filter grammar: precedence, binding against the table, and every refusal."""

from __future__ import annotations

import pytest

from d365sap.emulators.dataverse.query import parse_filter
from d365sap.emulators.dataverse.query.filter_nodes import (
    Compare,
    Lambda,
    Literal,
    Logical,
    Member,
    Not,
    QueryFunction,
    StringCall,
)
from emulators.dataverse.query.query_support import ACCOUNT, error_of


def message(text: str, aliases: dict[str, str] | None = None) -> str:
    error = error_of(parse_filter, text, ACCOUNT, aliases)
    assert error.status == 400
    assert error.code == "0x80060888"
    return error.message


def test_and_binds_tighter_than_or() -> None:
    node = parse_filter("name eq 'a' or name eq 'b' and revenue gt 5", ACCOUNT)
    assert isinstance(node, Logical)
    assert node.op == "or"
    assert isinstance(node.right, Logical)
    assert node.right.op == "and"


def test_parentheses_override_precedence() -> None:
    node = parse_filter("(name eq 'a' or name eq 'b') and revenue gt 5", ACCOUNT)
    assert isinstance(node, Logical)
    assert node.op == "and"
    assert isinstance(node.left, Logical)
    assert node.left.op == "or"


def test_operators_are_left_associative() -> None:
    node = parse_filter("name eq 'a' and name eq 'b' and name eq 'c'", ACCOUNT)
    assert isinstance(node, Logical)
    assert isinstance(node.left, Logical)
    assert isinstance(node.right, Compare)


def test_not_applies_to_a_parenthesised_comparison_and_to_a_function() -> None:
    node = parse_filter("not (name eq 'a') and not contains(name,'x')", ACCOUNT)
    assert isinstance(node, Logical)
    assert isinstance(node.left, Not)
    assert isinstance(node.left.operand, Compare)
    assert isinstance(node.right, Not)
    assert isinstance(node.right.operand, StringCall)


def test_not_binds_tighter_than_eq_so_not_name_eq_is_a_type_error() -> None:
    assert message("not name eq 'x'") == (
        "A unary operator with an incompatible type was detected. Found operand type "
        "'Edm.String' for operator kind 'Not'."
    )


def test_binds_members_and_literals_with_types() -> None:
    node = parse_filter("_parentaccountid_value eq 00000000-0000-0000-0000-000000000001", ACCOUNT)
    assert isinstance(node, Compare)
    assert isinstance(node.left, Member)
    assert node.left.name == "_parentaccountid_value"
    assert node.left.edm_type == "Edm.Guid"
    assert isinstance(node.right, Literal)
    assert node.right.edm_type == "Edm.Guid"


def test_unknown_column_is_refused_with_dataverse_message() -> None:
    assert message("nmae eq 'x'") == (
        "Could not find a property named 'nmae' on type 'Microsoft.Dynamics.CRM.account'."
    )


def test_property_names_are_case_sensitive() -> None:
    assert "named 'Name'" in message("Name eq 'x'")


@pytest.mark.parametrize(
    ("text", "left", "right", "kind"),
    [
        (
            "_parentaccountid_value eq '00000000-0000-0000-0000-000000000001'",
            "Edm.Guid",
            "Edm.String",
            "Equal",
        ),
        ("numberofemployees eq '5'", "Edm.Int32", "Edm.String", "Equal"),
        ("name ne 5", "Edm.String", "Edm.Int32", "NotEqual"),
        ("creditonhold gt false", "Edm.Boolean", "Edm.Boolean", "GreaterThan"),
        ("createdon ge 'yesterday'", "Edm.DateTimeOffset", "Edm.String", "GreaterThanOrEqual"),
        ("openedon lt 2024-01-01T00:00:00Z", "Edm.Date", "Edm.DateTimeOffset", "LessThan"),
        ("name le true", "Edm.String", "Edm.Boolean", "LessThanOrEqual"),
        (
            "name eq accountnumber and revenue eq numberofemployees",
            "Edm.Decimal",
            "Edm.Int32",
            "Equal",
        ),
        ("entityimage eq entityimage", "Edm.Binary", "Edm.Binary", "Equal"),
        ("name eq 'a' and name", "Edm.Boolean", "Edm.String", "And"),
        ("revenue or name eq 'a'", "Edm.Decimal", "Edm.Boolean", "Or"),
    ],
)
def test_incompatible_types_are_refused(text: str, left: str, right: str, kind: str) -> None:
    assert message(text) == (
        "A binary operator with incompatible types was detected. Found operand types "
        f"'{left}' and '{right}' for operator kind '{kind}'."
    )


@pytest.mark.parametrize(
    "text",
    [
        "revenue gt 5",
        "revenue gt 5.5",
        "numberofemployees le 1.5",
        "address1_latitude ge 47",
        "versionnumber gt 2147483648",
        "createdon ge 2024-01-01",
        "openedon eq 2024-01-01",
        "accountid gt 00000000-0000-0000-0000-000000000001",
        "name eq null",
        "null ne revenue",
    ],
)
def test_compatible_comparisons_bind(text: str) -> None:
    assert isinstance(parse_filter(text, ACCOUNT), Compare)


def test_column_comparison_of_same_type_binds() -> None:
    node = parse_filter("name eq accountnumber", ACCOUNT)
    assert isinstance(node, Compare)
    assert isinstance(node.right, Member)


def test_filter_must_be_boolean() -> None:
    expected = "The $filter expression must evaluate to a single boolean value."
    assert message("name") == expected
    assert message("   ") == expected


def test_boolean_column_alone_is_a_filter() -> None:
    assert isinstance(parse_filter("creditonhold", ACCOUNT), Member)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name eq", "Expression expected at position 7 in 'name eq'."),
        ("(name eq 'a'", "')' or operator expected at position 12 in '(name eq 'a''."),
        ("name eq 'a' 'b'", "Syntax error at position 12 in 'name eq 'a' 'b''."),
        ("contains(name 'a')", "')' or ',' expected at position 14 in 'contains(name 'a')'."),
        ("name eq 'a' and", "Expression expected at position 15 in 'name eq 'a' and'."),
        (")", "Expression expected at position 0 in ')'."),
    ],
)
def test_syntax_errors_name_the_position(text: str, expected: str) -> None:
    assert message(text) == expected


def test_in_operator_of_odata_401_is_refused_with_the_dataverse_alternative() -> None:
    text = message("name in ('a','b')")
    assert "'in' operator" in text
    assert "Microsoft.Dynamics.CRM.In" in text


@pytest.mark.parametrize("op", ["add", "sub", "mul", "div", "mod", "has"])
def test_arithmetic_and_has_are_refused(op: str) -> None:
    assert f"'{op}' operator is not supported" in message(f"revenue {op} 1 eq 2")


@pytest.mark.parametrize("name", ["tolower", "toupper", "length", "year", "substringof"])
def test_odata_builtins_dataverse_lacks_are_refused(name: str) -> None:
    assert f"The function '{name}' is not supported" in message(f"{name}(name) eq 'x'")


def test_unknown_function() -> None:
    assert message("frobnicate(name)") == (
        "An unknown function with name 'frobnicate' was found. This may also be a function "
        "import or a key lookup on a navigation property, which is not allowed."
    )


def test_dataverse_function_must_be_fully_qualified() -> None:
    assert "unknown function with name 'In'" in message("In(PropertyName='name')")


@pytest.mark.parametrize(
    "text",
    ["contains(name)", "contains(revenue,'1')", "startswith(name,1)", "endswith(name,'a','b')"],
)
def test_string_function_signatures(text: str) -> None:
    name = text.split("(")[0]
    assert message(text) == (
        f"No function signature for the function with name '{name}' matches the specified "
        f"arguments. The function signatures considered are: {name}(Edm.String "
        "Nullable=true, Edm.String Nullable=true)."
    )


def test_string_function_argument_order_is_subject_then_pattern() -> None:
    node = parse_filter("startswith(name,'Con')", ACCOUNT)
    assert isinstance(node, StringCall)
    assert isinstance(node.subject, Member)
    assert isinstance(node.pattern, Literal)
    assert node.pattern.value == "Con"


def test_parameter_aliases_resolve_to_expressions_and_unassigned_is_null() -> None:
    node = parse_filter("@p1 ne @p3", ACCOUNT, {"@p1": "revenue"})
    assert isinstance(node, Compare)
    assert isinstance(node.left, Member)
    assert node.left.name == "revenue"
    assert isinstance(node.right, Literal)
    assert node.right.edm_type == "null"


def test_self_referencing_alias_is_refused() -> None:
    assert "refers to itself" in message("@p1 eq 1", {"@p1": "@p1"})


def test_aliases_are_refused_where_not_allowed() -> None:
    error = error_of(parse_filter, "name eq @p1", ACCOUNT, None)
    assert "cannot be used inside $expand" in error.message


def test_lookup_navigation_path_binds_through_the_target_table() -> None:
    node = parse_filter("primarycontactid/fullname eq 'x'", ACCOUNT)
    assert isinstance(node, Compare)
    member = node.left
    assert isinstance(member, Member)
    assert member.path == "primarycontactid/fullname"
    assert member.table.logical_name == "contact"


def test_navigation_path_errors() -> None:
    assert message("primarycontactid/nope eq 'x'") == (
        "Could not find a property named 'nope' on type 'Microsoft.Dynamics.CRM.contact'."
    )
    assert "cannot be compared" in message("primarycontactid eq null")
    assert "is not a navigation property" in message("name/x eq 'a'")
    assert "only be followed by /any(...) or /all(...)" in message(
        "contact_customer_accounts/fullname eq 'a'"
    )


def test_lambda_any_and_all_bind_their_variable_to_the_target_table() -> None:
    node = parse_filter(
        "contact_customer_accounts/any(c:c/jobtitle eq 'CEO' and "
        "c/Contact_Tasks/all(t:t/statecode eq 1))",
        ACCOUNT,
    )
    assert isinstance(node, Lambda)
    assert node.op == "any"
    assert node.lambda_variable == "c"
    assert isinstance(node.predicate, Logical)
    inner = node.predicate.right
    assert isinstance(inner, Lambda)
    assert inner.op == "all"
    assert inner.variable == "c"


def test_lambda_errors() -> None:
    assert "Could not find a property named 'subject'" in message(
        "contact_customer_accounts/any(c:c/subject eq 'x')"
    )
    assert "must evaluate to a single boolean value" in message(
        "contact_customer_accounts/any(c:c/jobtitle)"
    )
    assert "must be followed by '/'" in message("contact_customer_accounts/any(c:c eq null)")
    assert "Syntax error" in message("contact_customer_accounts/all()")
    assert "nested in a lookup" in message("primarycontactid/Contact_Tasks/any(t:t/statecode eq 1)")


def test_any_without_argument() -> None:
    node = parse_filter("Account_Tasks/any()", ACCOUNT)
    assert isinstance(node, Lambda)
    assert node.predicate is None


def test_dataverse_function_binds_to_a_query_function_node() -> None:
    node = parse_filter(
        "Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=['a','b'])", ACCOUNT
    )
    assert isinstance(node, QueryFunction)
    assert node.name == "In"
    assert node.column.name == "name"

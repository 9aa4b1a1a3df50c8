"""OData v2 literals and key predicates are escaped (D1, D9)."""

from __future__ import annotations

from d365sap.connectors.odata_v2 import entity_path, eq_filter, key_predicate, string_literal


def test_string_literal_doubles_quotes() -> None:
    assert string_literal("O'Brien") == "'O''Brien'"
    assert string_literal("") == "''"


def test_key_predicate_uses_values_not_names() -> None:
    keys = {
        "Customer": "17100001",
        "SalesOrganization": "1710",
        "DistributionChannel": "10",
        "Division": "00",
    }
    assert entity_path("A_CustomerSalesArea", keys) == (
        "A_CustomerSalesArea(Customer='17100001',SalesOrganization='1710',"
        "DistributionChannel='10',Division='00')"
    )


def test_key_predicate_escapes_and_encodes() -> None:
    assert key_predicate({"Customer": "A'B /C"}) == "(Customer='A%27%27B%20%2FC')"


def test_eq_filter() -> None:
    assert eq_filter({"Customer": "1'2", "Division": "00"}) == (
        "Customer eq '1''2' and Division eq '00'"
    )

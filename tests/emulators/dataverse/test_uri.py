"""Resource paths and key predicates, and JSON values of columns, checked without the app."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from d365sap.emulators.dataverse.columns import Column
from d365sap.emulators.dataverse.errors import WebApiError
from d365sap.emulators.dataverse.tables import build_schema
from d365sap.emulators.dataverse.uri import parse_key, parse_reference, resolve, split_path
from d365sap.emulators.dataverse.values import from_json, to_json

SCHEMA = build_schema()
ID = "E2F3A4B5-C6D7-4E8F-9A0B-1C2D3E4F5A6B"


def test_primary_keys_are_lower_cased_guids() -> None:
    key = parse_key(SCHEMA.table("account"), ID)
    assert key.row_id == ID.lower()
    named = parse_key(SCHEMA.table("account"), f"accountid={ID}")
    assert named.row_id == ID.lower()


def test_string_keys_unescape_quotes_and_keep_commas() -> None:
    key = parse_key(SCHEMA.table("account"), "accountnumber='O''Neil, Inc.'")
    assert key.values == {"accountnumber": "O'Neil, Inc."}
    assert key.key is not None
    assert key.key.name == "accountnumber"


def test_composite_keys_in_any_order_with_typed_values() -> None:
    key = parse_key(
        SCHEMA.table("sap_linkederporg"),
        "sap_spart='00',sap_vtweg='10',sap_vkorg='1710',sap_erpsystemtype=100000000",
    )
    assert key.values == {
        "sap_spart": "00",
        "sap_vtweg": "10",
        "sap_vkorg": "1710",
        "sap_erpsystemtype": 100000000,
    }


def test_lookup_columns_of_a_key_by_either_name() -> None:
    detail = SCHEMA.table("sap_erpaccountdetail")
    other = "0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d"
    by_logical = parse_key(detail, f"sap_erpaccountid={ID},sap_linkederporgid={other}")
    by_property = parse_key(
        detail, f"_sap_erpaccountid_value={ID},_sap_linkederporgid_value={other}"
    )
    assert (
        by_logical.values
        == by_property.values
        == {
            "_sap_erpaccountid_value": ID.lower(),
            "_sap_linkederporgid_value": other,
        }
    )


@pytest.mark.parametrize(
    ("predicate", "code"),
    [
        ("name='x'", "0x80060890"),
        ("accountnumber=5", "0x80060888"),
        ("sap_nothing='x'", "0x80060890"),
        ("accountnumber='open", "0x80060888"),
        ("12345", "0x80060888"),
        ("accountnumber='a',accountnumber='b'", "0x80060888"),
    ],
)
def test_bad_key_predicates(predicate: str, code: str) -> None:
    with pytest.raises(WebApiError) as caught:
        parse_key(SCHEMA.table("account"), predicate)
    assert (caught.value.status, caught.value.code) == (400, code)


def test_paths_and_their_targets() -> None:
    target = resolve(SCHEMA, split_path(f"accounts({ID})/contact_customer_accounts/$count"))
    assert target.count
    assert target.navigation is not None
    assert target.result_table.logical_name == "contact"
    prop = resolve(SCHEMA, split_path(f"accounts({ID})/_parentaccountid_value"))
    assert prop.column is not None
    assert prop.single
    with pytest.raises(WebApiError) as caught:
        resolve(SCHEMA, split_path(f"accounts({ID})/nothing"))
    assert caught.value.message == "Resource not found for the segment 'nothing'."
    with pytest.raises(WebApiError):
        resolve(SCHEMA, split_path("accounts/$count/$count"))


def test_encoded_slash_stays_inside_a_key_value() -> None:
    target = resolve(SCHEMA, split_path("accounts(accountnumber='A%2FB')"))
    assert target.key is not None
    assert target.key.values == {"accountnumber": "A/B"}


@pytest.mark.parametrize(
    "reference",
    [
        f"/accounts({ID})",
        f"accounts({ID})",
        f"https://org.example/api/data/v9.2/accounts({ID})",
        f"https://dataverse.test/api/data/v9.2/accounts({ID})",
    ],
)
def test_bind_references(reference: str) -> None:
    key = parse_reference(SCHEMA, reference, "https://dataverse.test/api/data/v9.2/")
    assert (key.table.logical_name, key.row_id) == ("account", ID.lower())


@pytest.mark.parametrize("reference", ["/accounts", "/nothings(1)", f"/accounts({ID})/name"])
def test_references_that_name_no_row(reference: str) -> None:
    with pytest.raises(ValueError, match="'"):
        parse_reference(SCHEMA, reference, "https://dataverse.test/api/data/v9.2/")


def test_values_are_stored_typed_and_written_back() -> None:
    account = SCHEMA.table("account")
    order = SCHEMA.table("salesorder")

    def column(table_name: str, name: str) -> Column:
        found = SCHEMA.table(table_name).column(name)
        assert found is not None
        return found

    revenue = from_json(account, column("account", "revenue"), 1234.565)
    assert revenue == Decimal("1234.57")
    assert to_json(revenue) == 1234.57
    created = from_json(account, column("account", "createdon"), "2026-03-01T10:00:00.123+01:00")
    assert created == datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)
    assert to_json(created) == "2026-03-01T09:00:00Z"
    day = from_json(order, column("salesorder", "requestdeliveryby"), "2026-04-30")
    assert day == date(2026, 4, 30)
    assert to_json(Decimal("3")) == 3
    with pytest.raises(WebApiError):
        from_json(order, column("salesorder", "requestdeliveryby"), "1700-01-01")
    with pytest.raises(WebApiError):
        from_json(account, column("account", "numberofemployees"), 2**31)
    with pytest.raises(WebApiError):
        from_json(account, column("account", "creditonhold"), 1)

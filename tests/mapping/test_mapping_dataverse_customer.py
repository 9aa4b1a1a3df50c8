"""Dataverse rows → the package's messages and the canonical new customer.

Inputs are real rows of the Dataverse emulator (its packaged seed, and new customers created in
it through the Web API); the seed's customers are the package's examples A, B and C, so the
messages built from the rows are compared with the package's own example messages.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from d365sap.config import IdocControlSettings
from d365sap.errors import ValidationError
from d365sap.mapping.crm_xml import parse_customer_message
from d365sap.mapping.dataverse_customer import (
    CustomerRows,
    accounts_message,
    customer_number,
    details_message,
    new_customer,
    route_rows,
)
from d365sap.mapping.debmas import idoc_for_message
from d365sap.mapping.routing import Route
from d365sap.model.crm import ErpAccountDetailsMessage, ErpAccountsMessage
from support.customer_rows import (
    DETAIL_MUSTER_ECC,
    DETAIL_US1_S4,
    ERP_ACCOUNT_MUSTER_GENERAL,
    ERP_ACCOUNT_US1_S4,
    ORG_ECC_1000,
    ORG_S4_1010,
    SeedRows,
)
from support.examples import canonical, example


@pytest.fixture(scope="module")
def seed() -> SeedRows:
    return SeedRows()


@pytest.fixture(scope="module")
def new_rows(seed: SeedRows) -> CustomerRows:
    return seed.new_customer_rows(ORG_S4_1010)


def with_row(rows: CustomerRows, part: str, **changes: Any) -> CustomerRows:
    """``rows`` with columns of one row changed (None: the column is null)."""
    row = dict(getattr(rows, part))
    row.update(changes)
    return replace(rows, **{part: row})


def without(rows: CustomerRows, part: str, *columns: str) -> CustomerRows:
    row = {k: v for k, v in getattr(rows, part).items() if k not in columns}
    return replace(rows, **{part: row})


def field_of(call: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        call()
    return caught.value.field


def test_s4_detail_is_the_package_example_a(seed: SeedRows) -> None:
    message = details_message(seed.detail_rows(DETAIL_US1_S4))
    expected = parse_customer_message(example("in_erpaccountdetails_S4HC.xml"))
    assert isinstance(expected, ErpAccountDetailsMessage)
    assert message == expected


def test_ecc_detail_gives_the_package_idoc(seed: SeedRows) -> None:
    message = details_message(seed.detail_rows(DETAIL_MUSTER_ECC))
    expected = parse_customer_message(example("in_erpaccountdetails_ECC.xml"))
    assert message.erpaccountdetail == expected.erpaccountdetail
    control = IdocControlSettings()
    assert canonical(idoc_for_message(message, control)) == canonical(
        idoc_for_message(expected, control)
    )


def test_general_data_is_example_c_except_what_dynamics_does_not_hold(seed: SeedRows) -> None:
    message = accounts_message(seed.account_rows(ERP_ACCOUNT_MUSTER_GENERAL))
    expected = parse_customer_message(example("in_erpaccounts_ECC.xml"))
    assert isinstance(expected, ErpAccountsMessage)
    got, want = message.erpaccount.model_dump(), expected.erpaccount.model_dump()
    # Dynamics keeps "Nordrhein-Westfalen", a name, not SAP's key 05: the key is not sent (SAP
    # keeps its REGIO), the name stays in addr1spname. No ISO-3 language or owner column exists.
    assert (got.pop("addr1spcode"), want.pop("addr1spcode")) == (None, "05")
    assert (got.pop("langiso3"), got.pop("owner")) == (None, None)
    want.pop("langiso3"), want.pop("owner")
    assert got == want


def test_routing_follows_the_package(seed: SeedRows) -> None:
    s4 = seed.detail_rows(DETAIL_US1_S4)
    assert route_rows(s4).route is Route.S4HC
    assert route_rows(seed.detail_rows(DETAIL_MUSTER_ECC)).route is Route.ERP_ACCOUNT_DETAIL
    assert route_rows(seed.account_rows(ERP_ACCOUNT_MUSTER_GENERAL)).route is Route.ERP_ACCOUNT
    general_s4 = route_rows(seed.account_rows(ERP_ACCOUNT_US1_S4))
    assert general_s4.route is Route.DISCARD and "G3" in general_s4.reason
    other = route_rows(with_row(s4, "org", sap_erpsystemtype=100_000_002))
    assert other.route is Route.DISCARD and "100000002" in other.reason


def test_customer_number(seed: SeedRows, new_rows: CustomerRows) -> None:
    ecc = seed.detail_rows(DETAIL_MUSTER_ECC)
    assert customer_number(ecc) == "100123"
    assert customer_number(new_rows) is None
    padded = with_row(ecc, "detail", sap_sapcustomernumber="0000100123")
    assert customer_number(padded) == "100123"
    clash = with_row(ecc, "erp_account", sap_number="100124")
    assert field_of(lambda: customer_number(clash)) == "sap_erpaccount.sap_number"
    written_back = with_row(new_rows, "detail", sap_sapcustomernumber="1000000")
    assert customer_number(written_back) == "1000000"


def test_rows_must_belong_together(seed: SeedRows) -> None:
    rows = seed.detail_rows(DETAIL_US1_S4)
    other = "00000000-0000-0000-0000-000000000001"
    for part, lookup in (
        ("detail", "_sap_erpaccountid_value"),
        ("detail", "_sap_accountid_value"),
        ("detail", "_sap_linkederporgid_value"),
        ("erp_account", "_sap_accountid_value"),
    ):
        broken = with_row(rows, part, **{lookup: other})
        table = "sap_erpaccountdetail" if part == "detail" else "sap_erpaccount"
        assert field_of(lambda b=broken: details_message(b)) == f"{table}.{lookup}"
    no_org = replace(rows, org=None)
    assert field_of(lambda: details_message(no_org)) == (
        "sap_erpaccountdetail._sap_linkederporgid_value"
    )
    no_id = without(rows, "account", "accountid")
    assert field_of(lambda: details_message(no_id)) == "account.accountid"


def test_wrong_value_types_are_named(seed: SeedRows) -> None:
    rows = seed.detail_rows(DETAIL_US1_S4)
    assert field_of(lambda: details_message(with_row(rows, "detail", sap_currency=5))) == (
        "sap_erpaccountdetail.sap_currency"
    )
    assert field_of(lambda: details_message(with_row(rows, "detail", sap_deletionflag=1))) == (
        "sap_erpaccountdetail.sap_deletionflag"
    )
    assert field_of(lambda: details_message(with_row(rows, "org", sap_erpsystemtype="S4"))) == (
        "sap_linkederporg.sap_erpsystemtype"
    )


def test_null_is_empty_and_missing_is_absent(seed: SeedRows) -> None:
    rows = seed.detail_rows(DETAIL_US1_S4)
    emptied = details_message(with_row(rows, "detail", sap_salesgroup=None))
    assert emptied.erpaccountdetail.salesgroup == ""
    unread = details_message(without(rows, "detail", "sap_salesgroup", "sap_deletionflag"))
    assert unread.erpaccountdetail.salesgroup is None
    assert unread.erpaccountdetail.deletionflag is None
    flagged = details_message(with_row(rows, "detail", sap_deletionflag=True))
    assert flagged.erpaccountdetail.deletionflag == "1"


def test_new_customer_from_new_rows(new_rows: CustomerRows) -> None:
    customer = new_customer(new_rows)
    assert customer.system_type == "S4HC"
    general = customer.general
    assert (general.name1, general.name2, general.search_term) == (
        "Neukunde Pumpen AG",
        "Werk Essen",
        "NEUKUNDE",
    )
    assert general.language == "DE"
    address = general.address
    assert (address.street, address.street2, address.postal_code, address.city) == (
        "Ruhrallee 1",
        "Halle 3",
        "45138",
        "Essen",
    )
    assert (address.region, address.region_name, address.country) == ("NW", None, "DE")
    assert (general.phone, general.fax, general.email, general.website) == (
        "+49 201 555-0",
        "+49 201 555-99",
        "einkauf@neukunde.example",
        "https://www.neukunde.example",
    )
    (area,) = customer.sales_areas
    assert area.label() == "1010/10/00"
    assert (area.currency, area.customer_group, area.sales_office) == ("EUR", "01", "1010")
    assert area.create_defaults.incoterms_location1 == "Walldorf"
    assert area.create_defaults.tax.tax_category == "TTX1"
    assert customer.source.account_id == new_rows.account["accountid"]
    assert customer.source.erp_account_detail_id == new_rows.detail["sap_erpaccountdetailid"]
    created = area.with_number("1000000", system_type="S4HC")
    assert created.key.label() == "1000000/1010/10/00"
    assert created.deletion_flag is False


def test_new_customer_fallbacks(new_rows: CustomerRows) -> None:
    unnamed = with_row(new_rows, "erp_account", sap_name1=None, sap_language=None)
    general = new_customer(unnamed).general
    assert general.name1 == "Neukunde Pumpen AG"  # the account's name
    assert general.language is None
    region_name = with_row(new_rows, "account", address1_stateorprovince="Nordrhein-Westfalen")
    address = new_customer(region_name).general.address
    assert (address.region, address.region_name) == (None, "Nordrhein-Westfalen")
    lower = with_row(new_rows, "account", address1_country=" de ")
    assert new_customer(lower).general.address.country == "DE"


@pytest.mark.parametrize(
    ("part", "changes", "field"),
    [
        ("account", {"address1_country": None}, "account.address1_country"),
        ("account", {"address1_country": "Germany"}, "account.address1_country"),
        ("erp_account", {"sap_language": "deu"}, "sap_erpaccount.sap_language"),
        ("detail", {"sap_deletionflag": True}, "sap_erpaccountdetail.sap_deletionflag"),
        ("org", {"sap_vkorg": None}, "sap_linkederporg.sap_vkorg"),
        ("org", {"sap_vtweg": " "}, "sap_linkederporg.sap_vtweg"),
        ("org", {"sap_spart": None}, "sap_linkederporg.sap_spart"),
        ("org", {"sap_erpsystemtype": None}, "sap_linkederporg.sap_erpsystemtype"),
        ("org", {"sap_erpsystemtype": 100_000_002}, "sap_linkederporg.sap_erpsystemtype"),
        ("account", {"telephone1": 4711}, "account.telephone1"),
    ],
)
def test_bad_new_customer_input_names_the_column(
    new_rows: CustomerRows, part: str, changes: dict[str, Any], field: str
) -> None:
    assert field_of(lambda: new_customer(with_row(new_rows, part, **changes))) == field


def test_a_nameless_customer_is_refused(new_rows: CustomerRows) -> None:
    nameless = with_row(with_row(new_rows, "erp_account", sap_name1=""), "account", name=None)
    assert field_of(lambda: new_customer(nameless)) == "sap_erpaccount.sap_name1"


def test_ecc_customer_without_sales_area(seed: SeedRows) -> None:
    rows = seed.new_customer_rows(ORG_ECC_1000)
    general_only = replace(rows, detail=None)
    customer = new_customer(general_only)
    assert customer.system_type == "ECC"
    assert customer.sales_areas == ()
    assert customer.source.erp_account_detail_id is None
    assert customer.source.linked_org_id == ORG_ECC_1000

"""The table definitions: consistent schema, Microsoft's reference values, SAP's XSD fields."""

from __future__ import annotations

from importlib import resources

import pytest
from lxml import etree

from d365sap.emulators.dataverse.columns import (
    Cascade,
    Kind,
    Required,
    lookup,
    system_columns,
    text,
)
from d365sap.emulators.dataverse.sap_tables import ECC, S4HC
from d365sap.emulators.dataverse.schema import Schema, Table
from d365sap.emulators.dataverse.tables import build_schema

XS = "{http://www.w3.org/2001/XMLSchema}"


def _xsd_fields(name: str, parent: str) -> list[str]:
    text_ = resources.files("d365sap.resources").joinpath(f"xsd/{name}").read_bytes()
    root = etree.fromstring(text_)
    block = root.find(f".//{XS}element[@name='{parent}']")
    assert block is not None
    return [str(e.get("name")) for e in block.iter(f"{XS}element") if e is not block]


def test_every_table_is_reachable_by_entity_set_and_has_its_keys() -> None:
    schema = build_schema()
    expected = {
        "account": "accounts",
        "contact": "contacts",
        "salesorder": "salesorders",
        "salesorderdetail": "salesorderdetails",
        "product": "products",
        "transactioncurrency": "transactioncurrencies",
        "uom": "uoms",
        "pricelevel": "pricelevels",
        "sap_linkederporg": "sap_linkederporgs",
        "sap_erpaccount": "sap_erpaccounts",
        "sap_erpaccountdetail": "sap_erpaccountdetails",
    }
    assert {name: t.entity_set for name, t in schema.tables.items()} == expected
    for table in schema.tables.values():
        assert schema.by_set[table.entity_set] is table
        primary = table.column(table.primary_id)
        assert primary is not None
        assert primary.kind is Kind.UNIQUEIDENTIFIER
        for stamp in ("createdon", "modifiedon", "versionnumber"):
            column = table.column(stamp)
            assert column is not None
            assert column.read_only


def test_alternate_keys_of_the_brief() -> None:
    schema = build_schema()
    keys = {
        name: [key.columns for key in table.alternate_keys]
        for name, table in schema.tables.items()
        if table.alternate_keys
    }
    assert keys["account"] == [("accountnumber",)]
    assert keys["product"] == [("productnumber",)]
    assert keys["transactioncurrency"] == [("isocurrencycode",)]
    assert keys["sap_linkederporg"] == [
        ("sap_erpsystemtype", "sap_vkorg", "sap_vtweg", "sap_spart")
    ]


def test_salesorder_states_and_statuses_follow_the_table_reference() -> None:
    order = build_schema().table("salesorder")
    state = order.column("statecode")
    status = order.column("statuscode")
    assert state is not None
    assert status is not None
    assert [(o.value, o.label, o.default_status) for o in state.options] == [
        (0, "Active", 1),
        (1, "Submitted", 3),
        (2, "Canceled", 4),
        (3, "Fulfilled", 100001),
        (4, "Invoiced", 100003),
    ]
    assert {o.value: (o.label, o.state) for o in status.options} == {
        1: ("New", 0),
        2: ("Pending", 0),
        3: ("In Progress", 1),
        4: ("No Money", 2),
        100001: ("Complete", 3),
        100002: ("Partial", 3),
        100003: ("Invoiced", 4),
    }
    customer = order.column("customerid")
    assert customer is not None
    assert customer.kind is Kind.CUSTOMER
    assert [(t.table, t.relationship) for t in customer.targets] == [
        ("account", "order_customer_accounts"),
        ("contact", "order_customer_contacts"),
    ]
    name = order.column("name")
    assert name is not None
    assert (name.max_length, name.required) == (300, Required.APPLICATION)
    number = order.column("ordernumber")
    assert number is not None
    assert (number.max_length, number.required, number.create_only) == (100, Required.SYSTEM, True)


def test_salesorderdetail_columns_and_cascading_order_lines() -> None:
    schema = build_schema()
    line = schema.table("salesorderdetail")
    quantity = line.column("quantity")
    assert quantity is not None
    assert (quantity.kind, quantity.precision, str(quantity.max_value)) == (
        Kind.DECIMAL,
        5,
        "100000000000",
    )
    navigation = schema.navigation("salesorder", "order_details")
    assert navigation is not None
    assert navigation.collection
    assert navigation.relationship.cascade is Cascade.CASCADE
    assert schema.navigation("salesorderdetail", "salesorderid") is not None
    for name in ("productid", "uomid", "priceperunit"):
        assert line.by_property(f"_{name}_value") or line.column(name)


def test_linked_erp_org_has_every_field_of_the_sap_create_schema() -> None:
    org = build_schema().table("sap_linkederporg")
    fields = _xsd_fields("CRM_erpaccountdetails_sap_create.xsd", "linkederporg")
    assert "erpsystemtype" in fields
    for field in fields:
        name = {"id": org.primary_id, "name": "sap_name"}.get(field, field)
        if not name.startswith("sap_") and name != org.primary_id:
            name = f"sap_{name}"
        assert org.column(name) is not None, field
    system_type = org.column("sap_erpsystemtype")
    assert system_type is not None
    assert {o.value: o.label for o in system_type.options} == {S4HC: "S4HC", ECC: "ECC"}


@pytest.mark.parametrize(
    ("xsd", "block", "table"),
    [
        ("CRM_erpaccountdetails.xsd", "erpaccountdetail", "sap_erpaccountdetail"),
        ("CRM_erpaccountdetails_sap_create.xsd", "erpaccountdetail", "sap_erpaccountdetail"),
        ("ERP_erpaccountdetails.xsd", "erpaccountdetail", "sap_erpaccountdetail"),
        ("ERP_erpaccounts.xsd", "erpaccount", "sap_erpaccount"),
    ],
)
def test_erp_tables_carry_the_fields_of_the_package_schemas(
    xsd: str, block: str, table: str
) -> None:
    definition = build_schema().table(table)
    address_and_contact = {
        "addr1line1",
        "addr1line2",
        "addr1line3",
        "addr1pobox",
        "addr1zip",
        "addr1city",
        "addr1spcode",
        "addr1spname",
        "addr1ctry",
        "phone1",
        "email1",
        "fax",
        "website",
        "langiso3",
        "owner",
    }
    for field in _xsd_fields(xsd, block):
        if field in address_and_contact:
            continue  # the account's own columns (address1_*, telephone1, ...) carry these
        name = {
            "id": definition.primary_id,
            "langiso2": "sap_language",
            "erpaccountid": "sap_erpaccountid",
            "accountid": "sap_accountid",
        }.get(field, f"sap_{field}")
        assert definition.column(name) is not None, f"{xsd}: {field}"


def test_erp_account_detail_is_linked_to_account_erp_account_and_org() -> None:
    schema = build_schema()
    names = {
        navigation.name: navigation.target
        for navigation in schema.navigations("sap_erpaccountdetail").values()
    }
    assert names == {
        "sap_erpaccountid": "sap_erpaccount",
        "sap_accountid": "account",
        "sap_linkederporgid": "sap_linkederporg",
    }
    detail = schema.table("sap_erpaccountdetail")
    for write_back in ("sap_sapcustomernumber", "sap_syncstatus", "sap_lasterror"):
        assert detail.column(write_back) is not None
    account_navs = schema.navigations("account")
    assert account_navs["sap_account_sap_erpaccountdetail"].collection


def test_a_lookup_to_an_unknown_table_is_refused() -> None:
    broken = Table(
        logical_name="sap_thing",
        entity_set="sap_things",
        display_name="Thing",
        description="",
        primary_name="sap_name",
        columns=(
            *system_columns("sap_thing"),
            text("sap_name", "Name", 10),
            lookup("sap_otherid", "Other", "sap_other", "sap_other_sap_thing"),
        ),
    )
    with pytest.raises(ValueError, match="sap_otherid: no table sap_other"):
        Schema([broken])


def test_a_key_naming_an_unknown_column_is_refused() -> None:
    from d365sap.emulators.dataverse.schema import AlternateKey

    with pytest.raises(ValueError, match="key k names nothere"):
        Table(
            logical_name="sap_thing",
            entity_set="sap_things",
            display_name="Thing",
            description="",
            primary_name="sap_name",
            columns=(*system_columns("sap_thing"), text("sap_name", "Name", 10)),
            alternate_keys=(AlternateKey("k", "K", ("nothere",)),),
        )

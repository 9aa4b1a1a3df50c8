"""The Dynamics-side tables of SAP's integration solution, with publisher prefix ``sap_``.

SAP's CPI package reads three kinds of Dynamics rows, as its message schemas show
(``resources/xsd/CRM_erpaccountdetails*.xsd``, ``ERP_erpaccounts.xsd``,
``ERP_erpaccountdetails.xsd``):

- the linked ERP organisation (``linkederporg``): which SAP system (``erpsystemtype`` S4HC or
  ECC) and sales area (``sap_vkorg``/``sap_vtweg``/``sap_spart``), plus the ``sap_create_*``
  defaults a new S/4 sales area is created with;
- the ERP account (``erpaccount``): an account's customer master in one SAP system (number,
  names, search term, customer group);
- the ERP account detail (``erpaccountdetail``): its sales-area data (customer group, sales
  district, office, group, currency, deletion flag), linked to ERP account, account and ERP
  organisation.

Element names of the XSDs become column names with the ``sap_`` prefix (``number`` ->
``sap_number``); lengths are the S/4HANA fields the values end up in (A_CustomerSalesArea).
Each row also has write-back columns d365sap fills after sending it to SAP: the customer number
SAP knows, a synchronisation status, the time and the last error.
"""

from __future__ import annotations

from d365sap.emulators.dataverse.columns import (
    Cascade,
    Column,
    Required,
    choice,
    flag,
    lookup,
    state,
    status,
    system_columns,
    text,
    when,
)
from d365sap.emulators.dataverse.schema import AlternateKey, Table

APP = Required.APPLICATION
S4HC = 100_000_000
ECC = 100_000_001
ERP_SYSTEM_TYPES = {S4HC: "S4HC", ECC: "ECC"}
"""``sap_erpsystemtype``: labels are the values SAP's package routes on (ECC = SAP ERP)."""
SYNC_STATUSES = {
    100_000_000: "Pending",
    100_000_001: "Synchronized",
    100_000_002: "Failed",
    100_000_003: "Discarded",
}


def _active_inactive() -> tuple[Column, Column]:
    return (
        state({0: ("Active", 1), 1: ("Inactive", 2)}),
        status({1: ("Active", 0), 2: ("Inactive", 1)}),
    )


def _write_back() -> tuple[Column, ...]:
    """What d365sap records on the row after sending it to SAP."""
    return (
        choice("sap_syncstatus", "SAP Sync Status", SYNC_STATUSES),
        when("sap_lastsyncon", "Last Synchronized On"),
        text("sap_lasterror", "Last SAP Error", 4000, memo=True),
        text("sap_lastmessageid", "Last d365sap Message ID", 100),
    )


LINKED_ERP_ORG = Table(
    logical_name="sap_linkederporg",
    entity_set="sap_linkederporgs",
    display_name="Linked ERP Organization",
    description="An SAP system and sales area that accounts can be linked to.",
    primary_name="sap_name",
    columns=(
        *system_columns("sap_linkederporg"),
        text("sap_name", "Name", 100, required=APP),
        choice("sap_erpsystemtype", "ERP System Type", ERP_SYSTEM_TYPES, required=APP),
        text("sap_vkorg", "Sales Organization", 4, required=APP),
        text("sap_vtweg", "Distribution Channel", 2, required=APP),
        text("sap_spart", "Division", 2, required=APP),
        text("sap_create_accountassignmentgroup", "Account Assignment Group (create)", 2),
        text("sap_create_orderblock", "Order Block (create)", 2),
        text("sap_create_shippingcondition", "Shipping Condition (create)", 2),
        text("sap_create_incoterms", "Incoterms (create)", 3),
        text("sap_create_incotermslocation1", "Incoterms Location 1 (create)", 70),
        text("sap_create_incotermslocation2", "Incoterms Location 2 (create)", 70),
        text("sap_create_paymentterms", "Payment Terms (create)", 4),
        text("sap_create_taxdeterminationcode", "Tax Classification (create)", 1),
        text("sap_create_taxdeparturecountry", "Tax Departure Country (create)", 3),
        text("sap_create_taxcategory", "Tax Category (create)", 4),
        text("sap_create_exchangeratetype", "Exchange Rate Type (create)", 4),
        text("sap_create_pricegroup", "Price Group (create)", 2),
        *_active_inactive(),
    ),
    alternate_keys=(
        AlternateKey(
            "sap_salesarea",
            "ERP System and Sales Area",
            ("sap_erpsystemtype", "sap_vkorg", "sap_vtweg", "sap_spart"),
        ),
    ),
)

ERP_ACCOUNT = Table(
    logical_name="sap_erpaccount",
    entity_set="sap_erpaccounts",
    display_name="ERP Account",
    description="An account's customer master record in one SAP system.",
    primary_name="sap_name",
    columns=(
        *system_columns("sap_erpaccount"),
        text("sap_name", "Name", 100, required=APP),
        lookup(
            "sap_accountid",
            "Account",
            "account",
            "sap_account_sap_erpaccount",
            cascade=Cascade.CASCADE,
            required=APP,
        ),
        lookup(
            "sap_linkederporgid",
            "Linked ERP Organization",
            "sap_linkederporg",
            "sap_linkederporg_sap_erpaccount",
            cascade=Cascade.RESTRICT,
        ),
        text("sap_number", "SAP Customer Number", 10),
        text("sap_name1", "Name 1", 35),
        text("sap_name2", "Name 2", 35),
        text("sap_name3", "Name 3", 35),
        text("sap_name4", "Name 4", 35),
        text("sap_searchname", "Search Term", 10),
        text("sap_custgroup", "Customer Account Group", 4),
        text("sap_language", "Language (ISO 639-1)", 2),
        *_write_back(),
        *_active_inactive(),
    ),
    alternate_keys=(
        AlternateKey(
            "sap_erpnumber", "ERP System and Customer Number", ("sap_linkederporgid", "sap_number")
        ),
    ),
)

ERP_ACCOUNT_DETAIL = Table(
    logical_name="sap_erpaccountdetail",
    entity_set="sap_erpaccountdetails",
    display_name="ERP Account Detail",
    description="Sales-area data of an ERP account in one linked ERP organization.",
    primary_name="sap_name",
    columns=(
        *system_columns("sap_erpaccountdetail"),
        text("sap_name", "Name", 100, required=APP),
        lookup(
            "sap_erpaccountid",
            "ERP Account",
            "sap_erpaccount",
            "sap_erpaccount_sap_erpaccountdetail",
            cascade=Cascade.CASCADE,
            required=APP,
        ),
        lookup(
            "sap_accountid",
            "Account",
            "account",
            "sap_account_sap_erpaccountdetail",
            cascade=Cascade.CASCADE,
            required=APP,
        ),
        lookup(
            "sap_linkederporgid",
            "Linked ERP Organization",
            "sap_linkederporg",
            "sap_linkederporg_sap_erpaccountdetail",
            cascade=Cascade.RESTRICT,
            required=APP,
        ),
        text("sap_number", "SAP Customer Number", 10),
        flag("sap_deletionflag", "Deletion Flag"),
        text("sap_customergroup", "Customer Group", 2),
        text("sap_salesdistrict", "Sales District", 6),
        text("sap_salesoffice", "Sales Office", 4),
        text("sap_salesgroup", "Sales Group", 3),
        text("sap_currency", "Currency", 5),
        text("sap_sapcustomernumber", "Customer Number in SAP", 10),
        *_write_back(),
        *_active_inactive(),
    ),
    alternate_keys=(
        AlternateKey(
            "sap_erpaccount_salesarea",
            "ERP Account and Linked ERP Organization",
            ("sap_erpaccountid", "sap_linkederporgid"),
        ),
    ),
)


def sap_tables() -> tuple[Table, ...]:
    """The SAP solution's tables."""
    return (LINKED_ERP_ORG, ERP_ACCOUNT, ERP_ACCOUNT_DETAIL)
